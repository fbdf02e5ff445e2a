//! Issuing a tenant's certificate: key, certificate, chain, PFX, inventory, audit.

use std::path::PathBuf;

use openssl::x509::X509;
use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::fault::{self, Fault};
use crate::pki::cert::{self, Signer};
use crate::pki::keys::{PrivateKey, generate_password};
use crate::pki::pkcs12::{self, PfxCompat};
use crate::pki::{Kind, PkiError, fingerprint, serial};
use crate::profile::Resolved;
use crate::workspace::CaLoc;
use crate::workspace::Workspace;
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::inventory::{
    CERT, CHAIN, KEY, LeafMeta, LeafRecord, META, PFX, PFX_PASS, Status,
};
use crate::workspace::journal::{Intent, LeafStep};
use secrecy::ExposeSecret;

pub const FULLCHAIN: &str = "fullchain.pem";

#[derive(Debug, Serialize, Clone)]
pub struct LeafFiles {
    pub cert: PathBuf,
    pub key: Option<PathBuf>,
    pub chain: PathBuf,
    pub fullchain: PathBuf,
    pub pfx: Option<PathBuf>,
    pub pfx_password: Option<PathBuf>,
}

/// What `issue` reports for one certificate.
#[derive(Debug, Serialize, Clone)]
pub struct IssueReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    /// "issued", or "unchanged" when a valid certificate not yet due was kept.
    pub action: &'static str,
    pub serial: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub sha256: String,
    pub files: LeafFiles,
    /// A test fixture (never the tenant's current certificate); absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixture: bool,
    /// The CA that signed it (`<env>[/<tenant>]:ca[/<folder>]`); absent for a certificate
    /// of an external CA and for those issued before hierarchies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the operator does next (`issue` of one certificate; absent where a report
    /// is part of another, `renew` or `issue --all`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next: Vec<String>,
}

impl IssueReport {
    /// What follows `issue` of this certificate: hand it off, and point the platform at
    /// its stable path.
    pub fn next_steps(&self) -> Vec<String> {
        let (t, e, k) = (&self.tenant, &self.env, self.kind);
        if self.fixture {
            return vec!["use it in the test it was made for: a fixture never becomes the current certificate".into()];
        }
        if self.action == "unchanged" {
            return vec!["nothing: the current certificate is valid and not due".into()];
        }
        vec![
            format!(
                "hand off to the customer's gateway: mtlsctl export --tenant {t} --env {e} --format FORMAT --out DIR"
            ),
            format!(
                "point the platform at pki/{e}/{t}/{k}/current/ (same host), or mtlsctl deliver --tenant {t} --env {e} --format pem-dir|pfx|k8s-tls-secret --out PATH"
            ),
        ]
    }
}

pub fn files_of(rec: &LeafRecord) -> LeafFiles {
    let has = |p: PathBuf| p.is_file().then_some(p);
    LeafFiles {
        cert: rec.cert_path(),
        key: has(rec.key_path()),
        chain: rec.chain_path(),
        fullchain: rec.dir.join(FULLCHAIN),
        pfx: has(rec.pfx_path()),
        pfx_password: has(rec.pfx_pass_path()),
    }
}

/// Reports a stored leaf.
pub fn report_of(rec: &LeafRecord, action: &'static str) -> Result<IssueReport> {
    let pem = fsutil::read_nofollow(&rec.cert_path())?;
    let der = crate::pki::inspect::certificates(&pem)?
        .into_iter()
        .next()
        .expect("one");
    let info = crate::pki::inspect::cert_info(&der)?;
    Ok(IssueReport {
        tenant: rec.meta.tenant.clone(),
        env: rec.meta.env.clone(),
        kind: rec.meta.kind,
        action,
        serial: rec.meta.serial.clone(),
        subject: info.subject,
        not_before: info.not_before,
        not_after: info.not_after,
        sha256: rec.meta.sha256.clone(),
        files: files_of(rec),
        fixture: rec.meta.fixture,
        ca: rec.meta.ca.as_ref().map(ToString::to_string),
        warnings: Vec::new(),
        next: Vec::new(),
    })
}

/// A time on the command line (`--not-before`, `--not-after`): RFC 3339
/// (`2026-03-01T00:00:00Z`) or relative to `now` with a sign and one unit (`-1h`,
/// `+10m`, `-2d`, `+45s`). `flag` names it in the error.
pub fn parse_when(flag: &str, s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "{flag} '{s}' is not a time: give RFC 3339 (2026-03-01T00:00:00Z) or a signed duration relative to now (-1h, +10m, -2d)"
        )
    };
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        let d: crate::profile::Dur = rest.parse().map_err(|_| bad())?;
        let d = d.to_time();
        return Ok(cert::whole_seconds(if t.starts_with('-') {
            now - d
        } else {
            now + d
        }));
    }
    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|x| x.to_offset(time::UtcOffset::UTC))
        .map_err(|_| bad())
}

/// The current certificate of tenant/env/kind when it is valid and not yet due for
/// renewal under `renew_before`.
pub fn current_valid(
    ws: &Workspace,
    tenant: &str,
    env: &str,
    kind: Kind,
    renew_before: time::Duration,
    now: OffsetDateTime,
) -> Result<Option<LeafRecord>> {
    Ok(ws
        .current_leaf(tenant, env, kind)?
        .filter(|r| now < r.meta.not_after - r.meta.fit_window(renew_before)))
}

/// Everything a new leaf directory holds.
pub struct NewLeaf<'a> {
    pub tenant: &'a str,
    pub env: &'a str,
    pub kind: Kind,
    pub origin: &'a str,
    pub key: Option<&'a PrivateKey>,
    pub cert_der: &'a [u8],
    pub chain: &'a [X509],
    /// (compat, friendly name) when a PFX is wanted (needs the key).
    pub pfx: Option<(PfxCompat, &'a str)>,
    pub renewed_from: Option<String>,
    /// The certificate's own renewal window (seconds), when not the profile's.
    pub renew_before_secs: Option<i64>,
    /// The CA of this workspace that signed it (None: an external CA's certificate).
    pub ca: Option<CaLoc>,
    /// A test fixture: recorded, never current, supersedes nothing.
    pub fixture: bool,
    /// A staged successor: status staged, supersedes nothing until `activate`.
    pub staged: bool,
    /// What the audit line says beside the issuance (an accepted nonconforming CA).
    pub audit_detail: Option<String>,
    pub now: OffsetDateTime,
}

/// The CA a leaf is signed with: its signer, the chain handed with the leaf, and where
/// the CA lives (recorded in the leaf's meta.json).
#[derive(Clone, Copy)]
pub struct SignWith<'a> {
    pub signer: &'a Signer,
    pub chain: &'a [X509],
    pub ca: &'a CaLoc,
}

/// A leaf built in memory: the files of its folder and its metadata.
struct Prepared {
    dir: PathBuf,
    files: Vec<(&'static str, zeroize::Zeroizing<Vec<u8>>, u32)>,
    meta: LeafMeta,
    info: crate::pki::inspect::CertInfo,
}

impl Prepared {
    fn new_files(&self) -> Vec<NewFile<'_>> {
        self.files
            .iter()
            .map(|(name, bytes, mode)| NewFile {
                name,
                bytes,
                mode: *mode,
            })
            .collect()
    }

    fn record(&self) -> LeafRecord {
        LeafRecord {
            dir: self.dir.clone(),
            meta: self.meta.clone(),
        }
    }

    /// The report of a leaf just written, from memory (no second read of the files).
    fn report(&self, action: &'static str) -> IssueReport {
        let has = |name: &str| {
            self.files
                .iter()
                .any(|(n, _, _)| *n == name)
                .then(|| self.dir.join(name))
        };
        IssueReport {
            tenant: self.meta.tenant.clone(),
            env: self.meta.env.clone(),
            kind: self.meta.kind,
            action,
            serial: self.meta.serial.clone(),
            subject: self.info.subject.clone(),
            not_before: self.info.not_before,
            not_after: self.info.not_after,
            sha256: self.meta.sha256.clone(),
            files: LeafFiles {
                cert: self.dir.join(CERT),
                key: has(KEY),
                chain: self.dir.join(CHAIN),
                fullchain: self.dir.join(FULLCHAIN),
                pfx: has(PFX),
                pfx_password: has(PFX_PASS),
            },
            fixture: self.meta.fixture,
            ca: self.meta.ca.as_ref().map(ToString::to_string),
            warnings: Vec::new(),
            next: Vec::new(),
        }
    }
}

/// Builds everything a leaf folder holds (PFX included, opened again and checked).
fn prepare(ws: &Workspace, n: &NewLeaf<'_>) -> Result<Prepared> {
    let info = crate::pki::inspect::cert_info(n.cert_der)?;
    let cert_pem = crate::pki::pem("CERTIFICATE", n.cert_der).into_bytes();
    let mut chain_der = Vec::with_capacity(n.chain.len());
    let mut chain_pem = Vec::new();
    for c in n.chain {
        let der = c.to_der().map_err(PkiError::from)?;
        chain_pem.extend(crate::pki::pem("CERTIFICATE", &der).into_bytes());
        chain_der.push(der);
    }
    let mut full = cert_pem.clone();
    full.extend(&chain_pem);
    let sha256 = fingerprint::hex(&fingerprint::sha256(n.cert_der));
    let meta = LeafMeta {
        serial: info.serial.clone(),
        tenant: n.tenant.to_string(),
        env: n.env.to_string(),
        kind: n.kind,
        status: if n.staged {
            Status::Staged
        } else {
            Status::Active
        },
        issued_at: cert::whole_seconds(n.now),
        not_after: info.not_after,
        subject: info.subject.clone(),
        sha256,
        origin: n.origin.to_string(),
        superseded_by: None,
        renewed_from: n.renewed_from.clone(),
        superseded_at: None,
        revoked_at: None,
        revocation_reason: None,
        renew_before_secs: n.renew_before_secs,
        ca: n.ca.clone(),
        fixture: n.fixture,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    let z = zeroize::Zeroizing::new;
    // cert.pem first and meta.json last: recovery tells from them how far a folder got
    let mut files = vec![
        (CERT, z(cert_pem), PUBLIC),
        (CHAIN, z(chain_pem), PUBLIC),
        (FULLCHAIN, z(full), PUBLIC),
    ];
    if let Some(k) = n.key {
        files.push((KEY, k.to_pkcs8_pem()?, SECRET));
    }
    if let (Some((compat, name)), Some(k)) = (n.pfx, n.key) {
        let pw = generate_password()?;
        let der = pkcs12::build_der(k, n.cert_der, &chain_der, name, &pw, compat)?;
        let mut pw_line = z(pw.expose_secret().as_bytes().to_vec());
        pw_line.push(b'\n');
        files.push((PFX, z(der), SECRET));
        files.push((PFX_PASS, pw_line, SECRET));
    }
    files.push((META, z(meta_json), PUBLIC));
    let dir = ws.leaf_dir(n.env, n.tenant, n.kind, &info.serial);
    ws.check_no_symlink(&dir)?;
    Ok(Prepared {
        dir,
        files,
        meta,
        info,
    })
}

/// A leaf a run is about to sign or place, as its journal records it.
pub(crate) struct LeafPlan<'a> {
    pub tenant: &'a str,
    pub env: &'a str,
    pub kind: Kind,
    pub origin: &'a str,
    pub renewed_from: Option<&'a str>,
    pub has_key: bool,
    /// Whether it replaces the active certificate of tenant/env/kind (not for leaves
    /// signed for no tenant: partners may hold several at once).
    pub supersede: bool,
    /// The CA that signs it.
    pub ca: Option<&'a CaLoc>,
}

impl<'a> LeafPlan<'a> {
    fn of(r: &'a Resolved, origin: &'a str, renewed_from: Option<&'a str>, ca: &'a CaLoc) -> Self {
        LeafPlan {
            tenant: &r.tenant,
            env: &r.env,
            kind: r.kind.value,
            origin,
            renewed_from,
            has_key: true,
            // a test fixture never replaces the tenant's certificate, and a staged
            // successor replaces it only at `activate`
            supersede: !r.fixture && !r.staged,
            ca: Some(ca),
        }
    }

    /// Adds the step of this leaf, whose serial is drawn already, to `intent`: its folder,
    /// the active certificate it will supersede, its audit line.
    pub(crate) fn add_to(&self, ws: &Workspace, intent: &mut Intent, serial: &str) -> Result<()> {
        let previous = match self.supersede {
            true => ws.current_leaf(self.tenant, self.env, self.kind)?,
            false => None,
        };
        let dir = ws.leaf_dir(self.env, self.tenant, self.kind, serial);
        let detail = self.renewed_from.map(|s| format!("renews {s}"));
        let audit = intent.audit_step(self.origin, detail);
        intent.leaves.push(LeafStep {
            tenant: self.tenant.to_string(),
            env: self.env.to_string(),
            kind: self.kind,
            serial: serial.to_string(),
            dir: ws.relative(&dir),
            supersedes: previous.map(|p| p.meta.serial),
            has_key: self.has_key,
            audit,
            ca: self.ca.cloned(),
        });
        Ok(())
    }
}

/// Appends audit lines, between the fault points that bracket them: one line fsynced
/// when `sync`, else all in one write unsynced (a batch syncs the file system afterwards).
pub(crate) fn audit(ws: &Workspace, evs: &[Event<'_>], sync: bool) -> Result<()> {
    fault::hit(Fault::BeforeAudit);
    match evs {
        [one] if sync => ws.audit(one)?,
        _ => ws.audit_many(evs)?,
    }
    fault::hit(Fault::AfterAudit);
    Ok(())
}

/// Writes a leaf's folder atomically, marks the previous active leaf of the same
/// tenant/env/kind superseded, and appends an audit line, all under a journal written
/// before the folder is staged (the certificate is signed already: `import`, `sign`).
pub fn store(ws: &Workspace, n: &NewLeaf<'_>) -> Result<LeafRecord> {
    let p = prepare(ws, n)?;
    let mut intent = Intent::new(n.origin, n.now);
    LeafPlan {
        tenant: n.tenant,
        env: n.env,
        kind: n.kind,
        origin: n.origin,
        renewed_from: n.renewed_from.as_deref(),
        has_key: n.key.is_some(),
        supersede: !n.fixture && !n.staged,
        ca: n.ca.as_ref(),
    }
    .add_to(ws, &mut intent, &p.meta.serial)?;
    if let Some(d) = &n.audit_detail {
        intent.leaves[0].audit.detail = Some(d.clone());
    }
    let journal = ws.begin(&intent)?;
    place(ws, &p, &intent.leaves[0])?;
    journal.done();
    Ok(p.record())
}

/// Puts one prepared leaf in place as its journal step says: staged with an fsync per
/// file, renamed into place, the previous certificate superseded, the audit line written.
fn place(ws: &Workspace, p: &Prepared, step: &LeafStep) -> Result<()> {
    let staged = fsutil::stage_dir_synced(&p.dir, &p.new_files())?;
    fault::hit(Fault::AfterStage);
    staged.commit()?;
    fsutil::sync_dir(p.dir.parent().unwrap_or(ws.root()))?;
    fault::hit(Fault::AfterPlace);
    step.supersede(ws)?;
    fault::hit(Fault::AfterSupersede);
    if !p.meta.fixture && step.tenant != crate::ops::csr::SIGNED_TENANT {
        ws.refresh_current(&step.env, &step.tenant, step.kind)?;
    }
    audit(ws, &[step.event(&p.meta)], true)
}

/// Signs a certificate for `r` with `key` under the serial drawn for it and builds its
/// folder in memory; returns it with the signer's warnings (a clipped validity, say).
#[allow(clippy::too_many_arguments)]
fn prepare_issue(
    ws: &Workspace,
    r: &Resolved,
    key: &PrivateKey,
    with: &SignWith<'_>,
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
    serial: &[u8; 16],
) -> Result<(Prepared, Vec<String>)> {
    let built = cert::sign_leaf_in_window(
        &r.leaf_request(),
        &r.window,
        &key.to_rcgen()?,
        key.algorithm().is_rsa(),
        with.signer,
        now,
        serial,
    )?;
    fault::hit(Fault::AfterSign);
    let pfx = r
        .pfx_enabled
        .value
        .then_some((r.pfx_compat.value, r.pfx_friendly_name.value.as_str()));
    let p = prepare(
        ws,
        &NewLeaf {
            tenant: &r.tenant,
            env: &r.env,
            kind: r.kind.value,
            origin,
            key: Some(key),
            cert_der: &built.der,
            chain: with.chain,
            pfx,
            renewed_from,
            renew_before_secs: own_window(r),
            ca: Some(with.ca.clone()),
            fixture: r.fixture,
            staged: r.staged,
            audit_detail: None,
            now,
        },
    )?;
    Ok((p, built.warnings))
}

/// The window to keep with a certificate: one given by flag or fitted to its validity;
/// a window that is the profile's own stays the profile's (a later change applies).
fn own_window(r: &Resolved) -> Option<i64> {
    matches!(
        r.renew_before.source,
        crate::profile::Source::Flag { .. } | crate::profile::Source::Derived { .. }
    )
    .then(|| r.renew_before.value.secs())
}

/// One certificate of a batch: its settings and the CA that signs it.
pub struct BatchItem<'a> {
    pub resolved: &'a Resolved,
    pub with: SignWith<'a>,
}

/// Issues several certificates with one durability barrier instead of one fsync per
/// file. A serial is drawn for every leaf and the batch's intent journaled before
/// anything is signed; then every leaf is built in memory and staged (`.stage-<serial>`),
/// the file system is synced once, the folders are renamed into place and each previous
/// certificate superseded, the audit lines appended in one write, and the file system
/// synced again. A crash at any point leaves what the journal lets the next run finish
/// or undo. The caller holds the lock taken with [`Workspace::lock_for_write`]. Results
/// are in the order of `items`.
pub fn issue_batch(
    ws: &Workspace,
    items: &[BatchItem<'_>],
    now: OffsetDateTime,
    origin: &str,
) -> Vec<Result<IssueReport>> {
    let mut out: Vec<Option<Result<IssueReport>>> = items.iter().map(|_| None).collect();
    // fail-closed: nothing is signed when the audit trail cannot be written
    if let Err(e) = ws.audit_preflight() {
        let e = OpError::from(e);
        return items
            .iter()
            .map(|_| {
                Err(OpError::BatchStopped {
                    reason: e.to_string(),
                })
            })
            .collect();
    }
    let mut intent = Intent::new(origin, now);
    // (item, serial, its step in the intent)
    let mut planned: Vec<(usize, [u8; 16], usize)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let drawn = serial::random_serial()
            .map_err(OpError::from)
            .and_then(|s| {
                LeafPlan::of(it.resolved, origin, None, it.with.ca).add_to(
                    ws,
                    &mut intent,
                    &serial::to_hex(&s),
                )?;
                Ok(s)
            });
        match drawn {
            Ok(s) => planned.push((i, s, intent.leaves.len() - 1)),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    if !planned.is_empty() {
        match ws.begin(&intent) {
            Ok(journal) => {
                let staged = stage_batch(ws, items, &planned, now, origin, &mut out);
                if commit_batch(ws, &intent, staged, &mut out) {
                    journal.done();
                }
            }
            Err(e) => {
                for (i, _, _) in &planned {
                    out[*i] = Some(Err(OpError::BatchNotJournaled {
                        reason: e.to_string(),
                    }));
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

/// A leaf of a batch staged but not yet in place: (item, leaf, warnings, staged folder,
/// its step in the intent).
type StagedLeaf = (usize, Prepared, Vec<String>, fsutil::Staged, usize);

/// Signs and stages every planned leaf of a batch (no fsync); failures go to `out`.
fn stage_batch(
    ws: &Workspace,
    items: &[BatchItem<'_>],
    planned: &[(usize, [u8; 16], usize)],
    now: OffsetDateTime,
    origin: &str,
    out: &mut [Option<Result<IssueReport>>],
) -> Vec<StagedLeaf> {
    let mut staged = Vec::new();
    for (i, serial, step) in planned {
        let it = &items[*i];
        let r = it.resolved;
        let one = || -> Result<(Prepared, Vec<String>, fsutil::Staged)> {
            let key = PrivateKey::generate(r.key.value)?;
            let (p, warnings) = prepare_issue(ws, r, &key, &it.with, now, origin, None, serial)?;
            let st = fsutil::stage_dir(&p.dir, &p.new_files())?;
            Ok((p, warnings, st))
        };
        match one() {
            Ok((p, w, st)) => staged.push((*i, p, w, st, *step)),
            Err(e) => out[*i] = Some(Err(e)),
        }
    }
    fault::hit(Fault::AfterStage);
    staged
}

/// Syncs, renames into place, supersedes and audits the staged leaves of a batch;
/// results go to `out`. Returns whether every step is done (the journal can go): a leaf
/// that failed before it was placed left nothing behind, one whose supersession or audit
/// line failed is finished by the next run.
fn commit_batch(
    ws: &Workspace,
    intent: &Intent,
    staged: Vec<StagedLeaf>,
    out: &mut [Option<Result<IssueReport>>],
) -> bool {
    if staged.is_empty() {
        return true;
    }
    let barrier = fsutil::sync_fs(ws.root());
    let mut clean = true;
    let mut placed = Vec::new();
    for (i, p, w, st, step) in staged {
        let step = &intent.leaves[step];
        let res = barrier
            .as_ref()
            .map_err(|e| OpError::BatchStopped {
                reason: e.to_string(),
            })
            .and_then(|_| {
                st.commit()?;
                fault::hit(Fault::AfterPlace);
                Ok(())
            });
        if let Err(e) = res {
            out[i] = Some(Err(e));
            continue;
        }
        match step.supersede(ws) {
            Ok(_) => fault::hit(Fault::AfterSupersede),
            Err(_) => clean = false,
        }
        if !p.meta.fixture
            && step.tenant != crate::ops::csr::SIGNED_TENANT
            && ws
                .refresh_current(&step.env, &step.tenant, step.kind)
                .is_err()
        {
            clean = false;
        }
        let mut rep = p.report("issued");
        rep.warnings = w;
        placed.push((i, rep, p, step));
    }
    let evs: Vec<Event<'_>> = placed.iter().map(|(_, _, p, s)| s.event(&p.meta)).collect();
    let done = audit(ws, &evs, false).and_then(|_| Ok(fsutil::sync_fs(ws.root())?));
    clean &= done.is_ok();
    for (i, rep, _, _) in placed {
        out[i] = Some(match &done {
            Ok(()) => Ok(rep),
            Err(e) => Err(OpError::NotRecorded {
                serial: rep.serial.clone(),
                cert: rep.files.cert.clone(),
                reason: e.to_string(),
            }),
        });
    }
    clean
}

/// Mints a new key and certificate for `r` and stores them.
pub fn issue(
    ws: &Workspace,
    r: &Resolved,
    with: &SignWith<'_>,
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
) -> Result<IssueReport> {
    let key = PrivateKey::generate(r.key.value)?;
    issue_with_key(ws, r, with, now, origin, renewed_from, &key)
}

/// Like [`issue`] with a given key (renewal with --reuse-key). The serial is drawn and
/// the intent journaled before the certificate is signed.
#[allow(clippy::too_many_arguments)]
pub fn issue_with_key(
    ws: &Workspace,
    r: &Resolved,
    with: &SignWith<'_>,
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
    key: &PrivateKey,
) -> Result<IssueReport> {
    ws.audit_preflight()?;
    let drawn = serial::random_serial()?;
    let mut intent = Intent::new(origin, now);
    LeafPlan::of(r, origin, renewed_from.as_deref(), with.ca).add_to(
        ws,
        &mut intent,
        &serial::to_hex(&drawn),
    )?;
    let journal = ws.begin(&intent)?;
    let (p, warnings) = match prepare_issue(ws, r, key, with, now, origin, renewed_from, &drawn) {
        Ok(x) => x,
        Err(e) => {
            journal.done(); // nothing was written
            return Err(e);
        }
    };
    place(ws, &p, &intent.leaves[0])?;
    journal.done();
    let mut rep = p.report("issued");
    rep.warnings = warnings;
    Ok(rep)
}
