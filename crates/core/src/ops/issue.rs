//! Issuing a tenant's certificate: key, certificate, chain, PFX, inventory, audit.

use std::path::PathBuf;

use openssl::x509::X509;
use serde::Serialize;
use time::OffsetDateTime;

use super::Result;
use crate::pki::cert::{self, Signer};
use crate::pki::keys::{PrivateKey, generate_password};
use crate::pki::pkcs12::{self, PfxCompat};
use crate::pki::{Kind, PkiError, fingerprint};
use crate::profile::Resolved;
use crate::workspace::Workspace;
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::inventory::{
    CERT, CHAIN, KEY, LeafMeta, LeafRecord, META, PFX, PFX_PASS, Status,
};
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
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
        warnings: Vec::new(),
    })
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
    pub now: OffsetDateTime,
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
            warnings: Vec::new(),
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
        status: Status::Active,
        issued_at: cert::whole_seconds(n.now),
        not_after: info.not_after,
        subject: info.subject.clone(),
        sha256,
        origin: n.origin.to_string(),
        superseded_by: None,
        renewed_from: n.renewed_from.clone(),
        revoked_at: None,
        revocation_reason: None,
        renew_before_secs: n.renew_before_secs,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    let z = zeroize::Zeroizing::new;
    let mut files = vec![
        (CERT, z(cert_pem), PUBLIC),
        (CHAIN, z(chain_pem), PUBLIC),
        (FULLCHAIN, z(full), PUBLIC),
        (META, z(meta_json), PUBLIC),
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
    let dir = ws.leaf_dir(n.env, n.tenant, n.kind, &info.serial);
    ws.check_no_symlink(&dir)?;
    Ok(Prepared {
        dir,
        files,
        meta,
        info,
    })
}

/// After a leaf's folder is in place: marks the previous active leaf superseded.
fn supersede(previous: Option<LeafRecord>, serial: &str) -> Result<()> {
    if let Some(mut prev) = previous {
        prev.meta.status = Status::Superseded;
        prev.meta.superseded_by = Some(serial.to_string());
        prev.save()?;
    }
    Ok(())
}

fn event_of<'a>(p: &'a Prepared) -> Event<'a> {
    let mut ev = Event::new(&p.meta.origin);
    ev.tenant = Some(&p.meta.tenant);
    ev.env = Some(&p.meta.env);
    ev.kind = Some(p.meta.kind.as_str());
    ev.serial = Some(&p.meta.serial);
    ev.sha256 = Some(&p.meta.sha256);
    ev.detail = p.meta.renewed_from.as_ref().map(|s| format!("renews {s}"));
    ev
}

/// Writes a leaf's folder atomically, marks the previous active leaf of the same
/// tenant/env/kind superseded, and appends an audit line.
pub fn store(ws: &Workspace, n: &NewLeaf<'_>) -> Result<LeafRecord> {
    let p = prepare(ws, n)?;
    place(ws, &p)?;
    Ok(p.record())
}

/// Puts one prepared leaf in place (fsync per file), supersedes, audits.
fn place(ws: &Workspace, p: &Prepared) -> Result<()> {
    let previous = ws.current_leaf(&p.meta.tenant, &p.meta.env, p.meta.kind)?;
    fsutil::write_dir_atomic(&p.dir, &p.new_files())?;
    supersede(previous, &p.meta.serial)?;
    ws.audit(&event_of(p))?;
    Ok(())
}

/// Signs a certificate for `r` with `key` and builds its folder in memory; returns it
/// with the signer's warnings (a clipped validity, say).
#[allow(clippy::too_many_arguments)]
fn prepare_issue(
    ws: &Workspace,
    r: &Resolved,
    key: &PrivateKey,
    signer: &Signer,
    chain: &[X509],
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
) -> Result<(Prepared, Vec<String>)> {
    let built = cert::sign_leaf(
        &r.leaf_request(),
        &key.to_rcgen()?,
        key.algorithm().is_rsa(),
        signer,
        now,
    )?;
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
            chain,
            pfx,
            renewed_from,
            renew_before_secs: own_window(r),
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
    pub signer: &'a Signer,
    pub chain: &'a [X509],
}

/// Issues several certificates with one durability barrier instead of one fsync per
/// file: every leaf is built in memory and staged in a hidden folder, the file system
/// is synced once, the folders are renamed into place, the audit lines appended in one
/// write, and the file system synced again. As with [`store`], a crash leaves each
/// leaf folder complete or absent (plus `.tmp-*` leftovers that no listing reads).
/// The caller holds the workspace lock. Results are in the order of `items`.
pub fn issue_batch(
    ws: &Workspace,
    items: &[BatchItem<'_>],
    now: OffsetDateTime,
    origin: &str,
) -> Vec<Result<IssueReport>> {
    let mut out: Vec<Option<Result<IssueReport>>> = items.iter().map(|_| None).collect();
    let mut staged: Vec<(usize, Prepared, Vec<String>, fsutil::Staged)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let r = it.resolved;
        let step = || -> Result<(Prepared, Vec<String>, fsutil::Staged)> {
            ws.audit_preflight()?;
            let key = PrivateKey::generate(r.key.value)?;
            let (p, warnings) = prepare_issue(ws, r, &key, it.signer, it.chain, now, origin, None)?;
            let st = fsutil::stage_dir(&p.dir, &p.new_files())?;
            Ok((p, warnings, st))
        };
        match step() {
            Ok((p, w, st)) => staged.push((i, p, w, st)),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    if !staged.is_empty() {
        let barrier = fsutil::sync_fs(ws.root());
        let mut events = Vec::new();
        let mut placed = Vec::new();
        for (i, p, w, st) in staged {
            let res = barrier
                .as_ref()
                .map_err(|e| crate::ops::OpError::Msg(e.to_string()))
                .and_then(|_| {
                    let previous = ws.current_leaf(&p.meta.tenant, &p.meta.env, p.meta.kind)?;
                    st.commit()?;
                    supersede(previous, &p.meta.serial)?;
                    Ok(())
                });
            match res {
                Ok(()) => {
                    let mut rep = p.report("issued");
                    rep.warnings = w;
                    placed.push((i, rep));
                    events.push(p);
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let evs: Vec<Event<'_>> = events.iter().map(event_of).collect();
        let done = ws.audit_many(&evs).and_then(|_| fsutil::sync_fs(ws.root()));
        for (i, rep) in placed {
            out[i] = Some(match &done {
                Ok(()) => Ok(rep),
                Err(e) => Err(crate::ops::OpError::Msg(format!(
                    "certificate {} was written to {} but not recorded: {e}",
                    rep.serial,
                    rep.files.cert.display()
                ))),
            });
        }
    }
    out.into_iter()
        .map(|r| r.expect("every item has a result"))
        .collect()
}

/// Mints a new key and certificate for `r` and stores them.
pub fn issue(
    ws: &Workspace,
    r: &Resolved,
    signer: &Signer,
    chain: &[X509],
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
) -> Result<IssueReport> {
    let key = PrivateKey::generate(r.key.value)?;
    issue_with_key(ws, r, signer, chain, now, origin, renewed_from, &key)
}

/// Like [`issue`] with a given key (renewal with --reuse-key).
#[allow(clippy::too_many_arguments)]
pub fn issue_with_key(
    ws: &Workspace,
    r: &Resolved,
    signer: &Signer,
    chain: &[X509],
    now: OffsetDateTime,
    origin: &str,
    renewed_from: Option<String>,
    key: &PrivateKey,
) -> Result<IssueReport> {
    ws.audit_preflight()?;
    let (p, warnings) = prepare_issue(ws, r, key, signer, chain, now, origin, renewed_from)?;
    place(ws, &p)?;
    let mut rep = p.report("issued");
    rep.warnings = warnings;
    Ok(rep)
}
