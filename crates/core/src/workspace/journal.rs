//! The intent journal: what a run that changes the workspace is about to do, written
//! under the lock before it signs anything, so that the next run can finish or undo it.
//!
//! A run writes `journal/<op_id>.json` (folder 0700, file 0600, written atomically and
//! fsynced: it is either there whole or not at all), then does its steps, then removes
//! the file (and syncs the folder). The file names every serial the run drew before
//! signing, every leaf folder it will place and the certificate each one replaces, every
//! revocation, every CRL it will sign and every audit line it will write, each with its
//! own `op_id`. Every step is idempotent and can tell from the disk whether it was done,
//! so the recovery ([`super::recover`]) that the next [`Workspace::lock_for_write`] runs
//! can complete or roll back each one, needing no passphrase. Folders are staged under a
//! name fixed by the final one (`.stage-<serial>`, see [`fsutil::stage_path`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::audit::Event;
use super::fsutil::{self, SECRET};
use super::hierarchy::{CaLoc, Hierarchy};
use super::inventory::{LeafMeta, META, Revocation, Status};
use super::recover::{self, Recovered};
use super::{Lock, Workspace, WsError};
use crate::fault::{self, Fault};
use crate::pki::Kind;

/// The journal folder, relative to the workspace root.
pub const JOURNAL_DIR: &str = "journal";

/// One run's intent: everything it will do, recorded before it signs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Intent {
    /// Format version (1).
    pub version: u32,
    /// Names the file and prefixes the `op_id` of every step.
    pub op_id: String,
    /// The operation: issue, renew, import, sign, revoke, crl, ca-init.
    pub op: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leaves: Vec<LeafStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<RevocationStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<CrlStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaStep>,
    /// `tenant remove`: the folders and profile to archive (ops::offboard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offboard: Option<OffboardStep>,
    /// `activate`: a staged successor made the active certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationStep>,
}

/// A staged successor becoming the active certificate of tenant/env/kind, the one it
/// replaces superseded. Recovery rolls it forward: every part is safe to repeat.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActivationStep {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    /// The staged certificate that becomes active.
    pub serial: String,
    /// The active certificate it supersedes (none: the tenant had none left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub audit: AuditStep,
}

impl ActivationStep {
    /// Marks the old certificate superseded (with the time the overlap counts from),
    /// then the staged one active, then moves `current`. Returns whether it changed
    /// anything.
    pub fn apply(&self, ws: &Workspace) -> Result<bool, WsError> {
        let mut changed = false;
        if let Some(prev) = &self.supersedes {
            let dir = ws.leaf_dir(&self.env, &self.tenant, self.kind, prev);
            if let Some(mut rec) = recover::read_record(&dir)
                && rec.meta.status == Status::Active
            {
                rec.meta.status = Status::Superseded;
                rec.meta.superseded_by = Some(self.serial.clone());
                rec.meta.superseded_at = Some(self.at);
                rec.save()?;
                changed = true;
            }
        }
        fault::hit(Fault::AfterSupersede);
        let dir = ws.leaf_dir(&self.env, &self.tenant, self.kind, &self.serial);
        if let Some(mut rec) = recover::read_record(&dir)
            && rec.meta.status == Status::Staged
        {
            rec.meta.status = Status::Active;
            rec.save()?;
            changed = true;
        }
        fault::hit(Fault::AfterMeta);
        ws.refresh_current(&self.env, &self.tenant, self.kind)?;
        Ok(changed)
    }

    /// The audit event of the activation.
    pub fn event(&self) -> Event<'_> {
        let mut ev = self.audit.event();
        ev.tenant = Some(&self.tenant);
        ev.env = Some(&self.env);
        ev.kind = Some(self.kind.as_str());
        ev.serial = Some(&self.serial);
        ev
    }
}

/// A tenant's folders (and profile) moved under `archive/` once its certificates are
/// revoked. Every part of it is safe to repeat: recovery completes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffboardStep {
    pub tenant: String,
    /// The environments whose `pki/<env>/<tenant>/` folder is archived.
    pub envs: Vec<String>,
    /// The archive folder, relative to the workspace root.
    pub archive: PathBuf,
    /// Whether the whole tenant goes (its profile archived), or only `envs` (removed
    /// from its profile's environments, the profile as it was copied to the archive).
    pub whole: bool,
    pub audit: AuditStep,
}

/// An audit line a step writes once it is done, found again by its `op_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditStep {
    pub op_id: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A leaf folder the run will place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeafStep {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    /// Drawn before signing (lowercase hex).
    pub serial: String,
    /// The final folder, relative to the workspace root; it is staged beside it as
    /// `.stage-<serial>`.
    pub dir: String,
    /// The active certificate of tenant/env/kind this one supersedes once placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    /// Whether the folder holds a private key (a certificate signed from a partner's CSR
    /// does not).
    pub has_key: bool,
    pub audit: AuditStep,
    /// The CA that signs it (absent: the env's first root, or an external CA's
    /// certificate): where recovery records the revocation of one never placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaLoc>,
}

/// A revocation the run will record: CA state, then (after the CRL) the leaf's meta.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevocationStep {
    pub env: String,
    pub tenant: String,
    pub kind: Kind,
    pub serial: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    pub audit: AuditStep,
    /// The CA that signed the leaf, whose state and CRL list it (absent: the env's
    /// first root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaLoc>,
}

/// A CRL the run will sign, with the number it will carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CrlStep {
    pub env: String,
    pub crl_number: u64,
    /// `crl` writes a line of its own; `revoke` accounts for its CRL in its revoke line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStep>,
    /// The CA that signs it (absent: the env's first root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaLoc>,
}

impl CrlStep {
    pub fn loc(&self) -> CaLoc {
        self.ca.clone().unwrap_or_else(|| CaLoc::env(&self.env))
    }
}

/// A change to an environment's CAs. `ca init` (no `dirs`): the set's folder staged in
/// `.stage-ca` beside it and renamed into place (with its issuing CA inside in two
/// tiers). A rotation: each CA folder of `dirs` staged and placed, then `hierarchy`
/// written to the set's hierarchy.json, the step that makes them count. A retirement:
/// `hierarchy` alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaStep {
    pub env: String,
    /// The serial of the (first) CA made; for a retirement, the retired one's.
    pub serial: String,
    pub audit: AuditStep,
    /// The set's first root (absent: the env's own set, as older versions wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<CaLoc>,
    /// The CA folders a rotation places.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<CaLoc>,
    /// What the set's hierarchy.json becomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hierarchy: Option<Hierarchy>,
    /// A root key written outside the workspace (`--root-key-out`), removed again when
    /// the CA it belongs to is not placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key_out: Option<PathBuf>,
    /// A CA certificate the change re-issues in place (a one-tier root given room for an
    /// issuing CA): written before hierarchy.json, which records its SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissued: Option<ReissuedCert>,
}

/// A CA certificate re-issued with the same name and key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReissuedCert {
    pub ca: CaLoc,
    /// The new certificate, PEM (public).
    pub pem: String,
}

impl CaStep {
    /// The set the step changes.
    pub fn set_loc(&self) -> CaLoc {
        self.set.clone().unwrap_or_else(|| CaLoc::env(&self.env))
    }
}

/// A fresh operation id: the time in seconds and 48 random bits, so journal files sort
/// by age and two runs never share one.
pub fn new_op_id(now: OffsetDateTime) -> String {
    let mut r = [0u8; 6];
    // without randomness, the time and process id still tell runs apart under the lock
    if openssl::rand::rand_bytes(&mut r).is_err() {
        r[..4].copy_from_slice(&std::process::id().to_be_bytes());
    }
    format!(
        "{}-{}",
        now.unix_timestamp(),
        crate::pki::serial::to_hex(&r)
    )
}

impl Intent {
    pub fn new(op: &str, now: OffsetDateTime) -> Intent {
        Intent {
            version: 1,
            op_id: new_op_id(now),
            op: op.to_string(),
            started_at: crate::pki::cert::whole_seconds(now),
            leaves: Vec::new(),
            revocations: Vec::new(),
            crls: Vec::new(),
            ca: None,
            offboard: None,
            activation: None,
        }
    }

    /// The audit line of the next step: its `op_id` is the run's plus a step number.
    pub fn audit_step(&self, op: &str, detail: Option<String>) -> AuditStep {
        let n = self.leaves.len() + self.revocations.len() + self.crls.len() + 1;
        let n = n + usize::from(self.ca.is_some()) + usize::from(self.activation.is_some());
        AuditStep {
            op_id: format!("{}.{n}", self.op_id),
            op: op.to_string(),
            detail,
        }
    }
}

impl AuditStep {
    /// The audit event of this step, carrying its `op_id`.
    pub fn event(&self) -> Event<'_> {
        let mut ev = Event::new(&self.op);
        ev.detail = self.detail.clone();
        ev.op_id = self.op_id.clone();
        ev
    }
}

/// An intent written to disk; [`Journal::done`] removes it.
#[must_use = "a journal stays on disk until done() says every step is finished"]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Every step is done: removes the file and syncs the folder. A failure here is not
    /// reported: a journal whose steps are all done costs the next run a look and is then
    /// removed.
    pub fn done(self) {
        let _ = fsutil::remove_synced(&self.path);
    }
}

impl Workspace {
    pub fn journal_dir(&self) -> PathBuf {
        self.root().join(JOURNAL_DIR)
    }

    /// Records `intent` (atomically, fsynced) before the run signs anything. The caller
    /// holds the lock taken with [`Workspace::lock_for_write`].
    pub fn begin(&self, intent: &Intent) -> Result<Journal, WsError> {
        let dir = self.journal_dir();
        fsutil::private_dir(&dir)?;
        let path = dir.join(format!("{}.json", intent.op_id));
        let json = serde_json::to_vec_pretty(intent).expect("intent serialises");
        fsutil::write_new(&path, &json, SECRET)?;
        fault::hit(Fault::AfterJournal);
        Ok(Journal { path })
    }

    /// Takes the workspace lock for a run that changes the workspace, then completes or
    /// rolls back whatever an interrupted run left (its journal, staged folders, a
    /// half-made CA), with no passphrase. Returns what the recovery did, for the command
    /// to print ("recovered: ...") or put in its JSON (`recovered`).
    pub fn lock_for_write(&self) -> Result<(Lock, Vec<Recovered>), WsError> {
        let lock = self.lock()?;
        let done = recover::recover(self)?;
        Ok((lock, done))
    }

    /// `path` relative to the workspace root, as the journal records folders.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.root())
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }
}

impl LeafStep {
    /// After the folder is placed: marks the certificate it replaces superseded, unless
    /// that is done already. Returns whether it changed anything.
    pub fn supersede(&self, ws: &Workspace) -> Result<bool, WsError> {
        let Some(prev) = &self.supersedes else {
            return Ok(false);
        };
        let dir = ws.leaf_dir(&self.env, &self.tenant, self.kind, prev);
        mark_superseded(&dir, &self.serial)
    }

    /// The audit event of a placed leaf, whose meta.json gives the fingerprint.
    pub fn event<'a>(&'a self, meta: &'a LeafMeta) -> Event<'a> {
        let mut ev = self.audit.event();
        ev.tenant = Some(&self.tenant);
        ev.env = Some(&self.env);
        ev.kind = Some(self.kind.as_str());
        ev.serial = Some(&self.serial);
        ev.sha256 = Some(&meta.sha256);
        ev
    }
}

/// Marks the active leaf in `dir` superseded by `by`; false when it is not active (or
/// gone).
pub(crate) fn mark_superseded(dir: &Path, by: &str) -> Result<bool, WsError> {
    let Some(mut rec) = recover::read_record(dir) else {
        return Ok(false);
    };
    if rec.meta.status != Status::Active || rec.meta.fixture {
        return Ok(false);
    }
    rec.meta.status = Status::Superseded;
    rec.meta.superseded_by = Some(by.to_string());
    rec.save()?;
    Ok(true)
}

impl RevocationStep {
    pub fn loc(&self) -> CaLoc {
        self.ca.clone().unwrap_or_else(|| CaLoc::env(&self.env))
    }

    /// Adds the revocation to the CA state unless it lists the serial already. Returns
    /// whether it changed anything.
    pub fn record(&self, ws: &Workspace) -> Result<bool, WsError> {
        let mut state = ws.load_ca_state(self.loc())?;
        if state.revocations.iter().any(|r| r.serial == self.serial) {
            return Ok(false);
        }
        state.revocations.push(Revocation {
            serial: self.serial.clone(),
            revoked_at: self.revoked_at,
            reason: self.reason.clone(),
            tenant: Some(self.tenant.clone()),
            not_after: recover::read_record(&ws.leaf_dir(
                &self.env,
                &self.tenant,
                self.kind,
                &self.serial,
            ))
            .map(|r| r.meta.not_after),
        });
        ws.save_ca_state(self.loc(), &state)?;
        Ok(true)
    }

    /// Marks the leaf's meta.json revoked unless it says so already. Returns whether it
    /// changed anything.
    pub fn mark(&self, ws: &Workspace) -> Result<bool, WsError> {
        let dir = ws.leaf_dir(&self.env, &self.tenant, self.kind, &self.serial);
        let Some(mut rec) = recover::read_record(&dir) else {
            return Ok(false);
        };
        if rec.meta.status == Status::Revoked {
            return Ok(false);
        }
        rec.meta.status = Status::Revoked;
        rec.meta.revoked_at = Some(self.revoked_at);
        rec.meta.revocation_reason = Some(self.reason.clone());
        rec.save()?;
        Ok(true)
    }

    /// The audit event of the revocation, with the leaf's fingerprint when known.
    pub fn event<'a>(&'a self, sha256: Option<&'a str>) -> Event<'a> {
        let mut ev = self.audit.event();
        ev.tenant = Some(&self.tenant);
        ev.env = Some(&self.env);
        ev.kind = Some(self.kind.as_str());
        ev.serial = Some(&self.serial);
        ev.sha256 = sha256;
        ev
    }
}

/// Whether `dir` holds a placed leaf (its meta.json).
pub(crate) fn is_placed(dir: &Path) -> bool {
    dir.join(META).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_round_trip_and_steps_get_their_own_op_ids() {
        let now = OffsetDateTime::now_utc();
        let mut i = Intent::new("issue", now);
        let a = i.audit_step("issue", None);
        i.leaves.push(LeafStep {
            tenant: "acme".into(),
            env: "prod".into(),
            kind: Kind::Client,
            serial: "4a".repeat(16),
            dir: format!("pki/prod/acme/client/{}", "4a".repeat(16)),
            supersedes: None,
            has_key: true,
            audit: a,
            ca: None,
        });
        let b = i.audit_step("issue", Some("renews x".into()));
        assert_ne!(i.leaves[0].audit.op_id, b.op_id);
        assert!(b.op_id.starts_with(&i.op_id));
        let json = serde_json::to_string(&i).unwrap();
        let back: Intent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.leaves[0].serial, i.leaves[0].serial);
        assert!(back.revocations.is_empty() && back.ca.is_none());
        assert_ne!(new_op_id(now), new_op_id(now));
    }

    #[test]
    fn audit_lines_are_found_by_op_id_and_a_torn_line_does_not_count() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        assert!(!ws.audit_has("1-a.1").unwrap());
        let step = AuditStep {
            op_id: "1-a.1".into(),
            op: "issue".into(),
            detail: None,
        };
        ws.audit(&step.event()).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(ws.audit_log())
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"op_id\":\"1-a.2\""))
            .unwrap();
        assert!(ws.audit_has("1-a.1").unwrap());
        assert!(!ws.audit_has("1-a.2").unwrap());
        assert!(!ws.audit_has("1-a").unwrap());
    }

    #[test]
    fn recovery_removes_journal_leftovers_and_empty_staging_folders() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        let kind = ws.kind_dir("prod", "acme", Kind::Client);
        let stray = kind.join(".stage-pending");
        std::fs::create_dir_all(&stray).unwrap();
        std::fs::write(stray.join("key.pem"), "k").unwrap();
        fsutil::private_dir(&ws.journal_dir()).unwrap();
        std::fs::write(ws.journal_dir().join(".tmp-x"), "{").unwrap();
        let done = recover::recover(&ws).unwrap();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].action, recover::Action::Removed);
        assert!(!stray.exists());
        assert_eq!(std::fs::read_dir(ws.journal_dir()).unwrap().count(), 0);
        // a journal that does not parse stops the run: it decides what is removed
        std::fs::write(ws.journal_dir().join("1-x.json"), "{").unwrap();
        assert!(matches!(
            recover::recover(&ws),
            Err(WsError::Corrupt { .. })
        ));
    }
}
