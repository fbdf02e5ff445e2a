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
    let pem = fsutil::read(&rec.cert_path())?;
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
        .filter(|r| now < r.meta.not_after - renew_before))
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
    pub now: OffsetDateTime,
}

/// Writes a leaf's folder atomically, marks the previous active leaf of the same
/// tenant/env/kind superseded, and appends an audit line.
pub fn store(ws: &Workspace, n: &NewLeaf<'_>) -> Result<LeafRecord> {
    let info = crate::pki::inspect::cert_info(n.cert_der)?;
    let cert = X509::from_der(n.cert_der).map_err(PkiError::from)?;
    let cert_pem = cert.to_pem().map_err(PkiError::from)?;
    let mut chain_pem = Vec::new();
    for c in n.chain {
        chain_pem.extend(c.to_pem().map_err(PkiError::from)?);
    }
    let mut full = cert_pem.clone();
    full.extend(&chain_pem);
    let key_pem = match n.key {
        Some(k) => Some(k.to_pkcs8_pem()?),
        None => None,
    };
    let pfx = match (n.pfx, n.key) {
        (Some((compat, name)), Some(k)) => {
            let pw = generate_password()?;
            let der = pkcs12::build(k, &cert, n.chain, name, &pw, compat)?;
            let mut pw_line = zeroize::Zeroizing::new(pw.expose_secret().as_bytes().to_vec());
            pw_line.push(b'\n');
            Some((der, pw_line))
        }
        _ => None,
    };
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
        sha256: sha256.clone(),
        origin: n.origin.to_string(),
        superseded_by: None,
        renewed_from: n.renewed_from.clone(),
        revoked_at: None,
        revocation_reason: None,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    let mut files = vec![
        NewFile {
            name: CERT,
            bytes: &cert_pem,
            mode: PUBLIC,
        },
        NewFile {
            name: CHAIN,
            bytes: &chain_pem,
            mode: PUBLIC,
        },
        NewFile {
            name: FULLCHAIN,
            bytes: &full,
            mode: PUBLIC,
        },
        NewFile {
            name: META,
            bytes: &meta_json,
            mode: PUBLIC,
        },
    ];
    if let Some(k) = &key_pem {
        files.push(NewFile {
            name: KEY,
            bytes: k,
            mode: SECRET,
        });
    }
    if let Some((der, pw)) = &pfx {
        files.push(NewFile {
            name: PFX,
            bytes: der,
            mode: SECRET,
        });
        files.push(NewFile {
            name: PFX_PASS,
            bytes: pw,
            mode: SECRET,
        });
    }
    let previous = ws.current_leaf(n.tenant, n.env, n.kind)?;
    let dir = ws.leaf_dir(n.env, n.tenant, n.kind, &info.serial);
    fsutil::write_dir_atomic(&dir, &files)?;
    if let Some(mut prev) = previous {
        prev.meta.status = Status::Superseded;
        prev.meta.superseded_by = Some(info.serial.clone());
        prev.save()?;
    }
    let mut ev = Event::new(n.origin);
    ev.tenant = Some(n.tenant);
    ev.env = Some(n.env);
    ev.kind = Some(n.kind.as_str());
    ev.serial = Some(&info.serial);
    ev.sha256 = Some(&sha256);
    ev.detail = n.renewed_from.as_ref().map(|s| format!("renews {s}"));
    ws.audit(&ev)?;
    Ok(LeafRecord { dir, meta })
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
    let req = r.leaf_request();
    let built = cert::sign_leaf(
        &req,
        &key.to_rcgen()?,
        key.algorithm().is_rsa(),
        signer,
        now,
    )?;
    let pfx = r
        .pfx_enabled
        .value
        .then_some((r.pfx_compat.value, r.pfx_friendly_name.value.as_str()));
    let rec = store(
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
            now,
        },
    )?;
    let mut rep = report_of(&rec, "issued")?;
    rep.warnings = built.warnings;
    Ok(rep)
}
