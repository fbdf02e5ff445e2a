//! Recovery: what the next run that takes the lock for writing does with what an
//! interrupted run left ([`Workspace::lock_for_write`]). It needs no passphrase, signs
//! nothing and is idempotent: killed itself, the run after it does the same again.
//!
//! For every journal (`journal/<op_id>.json`), then for every staging folder no journal
//! names (`.stage-*`, and `.tmp-*` from older versions):
//! - a staged leaf folder that is complete (meta.json parses and matches, cert.pem parses
//!   with the expected serial, the key is there) is synced and renamed into place, unless
//!   a certificate with that serial is already in place or revoked;
//! - an incomplete one that holds its certificate (cert.pem) is revoked in the CA state
//!   (reason superseded) and its key and folder are destroyed: the CRL must then be
//!   re-signed, which the report says;
//! - one without cert.pem is destroyed: nothing signed was written;
//! - every placed leaf supersedes the certificate it replaces, and a tenant/env/kind is
//!   left with one active certificate (the newest);
//! - every journaled revocation is recorded in state.json and meta.json;
//! - every audit line a journal names (by `op_id`) and that is missing is written;
//! - a staged CA (`pki/<env>/.stage-ca`) is renamed into place when complete, else
//!   removed so that `ca init` can run again.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::audit::Event;
use super::fsutil;
use super::inventory::{
    CERT, CHAIN, CaState, Filter, KEY, LeafMeta, LeafRecord, META, PFX, PFX_PASS, Status,
};
use super::journal::{
    AuditStep, CaStep, CrlStep, Intent, LeafStep, RevocationStep, is_placed, mark_superseded,
};
use super::{Workspace, WsError, check_name};
use crate::pki::Kind;

/// What recovery did with one thing an interrupted run left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A complete staged leaf folder was put in place.
    Placed,
    /// An active certificate was marked superseded by its replacement.
    Superseded,
    /// A signed certificate whose folder was never finished was revoked, its key destroyed.
    Revoked,
    /// An unfinished folder was removed.
    Removed,
    /// A journaled revocation was recorded in the CA state and meta.json.
    RevocationCompleted,
    /// A missing audit line was written.
    Audited,
    /// The CRL must be re-signed (`mtlsctl crl --env E`) to list every revocation.
    CrlNeeded,
    /// A complete staged CA was put in place.
    CaPlaced,
    /// A half-made CA was removed; `ca init` can run again.
    CaRemoved,
    /// A CA folder without its certificate (from an older version) was moved aside.
    CaMovedAside,
    /// An off-boarded tenant's folders were moved under archive/.
    Archived,
}

/// One line of the recovery report.
#[derive(Clone, Debug, Serialize)]
pub struct Recovered {
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub message: String,
}

/// The reason recorded for a certificate revoked because its run never finished it.
const UNFINISHED_REASON: &str = "superseded";
/// How the report names the run that left a folder no journal names.
const UNJOURNALED: &str = "mtlsctl";

/// Completes or rolls back everything interrupted runs left. The caller holds the lock.
pub fn recover(ws: &Workspace) -> Result<Vec<Recovered>, WsError> {
    let mut r = Recovery {
        ws,
        done: Vec::new(),
        crl_envs: BTreeSet::new(),
        now: crate::pki::cert::whole_seconds(OffsetDateTime::now_utc()),
    };
    r.journals()?;
    r.strays()?;
    r.check_crls()?;
    Ok(r.done)
}

struct Recovery<'a> {
    ws: &'a Workspace,
    done: Vec<Recovered>,
    /// Environments whose CRL must list a revocation recovery saw.
    crl_envs: BTreeSet<super::CaLoc>,
    now: OffsetDateTime,
}

/// What a staged leaf folder should be.
struct Expect<'a> {
    env: &'a str,
    tenant: &'a str,
    kind: Kind,
    /// The journaled serial, which cert.pem must carry.
    serial: Option<String>,
    /// For a folder no journal names, the serial its name gives, taken when its cert.pem
    /// does not read.
    fallback: Option<String>,
    /// Whether it must hold a key; unknown for a folder no journal names.
    has_key: Option<bool>,
    /// The CA that signed it: whose state records its revocation if it is never placed.
    ca: super::CaLoc,
}

/// For a folder no journal names: the CA that signs `kind` leaves of `tenant` in `env`
/// now, as hierarchy.json says (the tenant's own set when it has one).
fn signing_ca_guess(ws: &Workspace, env: &str, tenant: &str, kind: Kind) -> super::CaLoc {
    let tenant_set = super::CaLoc::base(env, Some(tenant));
    let set = if ws.ca_cert(&tenant_set).is_file() {
        tenant_set
    } else {
        super::CaLoc::env(env)
    };
    match ws.load_hierarchy(&set).ok().flatten() {
        Some(h) if h.two_tier() => match h.issuing(kind) {
            Some(e) => set.child(&e.dir),
            None => set,
        },
        _ => set,
    }
}

/// How far a staged leaf folder got.
enum Found {
    /// Every file is there and agrees: it can be placed.
    Complete(String),
    /// cert.pem is there (the serial, when known), the folder unfinished.
    Partial(Option<String>),
    /// No certificate in it.
    Empty,
}

impl Recovery<'_> {
    fn note(
        &mut self,
        action: Action,
        env: &str,
        serial: Option<&str>,
        path: Option<&Path>,
        message: String,
    ) {
        self.done.push(Recovered {
            action,
            env: Some(env.to_string()),
            serial: serial.map(str::to_string),
            path: path.map(Path::to_path_buf),
            message,
        });
    }

    /// Settles every journal, oldest first, and removes it.
    fn journals(&mut self) -> Result<(), WsError> {
        let dir = self.ws.journal_dir();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut paths: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            if name.starts_with(".tmp-") {
                // a journal never completed: its run signed nothing
                fsutil::remove_synced(&p)?;
            } else if name.ends_with(".json") {
                let intent = read_intent(&p)?;
                self.settle(&intent, &p)?;
                fsutil::remove_synced(&p)?;
            }
        }
        Ok(())
    }

    fn settle(&mut self, i: &Intent, path: &Path) -> Result<(), WsError> {
        if let Some(ca) = &i.ca {
            sane(path, &ca.env, None, &ca.serial)?;
            self.settle_ca(ca, &i.op)?;
        }
        for l in &i.leaves {
            sane(path, &l.env, Some(&l.tenant), &l.serial)?;
            let want = self.ws.leaf_dir(&l.env, &l.tenant, l.kind, &l.serial);
            if self.ws.relative(&want) != l.dir {
                return Err(corrupt(path, "a leaf folder does not match its serial"));
            }
            self.settle_leaf(l, &i.op)?;
        }
        for rv in &i.revocations {
            sane(path, &rv.env, Some(&rv.tenant), &rv.serial)?;
            self.settle_revocation(rv)?;
        }
        if let Some(o) = &i.offboard {
            check_name("tenant", &o.tenant).map_err(|m| corrupt(path, &m))?;
            for e in &o.envs {
                check_name("environment", e).map_err(|m| corrupt(path, &m))?;
            }
            if o.archive.is_absolute()
                || o.archive
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
                || !o.archive.starts_with(crate::ops::offboard::ARCHIVE_DIR)
            {
                return Err(corrupt(path, "its archive folder is not under archive/"));
            }
            if crate::ops::offboard::complete(self.ws, o)? {
                self.note(
                    Action::Archived,
                    o.envs.first().map(String::as_str).unwrap_or_default(),
                    None,
                    Some(&self.ws.root().join(&o.archive)),
                    format!(
                        "finished archiving tenant {} ({}) that an interrupted tenant remove run had begun",
                        o.tenant,
                        o.envs.join(", ")
                    ),
                );
            }
        }
        if let Some(a) = &i.activation {
            sane(path, &a.env, Some(&a.tenant), &a.serial)?;
            if let Some(p) = &a.supersedes {
                sane(path, &a.env, Some(&a.tenant), p)?;
            }
            if a.apply(self.ws)? {
                self.note(
                    Action::Superseded,
                    &a.env,
                    a.supersedes.as_deref(),
                    None,
                    format!(
                        "made {} of {}/{} {} active, as the interrupted activate run meant to",
                        a.serial, a.tenant, a.env, a.kind
                    ),
                );
            }
            self.one_active(&a.env, &a.tenant, a.kind)?;
            if !self.ws.audit_has(&a.audit.op_id)? {
                self.ws.audit(&by_recovery(a.event()))?;
                self.audited(&a.env, &a.serial, &a.audit.op);
            }
        }
        for c in &i.crls {
            sane(path, &c.env, None, "00")?;
            self.settle_crl(c, &i.op)?;
        }
        Ok(())
    }

    fn settle_leaf(&mut self, l: &LeafStep, op: &str) -> Result<(), WsError> {
        let dir = self.ws.leaf_dir(&l.env, &l.tenant, l.kind, &l.serial);
        let stage = fsutil::stage_path(&dir);
        let ex = Expect {
            env: &l.env,
            tenant: &l.tenant,
            kind: l.kind,
            serial: Some(l.serial.clone()),
            fallback: None,
            has_key: Some(l.has_key),
            ca: l.ca.clone().unwrap_or_else(|| super::CaLoc::env(&l.env)),
        };
        let settle = |r: &mut Self| Ok(r.settle_stage(&stage, &ex, op)?.is_some());
        if !self.in_place(&l.env, is_placed(&dir), &stage, settle)? {
            return Ok(());
        }
        if l.supersede(self.ws)? {
            let prev = l.supersedes.as_deref().unwrap_or_default();
            self.note(
                Action::Superseded,
                &l.env,
                Some(prev),
                None,
                format!(
                    "marked {prev} of {}/{} {} superseded by {}, as the interrupted {op} run meant to",
                    l.tenant, l.env, l.kind, l.serial
                ),
            );
        }
        self.one_active(&l.env, &l.tenant, l.kind)?;
        if !self.ws.audit_has(&l.audit.op_id)?
            && let Some(rec) = read_record(&dir)
        {
            self.ws.audit(&by_recovery(l.event(&rec.meta)))?;
            self.audited(&l.env, &l.serial, &l.audit.op);
        }
        Ok(())
    }

    /// Whether a journaled folder is in place once its staging folder is settled: one in
    /// place already has any staging folder of the same name removed; one that is not
    /// has its staging folder, if any, settled by `settle` (true when it placed it).
    fn in_place(
        &mut self,
        env: &str,
        placed: bool,
        stage: &Path,
        settle: impl FnOnce(&mut Self) -> Result<bool, WsError>,
    ) -> Result<bool, WsError> {
        if placed {
            if stage.exists() {
                self.remove(env, stage, "a leftover copy of a folder already in place")?;
            }
            return Ok(true);
        }
        if !stage.exists() {
            return Ok(false); // never staged: nothing signed left the process
        }
        settle(self)
    }

    fn audited(&mut self, env: &str, serial: &str, op: &str) {
        self.note(
            Action::Audited,
            env,
            Some(serial),
            None,
            format!("wrote the missing audit line of {op} {serial} ({env})"),
        );
    }

    /// Places, revokes or removes a staged leaf folder; the serial when it was placed.
    fn settle_stage(
        &mut self,
        stage: &Path,
        ex: &Expect<'_>,
        op: &str,
    ) -> Result<Option<String>, WsError> {
        let found = examine(stage, ex);
        let serial = match &found {
            Found::Complete(s) | Found::Partial(Some(s)) => s.clone(),
            Found::Partial(None) | Found::Empty => {
                let what = if matches!(found, Found::Empty) {
                    "an unfinished folder with no certificate in it"
                } else {
                    "an unfinished folder whose certificate does not read"
                };
                self.remove(ex.env, stage, what)?;
                return Ok(None);
            }
        };
        let kind_dir = self.ws.kind_dir(ex.env, ex.tenant, ex.kind);
        let dir = kind_dir.join(&serial);
        if is_placed(&dir) {
            self.remove(
                ex.env,
                stage,
                "a leftover copy of a certificate already in place",
            )?;
            return Ok(None);
        }
        if self.revoked_in_state(&ex.ca, &serial)? {
            self.remove(ex.env, stage, "a leftover of a certificate already revoked")?;
            return Ok(None);
        }
        if let Found::Partial(_) = found {
            self.revoke_unplaced(ex, &serial, stage, op)?;
            return Ok(None);
        }
        fsutil::sync_tree(stage)?;
        fsutil::place_staged(stage, &dir)?;
        fsutil::sync_dir(&kind_dir)?;
        self.note(
            Action::Placed,
            ex.env,
            Some(&serial),
            Some(&dir),
            format!(
                "placed certificate {serial} of {}/{} {}: an interrupted {op} run had signed and staged it",
                ex.tenant, ex.env, ex.kind
            ),
        );
        Ok(Some(serial))
    }

    fn remove(&mut self, env: &str, dir: &Path, what: &str) -> Result<(), WsError> {
        fsutil::destroy_dir(dir, &[KEY, PFX, PFX_PASS])?;
        self.note(
            Action::Removed,
            env,
            None,
            Some(dir),
            format!("removed {} ({what})", dir.display()),
        );
        Ok(())
    }

    fn revoked_in_state(&self, ca: &super::CaLoc, serial: &str) -> Result<bool, WsError> {
        let st = self.ws.load_ca_state(ca)?;
        Ok(st.revocations.iter().any(|r| r.serial == serial))
    }

    /// Revokes a signed certificate whose folder was never finished, then destroys its
    /// key and folder: the revocation is on disk before the key goes.
    fn revoke_unplaced(
        &mut self,
        ex: &Expect<'_>,
        serial: &str,
        stage: &Path,
        op: &str,
    ) -> Result<(), WsError> {
        let step = RevocationStep {
            env: ex.env.to_string(),
            tenant: ex.tenant.to_string(),
            kind: ex.kind,
            serial: serial.to_string(),
            reason: UNFINISHED_REASON.to_string(),
            revoked_at: self.now,
            ca: Some(ex.ca.clone()),
            audit: AuditStep {
                op_id: format!("recovered-revoke-{serial}"),
                op: "revoke".into(),
                detail: Some(format!(
                    "reason {UNFINISHED_REASON}: signed by an interrupted {op} run and never placed; its key was destroyed"
                )),
            },
        };
        step.record(self.ws)?;
        if !self.ws.audit_has(&step.audit.op_id)? {
            self.ws.audit(&by_recovery(step.event(None)))?;
        }
        fsutil::destroy_dir(stage, &[KEY, PFX, PFX_PASS])?;
        self.crl_envs.insert(ex.ca.clone());
        self.note(
            Action::Revoked,
            ex.env,
            Some(serial),
            Some(stage),
            format!(
                "revoked {serial} of {}/{} {} (reason {UNFINISHED_REASON}) and destroyed its key and folder: an interrupted {op} run signed it but never finished its folder",
                ex.tenant, ex.env, ex.kind
            ),
        );
        Ok(())
    }

    /// Leaves tenant/env/kind with one active certificate, the newest: an interrupted
    /// run may have placed a new one without marking the old one superseded. (Leaves
    /// signed for no tenant are many at once by design.)
    fn one_active(&mut self, env: &str, tenant: &str, kind: Kind) -> Result<(), WsError> {
        if tenant == crate::ops::csr::SIGNED_TENANT {
            return Ok(());
        }
        let recs = self.ws.leaves(&Filter {
            tenant: Some(tenant),
            env: Some(env),
            kind: Some(kind),
        })?;
        let active: Vec<&LeafRecord> = recs
            .iter()
            .filter(|r| r.meta.status == Status::Active && !r.meta.fixture)
            .collect();
        let Some((newest, older)) = active.split_last() else {
            return self.ws.refresh_current(env, tenant, kind);
        };
        for old in older {
            if mark_superseded(&old.dir, &newest.meta.serial)? {
                self.note(
                    Action::Superseded,
                    env,
                    Some(&old.meta.serial),
                    Some(&old.dir),
                    format!(
                        "marked {} of {tenant}/{env} {kind} superseded by {}: a tenant/env/kind keeps one active certificate",
                        old.meta.serial, newest.meta.serial
                    ),
                );
            }
        }
        // the stable path follows what is active (a kill may have come before it moved)
        self.ws.refresh_current(env, tenant, kind)
    }

    fn settle_revocation(&mut self, rv: &RevocationStep) -> Result<(), WsError> {
        let recorded = rv.record(self.ws)?;
        let marked = rv.mark(self.ws)?;
        if rv.tenant != crate::ops::csr::SIGNED_TENANT {
            self.ws.refresh_current(&rv.env, &rv.tenant, rv.kind)?;
        }
        self.crl_envs.insert(rv.loc());
        if recorded || marked {
            self.note(
                Action::RevocationCompleted,
                &rv.env,
                Some(&rv.serial),
                None,
                format!(
                    "completed the revocation of {} ({}/{} {}, reason {}) that an interrupted revoke run had begun",
                    rv.serial, rv.tenant, rv.env, rv.kind, rv.reason
                ),
            );
        }
        if !self.ws.audit_has(&rv.audit.op_id)? {
            let dir = self.ws.leaf_dir(&rv.env, &rv.tenant, rv.kind, &rv.serial);
            let sha = read_record(&dir).map(|r| r.meta.sha256);
            let mut ev = rv.event(sha.as_deref());
            if !self.ws.crl_lists(rv.loc(), &rv.serial) {
                ev.detail = Some(format!(
                    "reason {}; the CRL is not re-signed yet",
                    rv.reason
                ));
            }
            self.ws.audit(&by_recovery(ev))?;
            self.audited(&rv.env, &rv.serial, "revoke");
        }
        Ok(())
    }

    fn settle_crl(&mut self, c: &CrlStep, op: &str) -> Result<(), WsError> {
        let signed = self
            .ws
            .read_crl(c.loc())
            .and_then(|i| i.crl_number)
            .and_then(|n| u64::from_str_radix(&n, 16).ok())
            .is_some_and(|n| n >= c.crl_number);
        let Some(a) = &c.audit else {
            self.crl_envs.insert(c.loc());
            return Ok(());
        };
        if !signed {
            self.crl_needed(
                &c.loc(),
                format!(
                    "an interrupted {op} run did not write CRL number {}",
                    c.crl_number
                ),
            );
        } else if !self.ws.audit_has(&a.op_id)? {
            let mut ev = a.event();
            ev.env = Some(&c.env);
            self.ws.audit(&by_recovery(ev))?;
            self.audited(&c.env, &format!("CRL {}", c.crl_number), op);
        }
        Ok(())
    }

    fn crl_needed(&mut self, ca: &super::CaLoc, why: String) {
        let env = ca.env.as_str();
        let path = self.ws.crl(ca);
        if self
            .done
            .iter()
            .any(|d| d.action == Action::CrlNeeded && d.path.as_deref() == Some(path.as_path()))
        {
            return;
        }
        self.note(
            Action::CrlNeeded,
            env,
            None,
            Some(&path),
            format!("the {env} CRL must be re-signed ({why}): run `mtlsctl crl --env {env}`"),
        );
    }

    /// For each environment with a revocation recovery saw: says so when its CRL on disk
    /// does not list every revocation of the CA state.
    fn check_crls(&mut self) -> Result<(), WsError> {
        for env in std::mem::take(&mut self.crl_envs) {
            let st = self.ws.load_ca_state(&env)?;
            let listed: BTreeSet<String> = self
                .ws
                .read_crl(&env)
                .map(|i| i.revoked.into_iter().map(|r| r.serial).collect())
                .unwrap_or_default();
            let missing = st
                .revocations
                .iter()
                .filter(|r| !listed.contains(&r.serial))
                .count();
            if missing > 0 {
                self.crl_needed(
                    &env,
                    format!("it does not list {missing} revoked certificate(s) yet"),
                );
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// the CA

impl Recovery<'_> {
    fn settle_ca(&mut self, c: &CaStep, op: &str) -> Result<(), WsError> {
        if c.hierarchy.is_some() {
            return self.settle_ca_change(c, op);
        }
        let set = c.set_loc();
        let env = c.env.as_str();
        let stage = fsutil::stage_path(&self.ws.ca_dir(&set));
        let placed = self.ws.ca_cert(&set).is_file();
        let settle = |r: &mut Self| r.settle_ca_stage(&set, &stage, Some(&c.serial), op);
        if !self.in_place(env, placed, &stage, settle)? {
            // never made: an offline root key written for it certifies nothing
            if let Some(k) = &c.root_key_out {
                let _ = fs::remove_file(k);
            }
            return Ok(());
        }
        let cert = fsutil::read(&self.ws.ca_cert(&set))?;
        let (serial, sha) = cert_serial_sha(&cert).unwrap_or_default();
        if serial == c.serial && !self.ws.audit_has(&c.audit.op_id)? {
            let mut ev = c.audit.event();
            ev.env = Some(env);
            ev.tenant = set.tenant.as_deref();
            ev.serial = Some(&c.serial);
            ev.sha256 = Some(&sha);
            self.ws.audit(&by_recovery(ev))?;
            self.audited(env, &c.serial, &c.audit.op);
        }
        Ok(())
    }

    /// A rotation or retirement: it took effect when the set's hierarchy.json is the one
    /// journaled. Otherwise, when every new CA folder is complete (placed, or staged with
    /// its ca.crt), they are placed and the record written; else what was made is
    /// removed (nothing was signed with it). Then the audit line, if missing.
    fn settle_ca_change(&mut self, c: &CaStep, op: &str) -> Result<(), WsError> {
        let set = c.set_loc();
        let env = c.env.as_str();
        let want = c.hierarchy.as_ref().expect("checked by the caller");
        let took = self.ws.load_hierarchy(&set).ok().flatten().as_ref() == Some(want);
        if !took {
            let complete = c.dirs.iter().all(|d| {
                self.ws.ca_cert(d).is_file()
                    || fs::metadata(fsutil::stage_path(&self.ws.ca_dir(d)).join("ca.crt"))
                        .is_ok_and(|m| m.len() > 0)
            });
            if !complete {
                for d in &c.dirs {
                    let dir = self.ws.ca_dir(d);
                    fsutil::destroy_dir(&fsutil::stage_path(&dir), &["ca.key"])?;
                    fsutil::destroy_dir(&dir, &["ca.key"])?;
                }
                if let Some(k) = &c.root_key_out {
                    let _ = fs::remove_file(k);
                }
                self.note(
                    Action::CaRemoved,
                    env,
                    Some(&c.serial),
                    Some(&self.ws.ca_dir(&set)),
                    format!(
                        "removed the CAs an interrupted {op} run had begun (they signed nothing); run it again"
                    ),
                );
                return Ok(());
            }
            for d in &c.dirs {
                let dir = self.ws.ca_dir(d);
                let stage = fsutil::stage_path(&dir);
                if !dir.exists() && stage.exists() {
                    fsutil::sync_tree(&stage)?;
                    fsutil::place_staged(&stage, &dir)?;
                    fsutil::sync_dir(dir.parent().unwrap_or(self.ws.root()))?;
                }
            }
            if let Some(r) = &c.reissued
                && fsutil::read(&self.ws.ca_cert(&r.ca)).ok().as_deref() != Some(r.pem.as_bytes())
            {
                fsutil::write_atomic(&self.ws.ca_cert(&r.ca), r.pem.as_bytes(), fsutil::PUBLIC)?;
            }
            self.ws.save_hierarchy(&set, want)?;
            self.note(
                Action::CaPlaced,
                env,
                Some(&c.serial),
                Some(&self.ws.hierarchy_path(&set)),
                format!("completed the {op} an interrupted run had prepared"),
            );
        }
        if !self.ws.audit_has(&c.audit.op_id)? {
            let mut ev = c.audit.event();
            ev.env = Some(env);
            ev.tenant = set.tenant.as_deref();
            ev.serial = Some(&c.serial);
            self.ws.audit(&by_recovery(ev))?;
            self.audited(env, &c.serial, &c.audit.op);
        }
        Ok(())
    }

    /// Places a complete staged CA (moving aside a CA folder without its certificate) or
    /// removes a half-made one; true when placed.
    fn settle_ca_stage(
        &mut self,
        set: &super::CaLoc,
        stage: &Path,
        serial: Option<&str>,
        op: &str,
    ) -> Result<bool, WsError> {
        let env = set.env.as_str();
        if !ca_stage_complete(stage, serial) {
            fsutil::destroy_dir(stage, &["ca.key"])?;
            self.note(
                Action::CaRemoved,
                env,
                None,
                Some(stage),
                format!(
                    "removed the half-made {env} CA an interrupted {op} run left (it signed nothing); `mtlsctl ca init --env {env}` can run again"
                ),
            );
            return Ok(false);
        }
        if let Some(aside) = self.ws.move_aside_broken_ca(set)? {
            self.moved_aside(env, &aside);
        }
        let ca_dir = self.ws.ca_dir(set);
        fsutil::sync_tree(stage)?;
        fsutil::place_staged(stage, &ca_dir)?;
        fsutil::sync_dir(ca_dir.parent().unwrap_or(self.ws.root()))?;
        self.note(
            Action::CaPlaced,
            env,
            serial,
            Some(&ca_dir),
            format!("put the {env} CA in place: an interrupted {op} run had made it completely"),
        );
        Ok(true)
    }

    fn moved_aside(&mut self, env: &str, aside: &Path) {
        self.note(
            Action::CaMovedAside,
            env,
            None,
            Some(aside),
            format!(
                "moved the {env} CA folder, which has no ca.crt, aside to {} (nothing was deleted)",
                aside.display()
            ),
        );
    }
}

/// Whether a staged CA folder has every file, its certificate whole (with `serial`).
fn ca_stage_complete(stage: &Path, serial: Option<&str>) -> bool {
    // an offline root has no key in the workspace: its hierarchy.json says so
    let offline = fs::read(stage.join(super::hierarchy::HIERARCHY))
        .ok()
        .and_then(|b| serde_json::from_slice::<super::hierarchy::Hierarchy>(&b).ok())
        .is_some_and(|h| h.get("").is_some_and(|r| r.offline));
    let key_ok = offline || fs::metadata(stage.join("ca.key")).is_ok_and(|m| m.len() > 0);
    let state_ok = fs::read(stage.join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<CaState>(&b).ok())
        .is_some();
    let cert_serial = fs::read(stage.join("ca.crt"))
        .ok()
        .and_then(|b| cert_serial_sha(&b))
        .map(|(s, _)| s);
    key_ok
        && state_ok
        && stage.join("crl.pem").is_file()
        && cert_serial.is_some_and(|s| serial.is_none_or(|w| w == s))
}

// ---------------------------------------------------------------------------------------
// folders no journal names

impl Recovery<'_> {
    /// Staging folders no journal names: left by older versions (`.tmp-*`), or by a
    /// run whose journal was lost.
    fn strays(&mut self) -> Result<(), WsError> {
        for env_dir in subdirs(&self.ws.root().join("pki"), false) {
            let env = file_name(&env_dir);
            let ca_stage = fsutil::stage_path(&self.ws.ca_dir(&env));
            if ca_stage.is_dir() && !self.ws.ca_cert(&env).is_file() {
                self.settle_ca_stage(&super::CaLoc::env(&env), &ca_stage, None, UNJOURNALED)?;
            } else if ca_stage.is_dir() {
                self.remove(
                    &env,
                    &ca_stage,
                    "an unfinished CA folder; the environment has its CA",
                )?;
            }
            for tenant_dir in subdirs(&env_dir, false) {
                let tenant = file_name(&tenant_dir);
                if tenant == "ca" {
                    continue;
                }
                for kind_dir in subdirs(&tenant_dir, false) {
                    let Ok(kind) = file_name(&kind_dir).parse::<Kind>() else {
                        continue;
                    };
                    let strays = subdirs(&kind_dir, true);
                    for stray in &strays {
                        self.stray_leaf(&env, &tenant, kind, stray)?;
                    }
                    if !strays.is_empty() && tenant != crate::ops::csr::SIGNED_TENANT {
                        // a stray placed or revoked may change which one is active; a
                        // folder that cannot be read is reported by the run's own checks
                        let _ = self.ws.refresh_current(&env, &tenant, kind);
                    }
                }
            }
        }
        Ok(())
    }

    fn stray_leaf(
        &mut self,
        env: &str,
        tenant: &str,
        kind: Kind,
        stray: &Path,
    ) -> Result<(), WsError> {
        let name = file_name(stray);
        let ex = Expect {
            env,
            tenant,
            kind,
            serial: None,
            fallback: name
                .strip_prefix(fsutil::STAGE_PREFIX)
                .filter(|s| is_hex(s))
                .map(str::to_string),
            has_key: None,
            ca: signing_ca_guess(self.ws, env, tenant, kind),
        };
        let dir = |s: &str| self.ws.leaf_dir(env, tenant, kind, s);
        let serial = match examine(stray, &ex) {
            Found::Complete(s) if !is_placed(&dir(&s)) && !self.revoked_in_state(&ex.ca, &s)? => s,
            // revoked or removed: each step of that is safe to repeat if killed
            _ => return self.settle_stage(stray, &ex, UNJOURNALED).map(|_| ()),
        };
        // placing it takes several steps: journal them first, as a run does
        let Some(rec) = read_record(stray) else {
            return Ok(());
        };
        let mut intent = Intent::new("recover", self.now);
        let audit = intent.audit_step(&rec.meta.origin, None);
        intent.leaves.push(LeafStep {
            tenant: tenant.to_string(),
            env: env.to_string(),
            kind,
            serial: serial.clone(),
            dir: self.ws.relative(&dir(&serial)),
            supersedes: None,
            has_key: stray.join(KEY).is_file(),
            audit,
            ca: rec.meta.ca.clone(),
        });
        let journal = self.ws.begin(&intent)?;
        let stage = fsutil::stage_path(&dir(&serial));
        if stray != stage {
            fs::rename(stray, &stage).map_err(|e| super::io_err(stray, "rename", e))?;
            fsutil::sync_dir(stage.parent().unwrap_or(self.ws.root()))?;
        }
        self.settle_leaf(&intent.leaves[0], UNJOURNALED)?;
        journal.done();
        Ok(())
    }
}

/// How far a staged leaf folder got ([`Found`]).
fn examine(stage: &Path, ex: &Expect<'_>) -> Found {
    let cert_path = stage.join(CERT);
    if !cert_path.exists() {
        return Found::Empty;
    }
    let from_cert = fs::read(&cert_path)
        .ok()
        .and_then(|b| cert_serial_sha(&b))
        .map(|(s, _)| s);
    let Some(serial) = from_cert
        .clone()
        .or_else(|| ex.serial.clone())
        .or_else(|| ex.fallback.clone())
    else {
        return Found::Partial(None);
    };
    let agrees =
        from_cert.as_deref() == Some(&serial) && ex.serial.as_deref().is_none_or(|s| s == serial);
    let meta = fs::read(stage.join(META))
        .ok()
        .and_then(|b| serde_json::from_slice::<LeafMeta>(&b).ok());
    let complete = agrees
        && meta.is_some_and(|m| {
            m.serial == serial
                && m.env == ex.env
                && m.tenant == ex.tenant
                && m.kind == ex.kind
                && files_complete(stage, ex.has_key.unwrap_or(m.origin != "sign"))
        });
    if complete {
        Found::Complete(serial)
    } else {
        Found::Partial(Some(serial))
    }
}

/// The files of a leaf folder besides cert.pem and meta.json are all there.
fn files_complete(dir: &Path, needs_key: bool) -> bool {
    let nonempty = |n: &str| fs::metadata(dir.join(n)).is_ok_and(|m| m.len() > 0);
    nonempty(CHAIN)
        && nonempty(crate::ops::issue::FULLCHAIN)
        && (!needs_key || nonempty(KEY))
        && dir.join(PFX).is_file() == dir.join(PFX_PASS).is_file()
}

/// The serial (lowercase hex) and SHA-256 fingerprint of the first certificate in a PEM.
fn cert_serial_sha(pem: &[u8]) -> Option<(String, String)> {
    let der = crate::pki::inspect::certificates(pem)
        .ok()?
        .into_iter()
        .next()?;
    let b = crate::pki::inspect::brief(&der).ok()?;
    let sha = crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(&der));
    Some((b.serial, sha))
}

/// A leaf's record from its folder, if its meta.json reads.
pub(crate) fn read_record(dir: &Path) -> Option<LeafRecord> {
    let bytes = fs::read(dir.join(META)).ok()?;
    let meta = serde_json::from_slice(&bytes).ok()?;
    Some(LeafRecord {
        dir: dir.to_path_buf(),
        meta,
    })
}

/// Marks an audit event as written by recovery, in its detail.
fn by_recovery(mut ev: Event<'_>) -> Event<'_> {
    ev.detail = Some(match ev.detail.take() {
        Some(d) => format!("{d}; recorded by recovery"),
        None => "recorded by recovery".into(),
    });
    ev
}

fn read_intent(p: &Path) -> Result<Intent, WsError> {
    let bytes = fsutil::read(p)?;
    let i: Intent = serde_json::from_slice(&bytes).map_err(|e| corrupt(p, &e.to_string()))?;
    if i.version != 1 {
        return Err(corrupt(
            p,
            "written by a newer mtlsctl (journal version is not 1)",
        ));
    }
    Ok(i)
}

/// A journal's names must be plain names, its serials hex: it decides what is removed.
fn sane(p: &Path, env: &str, tenant: Option<&str>, serial: &str) -> Result<(), WsError> {
    let names_ok = check_name("environment", env).is_ok()
        && tenant.is_none_or(|t| !t.is_empty() && !t.starts_with('.') && !t.contains(['/', '\\']));
    if names_ok && is_hex(serial) {
        Ok(())
    } else {
        Err(corrupt(p, "a name or serial in it is not valid"))
    }
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn corrupt(p: &Path, reason: &str) -> WsError {
    WsError::Corrupt {
        path: p.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The sub-folders of `p`, sorted: the hidden ones that are staging folders
/// (`.stage-*`, `.tmp-*`) when `staging`, else the visible ones.
fn subdirs(p: &Path, staging: bool) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(p) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            if staging {
                n.starts_with(fsutil::STAGE_PREFIX) || n.starts_with(".tmp-")
            } else {
                !n.starts_with('.')
            }
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Workspace {
    /// The CRL on disk of `env`, if it reads.
    pub fn read_crl(&self, ca: impl Into<super::CaLoc>) -> Option<crate::pki::inspect::CrlInfo> {
        let data = fs::read(self.crl(ca)).ok()?;
        let block = crate::pki::inspect::blocks(&data)
            .ok()?
            .into_iter()
            .next()?;
        crate::pki::inspect::crl_info(&block.der).ok()
    }

    /// Whether the CRL on disk of `env` lists `serial`.
    pub fn crl_lists(&self, ca: impl Into<super::CaLoc>, serial: &str) -> bool {
        self.read_crl(ca)
            .is_some_and(|i| i.revoked.iter().any(|r| r.serial == serial))
    }

    /// Moves `pki/<env>/ca` aside to `pki/<env>/.ca-broken-<unix time>` when it has no
    /// ca.crt (a `ca init` of an older version killed half-way), so that a CA can be made
    /// there. Nothing is deleted. Returns where it went.
    pub fn move_aside_broken_ca(
        &self,
        ca: impl Into<super::CaLoc>,
    ) -> Result<Option<PathBuf>, WsError> {
        let loc = ca.into();
        let ca = self.ca_dir(&loc);
        if !ca.exists() || self.ca_cert(&loc).is_file() {
            return Ok(None);
        }
        let parent = ca.parent().unwrap_or(self.root()).to_path_buf();
        let t = OffsetDateTime::now_utc().unix_timestamp();
        let mut to = parent.join(format!(".ca-broken-{t}"));
        let mut n = 1;
        while to.exists() {
            n += 1;
            to = parent.join(format!(".ca-broken-{t}-{n}"));
        }
        fs::rename(&ca, &to).map_err(|e| super::io_err(&ca, "move aside", e))?;
        fsutil::sync_dir(&parent)?;
        Ok(Some(to))
    }
}
