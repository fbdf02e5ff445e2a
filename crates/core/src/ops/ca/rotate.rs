//! `ca rotate` and `ca retire`: replacing a tier of a set with an overlap, and taking an
//! old CA out of the trust bundles once nothing current chains to it.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use super::init::{NewCa, build_issuing, build_root, offline_key_path, write_offline_key};
use super::{CaItem, CaSet, CaView, issuer_of, item, load_signer, read_set, sha256_hex};
use crate::fault::{self, Fault};
use crate::ops::{OpError, Result};
use crate::pki::Kind;
use crate::pki::cert::{self, Signer};
use crate::pki::hierarchy as hier;
use crate::profile::Profiles;
use crate::workspace::fsutil::{self, NewFile, PUBLIC};
use crate::workspace::hierarchy::{CaEntry, CaRole, CaStatus, Hierarchy};
use crate::workspace::inventory::{Filter, Status};
use crate::workspace::journal::{CaStep, Intent, ReissuedCert};
use crate::workspace::{CaLoc, Workspace};

/// Which tier `ca rotate` replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A new issuing CA under the active root (the first one of a kind, or a one-tier
    /// set's first: the move to two tiers).
    Issuing,
    /// A new root, cross-certified by the old one, and new issuing CAs below it.
    Root,
}

/// What `ca rotate` is asked.
pub struct RotateRequest<'a> {
    pub tier: Tier,
    /// Only the issuing CA of this kind (default: every kind the set issues).
    pub kind: Option<Kind>,
    pub passphrase: Option<&'a SecretString>,
    /// The active root's key, when it is kept offline.
    pub root_key: Option<&'a Path>,
    /// Where a new root's key goes when it is to be kept offline.
    pub root_key_out: Option<&'a Path>,
}

/// What `ca rotate` did.
#[derive(Debug, Serialize)]
pub struct RotateReport {
    pub env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub tier: Tier,
    /// The CAs made (a new root, its cross-certificate, issuing CAs).
    pub created: Vec<CaItem>,
    /// The CAs the rotation replaced: still trusted until retired.
    pub retiring: Vec<CaItem>,
    /// How many current certificates chain to a retiring CA: each is due (reason
    /// ca-rotation) and `renew` reissues it from the new CA.
    pub due: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_key_out: Option<PathBuf>,
    /// What the operator does next.
    pub next: Vec<String>,
}

/// The signer of the set's active root: its key from the workspace, or `root_key` for
/// an offline root (which then must be given).
fn root_signer(
    ws: &Workspace,
    set: &CaSet,
    passphrase: Option<&SecretString>,
    root_key: Option<&Path>,
    what: &str,
) -> Result<Signer> {
    let root = set.root_view();
    if root.entry.offline && root_key.is_none() {
        return Err(OpError::RootKeyNeeded {
            env: set.base.env.clone(),
            what: what.to_string(),
        });
    }
    load_signer(ws, &root.loc, passphrase, root_key)
}

fn tenant_flag(set: &CaSet) -> String {
    set.base
        .tenant
        .as_ref()
        .map(|t| format!(" --tenant {t}"))
        .unwrap_or_default()
}

/// How many current (active) leaves chain to one of `locs`.
fn current_leaves_of(ws: &Workspace, set: &CaSet, locs: &[CaLoc]) -> Result<Vec<String>> {
    let leaves = ws.leaves(&Filter {
        env: Some(&set.base.env),
        tenant: set.base.tenant.as_deref(),
        ..Filter::default()
    })?;
    Ok(leaves
        .iter()
        .filter(|l| l.meta.status == Status::Active)
        .filter(|l| locs.contains(&issuer_of(&l.meta)))
        .map(|l| {
            format!(
                "{}/{}/{} {}",
                l.meta.tenant, l.meta.env, l.meta.kind, l.meta.serial
            )
        })
        .collect())
}

/// Replaces a tier of the set `tenant`'s leaves in `env` chain to (the env's own set
/// when tenants share it). From then on issue and renew sign with the new CA; every
/// current certificate of a replaced CA is due (ca-rotation); the trust bundles carry
/// old and new CAs until `retire`. A root rotation also certifies the new root's key
/// with the old root (a cross-certificate handed in chain.pem during the overlap).
/// The new folders are staged and placed, then hierarchy.json is rewritten: the step
/// that makes them count, under a journal that the next run completes or undoes.
pub fn rotate(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    tenant: Option<&str>,
    req: &RotateRequest<'_>,
    now: OffsetDateTime,
) -> Result<RotateReport> {
    ws.audit_preflight()?;
    let settings = profiles.resolve_ca_for(env, tenant)?;
    if let Some(t) = tenant
        && settings.tenant.is_none()
    {
        return Err(OpError::TenantSharesCa {
            env: env.into(),
            tenant: t.into(),
        });
    }
    let base = CaLoc::base(env, settings.tenant.as_deref());
    if !ws.ca_cert(&base).is_file() {
        return Err(super::missing(&settings, env));
    }
    let set = read_set(ws, &base)?;
    let old_root = set.root_view().clone();
    let mut h = set.hierarchy.clone();
    let kinds: Vec<Kind> = match req.kind {
        Some(k) => vec![k],
        None => {
            let mut ks: Vec<Kind> = [Kind::Client, Kind::Server]
                .into_iter()
                .filter(|k| h.issuing(*k).is_some())
                .collect();
            if ks.is_empty() {
                ks.push(Kind::Client);
            }
            ks
        }
    };
    let what = match req.tier {
        Tier::Issuing => "a new issuing CA",
        Tier::Root => "the cross-certificate of a root rotation",
    };
    let old_signer = super::with_urls(
        root_signer(ws, &set, req.passphrase, req.root_key, what)?,
        &settings,
        profiles,
        &old_root.loc,
    )?;
    if req.tier == Tier::Root && old_root.entry.offline && req.root_key_out.is_none() {
        return Err(OpError::RootKeyOutNeeded { env: env.into() });
    }
    let alg = settings.key.value;
    let mut made: Vec<NewCa> = Vec::new();
    let mut cross: Vec<(CaEntry, cert::Built)> = Vec::new();
    let mut offline_path = None;
    let mut reissued: Option<cert::Built> = None;
    let mut migrated_signer = None;
    if req.tier == Tier::Issuing
        && crate::pki::inspect::cert_info(&old_root.der)?.path_length == Some(0)
    {
        // a one-tier root (path length 0) has no room for an issuing CA: it is
        // re-issued with the same name and key, so everything it signed still verifies
        let key = super::load_key(ws, &old_root.loc, req.passphrase, req.root_key)?;
        let subject =
            crate::pki::dn::Subject::parse(&crate::pki::inspect::cert_info(&old_root.der)?.subject)
                .map_err(OpError::Msg)?;
        let rserial = crate::pki::serial::random_serial()?;
        let built = hier::reissue_root_with_serial(
            &old_root.der,
            &subject,
            &key,
            settings.path_length.value.max(1),
            now,
            &rserial,
        )?;
        migrated_signer = Some(Signer::new(&built.der, &key)?);
        if let Some(e) = h.get_mut(&old_root.entry.dir) {
            e.serial = crate::pki::serial::to_hex(&built.serial);
            e.sha256 = sha256_hex(&built.der);
            e.not_after = built.not_after;
        }
        reissued = Some(built);
    }
    let old_signer = match migrated_signer {
        Some(s) => super::with_urls(s, &settings, profiles, &old_root.loc)?,
        None => old_signer,
    };
    match req.tier {
        Tier::Issuing => {
            for k in &kinds {
                let serial = crate::pki::serial::random_serial()?;
                let gen_ = h.issuing_generations(*k) + 1;
                made.push(build_issuing(
                    &base,
                    &settings.issuing_request(*k, gen_),
                    *k,
                    alg,
                    req.passphrase,
                    settings.crl_validity.value.to_time(),
                    &old_signer,
                    &old_root.entry.dir,
                    now,
                    &serial,
                )?);
            }
        }
        Tier::Root => {
            let serial = crate::pki::serial::random_serial()?;
            let serial_hex = crate::pki::serial::to_hex(&serial);
            let dir = format!("roots/{serial_hex}");
            let gen_ = h.root_generations() + 1;
            let mut rreq = settings.root_request(gen_);
            // a rotated root needs room for its issuing CAs whatever the tiers were, and
            // its set has two tiers from now on: its CRL lives ca.root.crl_validity
            rreq.path_length = rreq.path_length.max(1);
            let root = build_root(
                &base,
                &dir,
                &rreq,
                alg,
                req.passphrase,
                settings.root_crl_validity.value.to_time(),
                req.root_key_out.is_some(),
                now,
                &serial,
            )?;
            if let Some(d) = req.root_key_out {
                offline_path = Some(offline_key_path(d, &base, &serial_hex));
            }
            let new_signer = super::with_urls(root.signer()?, &settings, profiles, &root.loc)?;
            for k in &kinds {
                let s = crate::pki::serial::random_serial()?;
                let gen_ = h.issuing_generations(*k) + 1;
                let sub = settings.issuing_request(*k, gen_);
                let issuing = build_issuing(
                    &base,
                    &sub,
                    *k,
                    alg,
                    req.passphrase,
                    settings.crl_validity.value.to_time(),
                    &new_signer,
                    &dir,
                    now,
                    &s,
                )?;
                // the same issuing CA certified by the old root: what gateways that hold
                // only the old root build the new leaves' path through (leaf -> it ->
                // old root, within the old root's path length)
                let xserial = crate::pki::serial::random_serial()?;
                let xbuilt = hier::sign_sub_ca_with_serial(
                    &sub,
                    &issuing.key.to_rcgen()?,
                    &old_signer,
                    now,
                    &xserial,
                )?;
                let xhex = crate::pki::serial::to_hex(&xserial);
                cross.push((
                    CaEntry {
                        dir: format!("cross/{xhex}"),
                        role: CaRole::Cross,
                        kind: Some(*k),
                        parent: Some(old_root.entry.dir.clone()),
                        certifies: Some(issuing.entry.dir.clone()),
                        status: CaStatus::Active,
                        serial: xhex,
                        sha256: sha256_hex(&xbuilt.der),
                        offline: false,
                        not_after: xbuilt.not_after,
                        created_at: cert::whole_seconds(now),
                    },
                    xbuilt,
                ));
                made.push(issuing);
            }
            made.insert(0, root);
        }
    }
    fault::hit(Fault::AfterSign);
    // the hierarchy after: old CAs of the replaced tier retiring, the new ones active
    let mut retiring_dirs: Vec<String> = Vec::new();
    for c in h.cas.iter_mut() {
        let replaced = match req.tier {
            Tier::Issuing => {
                c.role == CaRole::Issuing && c.kind.is_some_and(|k| kinds.contains(&k))
            }
            Tier::Root => {
                c.role == CaRole::Root || c.role == CaRole::Issuing || c.role == CaRole::Cross
            }
        };
        if replaced && c.status == CaStatus::Active {
            c.status = if c.role == CaRole::Cross {
                CaStatus::Retired
            } else {
                CaStatus::Retiring
            };
            if c.role != CaRole::Cross {
                retiring_dirs.push(c.dir.clone());
            }
        }
    }
    for n in &made {
        h.cas.push(n.entry.clone());
    }
    for (x, _) in &cross {
        h.cas.push(x.clone());
    }
    let first_serial = made
        .first()
        .map(|m| m.entry.serial.clone())
        .unwrap_or_default();
    let mut intent = Intent::new("ca-rotate", now);
    let detail = rotate_detail(req.tier, &made, &cross, &retiring_dirs, &set);
    let audit = intent.audit_step("ca-rotate", Some(detail));
    let mut dirs: Vec<CaLoc> = made.iter().map(|m| m.loc.clone()).collect();
    for (x, _) in &cross {
        dirs.push(base.child(&x.dir));
    }
    intent.ca = Some(CaStep {
        env: env.to_string(),
        serial: first_serial.clone(),
        audit,
        set: Some(base.clone()),
        dirs: dirs.clone(),
        hierarchy: Some(h.clone()),
        root_key_out: offline_path.clone(),
        reissued: reissued.as_ref().map(|b| ReissuedCert {
            ca: old_root.loc.clone(),
            pem: b.pem.clone(),
        }),
    });
    let journal = ws.begin(&intent)?;
    let step = intent.ca.as_ref().expect("journaled above");
    let written = (|| -> Result<Option<PathBuf>> {
        let out = match (req.root_key_out, made.first()) {
            (Some(d), Some(root)) if req.tier == Tier::Root => Some(write_offline_key(
                d,
                &base,
                &root.entry.serial,
                &root.key_pem,
            )?),
            _ => None,
        };
        for n in &made {
            let names = n.files("");
            place(ws, &n.loc, &names)?;
        }
        for (x, b) in &cross {
            place(
                ws,
                &base.child(&x.dir),
                &[("ca.crt".to_string(), b.pem.as_bytes(), PUBLIC)],
            )?;
        }
        if let Some(b) = &reissued {
            fsutil::write_atomic(&ws.ca_cert(&old_root.loc), b.pem.as_bytes(), PUBLIC)?;
        }
        fault::hit(Fault::AfterPlace);
        ws.save_hierarchy(&base, &h)?;
        fault::hit(Fault::AfterRecord);
        Ok(out)
    })();
    let root_key_out = match written {
        Ok(o) => o,
        Err(e) => {
            if ws.load_hierarchy(&base).ok().flatten().as_ref() != Some(&h) {
                undo(ws, &dirs, offline_path.as_deref());
                journal.done();
            }
            return Err(e);
        }
    };
    let mut ev = step.audit.event();
    ev.env = Some(env);
    ev.tenant = base.tenant.as_deref();
    ev.serial = Some(&step.serial);
    let sha = made.first().map(|m| sha256_hex(&m.built.der));
    ev.sha256 = sha.as_deref();
    crate::ops::issue::audit(ws, &[ev], true)?;
    journal.done();
    for n in &made {
        crate::ops::doctor::record_ca(ws, &n.loc, &n.built.der, "ca-rotate", 1)?;
    }
    if let Some(b) = &reissued {
        let state = ws.load_ca_state(&old_root.loc)?;
        let floor = crate::ops::doctor::crl_floor(ws, &old_root.loc, &state);
        crate::ops::doctor::record_ca(ws, &old_root.loc, &b.der, "ca-rotate", floor)?;
    }
    let after = read_set(ws, &base)?;
    let retiring_locs: Vec<CaLoc> = retiring_dirs
        .iter()
        .map(|d| super::loc_in(&base, d))
        .collect();
    let due = current_leaves_of(ws, &after, &retiring_locs)?.len();
    let created = dirs
        .iter()
        .filter_map(|l| after.by_loc(l))
        .map(|c| item(ws, &base, c))
        .collect::<Result<Vec<_>>>()?;
    let retiring = retiring_locs
        .iter()
        .filter_map(|l| after.by_loc(l))
        .map(|c| item(ws, &base, c))
        .collect::<Result<Vec<_>>>()?;
    let tf = tenant_flag(&after);
    let mut next = vec![format!(
        "send the new trust bundle to every gateway of {env}: `mtlsctl export --env {env} --tenant T --format F` (ca-chain.pem holds old and new CAs until `ca retire`)"
    )];
    if due > 0 {
        next.push(format!(
            "{due} current certificate(s) chain to the replaced CA: `mtlsctl renew --env {env}{tf}` reissues them from the new one"
        ));
    }
    next.push(format!(
        "once every gateway has the new bundle and nothing current chains to the old CA: `mtlsctl ca retire --env {env}{tf} --serial HEX`"
    ));
    Ok(RotateReport {
        env: env.to_string(),
        tenant: base.tenant.clone(),
        tier: req.tier,
        created,
        retiring,
        due,
        root_key_out,
        next,
    })
}

fn rotate_detail(
    tier: Tier,
    made: &[NewCa],
    cross: &[(CaEntry, cert::Built)],
    retiring: &[String],
    set: &CaSet,
) -> String {
    let mut parts: Vec<String> = made
        .iter()
        .map(|m| match m.entry.kind {
            Some(k) => format!("new issuing CA ({k}) {}", m.entry.serial),
            None => format!("new root {}", m.entry.serial),
        })
        .collect();
    for (x, _) in cross {
        parts.push(format!("cross-certificate {}", x.serial));
    }
    let old: Vec<String> = retiring
        .iter()
        .filter_map(|d| set.view(d))
        .map(|v| v.entry.serial.clone())
        .collect();
    if !old.is_empty() {
        parts.push(format!("retiring {}", old.join(", ")));
    }
    format!(
        "tier {}: {}",
        match tier {
            Tier::Issuing => "issuing",
            Tier::Root => "root",
        },
        parts.join("; ")
    )
}

/// Stages one CA folder and renames it into place.
fn place(ws: &Workspace, loc: &CaLoc, names: &[(String, &[u8], u32)]) -> Result<()> {
    let dir = ws.ca_dir(loc);
    ws.check_no_symlink(&dir)?;
    let files: Vec<NewFile<'_>> = names
        .iter()
        .map(|(n, b, m)| NewFile {
            name: n,
            bytes: b,
            mode: *m,
        })
        .collect();
    let staged = fsutil::stage_dir_synced(&dir, &files)?;
    fault::hit(Fault::AfterStage);
    staged.commit()?;
    fsutil::sync_dir(dir.parent().unwrap_or(ws.root()))?;
    Ok(())
}

/// Removes what a rotation that did not take effect placed or staged.
pub(crate) fn undo(ws: &Workspace, dirs: &[CaLoc], offline_key: Option<&Path>) {
    for d in dirs {
        let dir = ws.ca_dir(d);
        let _ = fsutil::destroy_dir(&fsutil::stage_path(&dir), &["ca.key"]);
        let _ = fsutil::destroy_dir(&dir, &["ca.key"]);
    }
    if let Some(k) = offline_key {
        let _ = std::fs::remove_file(k);
    }
}

/// Makes the issuing CA for `kind` leaves when the set has two tiers and none yet (an
/// environment's first server certificate), signed by the root key in the workspace;
/// with an offline root it says how to make one. Returns what it made, if anything.
pub fn ensure_issuing(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    tenant: Option<&str>,
    kind: Kind,
    passphrase: Option<&SecretString>,
    now: OffsetDateTime,
) -> Result<Option<RotateReport>> {
    let ca = super::open_for(ws, profiles, env, tenant, kind)?;
    if ca.signing.is_some() {
        return Ok(None);
    }
    if ca.set.root_view().entry.offline {
        return Err(OpError::RootKeyNeeded {
            env: env.to_string(),
            what: format!(
                "the first issuing CA for {kind} certificates (`mtlsctl ca rotate --env {env}{} --tier issuing --kind {kind} --root-key FILE` makes it)",
                tenant_flag(&ca.set)
            ),
        });
    }
    let req = RotateRequest {
        tier: Tier::Issuing,
        kind: Some(kind),
        passphrase,
        root_key: None,
        root_key_out: None,
    };
    // the set the tenant's leaves chain to: its own, or the environment's
    let own = ca.settings.tenant.clone();
    rotate(ws, profiles, env, own.as_deref(), &req, now).map(Some)
}

/// What `ca retire` did.
#[derive(Debug, Serialize)]
pub struct RetireReport {
    pub env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// false when the CA was retired already.
    pub changed: bool,
    /// The CAs now out of the trust bundles (a root takes its issuing CAs and
    /// cross-certificate with it).
    pub retired: Vec<CaItem>,
    pub next: Vec<String>,
}

/// Takes the retiring CA with `serial` (and, for a root, the CAs below it) out of the
/// trust bundles, once no current certificate chains to it; otherwise lists them and
/// refuses. The old CA keeps its CRL (`crl` re-signs it) until its last leaf expires.
pub fn retire(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    tenant: Option<&str>,
    serial: &str,
    now: OffsetDateTime,
) -> Result<RetireReport> {
    ws.audit_preflight()?;
    let settings = profiles.resolve_ca_for(env, tenant)?;
    if let Some(t) = tenant
        && settings.tenant.is_none()
    {
        return Err(OpError::TenantSharesCa {
            env: env.into(),
            tenant: t.into(),
        });
    }
    let base = CaLoc::base(env, settings.tenant.as_deref());
    if !ws.ca_cert(&base).is_file() {
        return Err(super::missing(&settings, env));
    }
    let set = read_set(ws, &base)?;
    let Some(target) = set.by_serial(serial).cloned() else {
        return Err(OpError::NoSuchCa {
            env: env.into(),
            serial: serial.into(),
            known: set.cas.iter().map(|c| c.entry.serial.clone()).collect(),
        });
    };
    let tf = tenant_flag(&set);
    if target.entry.status == CaStatus::Active {
        return Err(OpError::CaActive {
            env: env.into(),
            serial: target.entry.serial.clone(),
            fix: format!(
                "rotate it first: `mtlsctl ca rotate --env {env}{tf} --tier {}`",
                if target.entry.role == CaRole::Root {
                    "root"
                } else {
                    "issuing"
                }
            ),
        });
    }
    let affected: Vec<&CaView> = set
        .cas
        .iter()
        .filter(|c| {
            c.entry.dir == target.entry.dir
                || (target.entry.role == CaRole::Root
                    && (c.entry.parent.as_deref() == Some(target.entry.dir.as_str())
                        || c.entry.certifies.as_deref() == Some(target.entry.dir.as_str())))
        })
        .collect();
    if target.entry.status == CaStatus::Retired {
        return Ok(RetireReport {
            env: env.into(),
            tenant: base.tenant.clone(),
            changed: false,
            retired: vec![item(ws, &base, &target)?],
            next: Vec::new(),
        });
    }
    if affected
        .iter()
        .any(|c| c.entry.status == CaStatus::Active && c.entry.role != CaRole::Cross)
    {
        return Err(OpError::CaHasActiveChild {
            serial: target.entry.serial.clone(),
            fix: format!("`mtlsctl ca rotate --env {env}{tf} --tier issuing`"),
        });
    }
    let locs: Vec<CaLoc> = affected.iter().map(|c| c.loc.clone()).collect();
    let still = current_leaves_of(ws, &set, &locs)?;
    if !still.is_empty() {
        return Err(OpError::CaStillUsed {
            serial: target.entry.serial.clone(),
            leaves: still,
            fix: format!("renew them from the new CA first: `mtlsctl renew --env {env}{tf}`"),
        });
    }
    let mut h: Hierarchy = set.hierarchy.clone();
    for c in h.cas.iter_mut() {
        if affected.iter().any(|a| a.entry.dir == c.dir) {
            c.status = CaStatus::Retired;
        }
    }
    let mut intent = Intent::new("ca-retire", now);
    let names: Vec<String> = affected.iter().map(|c| c.entry.serial.clone()).collect();
    let audit = intent.audit_step("ca-retire", Some(format!("retired {}", names.join(", "))));
    intent.ca = Some(CaStep {
        env: env.into(),
        serial: target.entry.serial.clone(),
        audit,
        set: Some(base.clone()),
        dirs: Vec::new(),
        hierarchy: Some(h.clone()),
        root_key_out: None,
        reissued: None,
    });
    let journal = ws.begin(&intent)?;
    let step = intent.ca.as_ref().expect("journaled above");
    ws.save_hierarchy(&base, &h)?;
    fault::hit(Fault::AfterRecord);
    let mut ev = step.audit.event();
    ev.env = Some(env);
    ev.tenant = base.tenant.as_deref();
    ev.serial = Some(&step.serial);
    ev.sha256 = Some(&target.entry.sha256);
    crate::ops::issue::audit(ws, &[ev], true)?;
    journal.done();
    let after = read_set(ws, &base)?;
    let retired = locs
        .iter()
        .filter_map(|l| after.by_loc(l))
        .map(|c| item(ws, &base, c))
        .collect::<Result<Vec<_>>>()?;
    Ok(RetireReport {
        env: env.into(),
        tenant: base.tenant.clone(),
        changed: true,
        retired,
        next: vec![format!(
            "send the smaller trust bundle: `mtlsctl export --env {env} --tenant T --format F`; the old CA's CRL stays in `crl` until its last certificate expires"
        )],
    })
}
