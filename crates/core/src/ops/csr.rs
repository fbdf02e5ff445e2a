//! Working with CAs we do not run, and with requests from people we do not run:
//! `csr` (a key and a request for an external CA), `import` (bring the certificate back
//! and complete the issuance), `sign` (sign a partner's or gateway operator's CSR with an
//! environment's CA).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::issue::{self, IssueReport, NewLeaf};
use super::{Expected, NameFix, OpError, Result};
use crate::pki::cert::{self, LeafRequest, Sans};
use crate::pki::csr::{self as pcsr, CheckedCsr};
use crate::pki::dn::Subject;
use crate::pki::keys::PrivateKey;
use crate::pki::verify::{self, Finding, Input, Purpose};
use crate::pki::{Kind, PkiError, inspect};
use crate::profile::{Dur, LeafFlags, Profiles};
use crate::workspace::Workspace;
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::inventory::{CERT, CHAIN, LeafMeta, LeafRecord, META, Status};
use crate::workspace::journal::Intent;

/// Files of a pending request.
pub const PENDING_KEY: &str = "key.pem";
pub const PENDING_CSR: &str = "request.csr";
pub const PENDING_META: &str = "pending.json";

/// Where leaves signed from a CSR without `--tenant` are recorded:
/// `pki/<env>/_signed/<kind>/<serial>/`. A reserved name: no tenant can take it.
pub use crate::workspace::SIGNED_TENANT;

/// What `pending.json` remembers about a request.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct PendingMeta {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub subject: String,
    pub key_algorithm: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What `csr` reports.
#[derive(Debug, Serialize)]
pub struct CsrReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub subject: String,
    pub san: Sans,
    pub key_algorithm: String,
    pub csr: PathBuf,
    pub key: PathBuf,
    /// The CSR itself, PEM.
    pub csr_pem: String,
}

/// Makes a key and a CSR from tenant/env's profile and keeps them as pending.
pub fn csr(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: &str,
    env: &str,
    kind: Option<Kind>,
    force: bool,
    now: OffsetDateTime,
) -> Result<CsrReport> {
    ws.audit_preflight()?;
    let r = profiles.resolve_kind(tenant, env, kind)?;
    let kind = r.kind.value;
    let req = r.leaf_request();
    if kind == Kind::Server && req.sans.dns.is_empty() && req.sans.ip.is_empty() {
        return Err(OpError::ServerNeedsName {
            fix: NameFix::Profile {
                tenant: tenant.to_string(),
            },
        });
    }
    let dir = ws.pending_dir(env, tenant, kind);
    ws.check_no_symlink(&dir)?;
    if dir.exists() {
        if !force {
            return Err(OpError::RequestPending {
                tenant: tenant.to_string(),
                env: env.to_string(),
                kind,
                dir,
            });
        }
        std::fs::remove_dir_all(&dir).map_err(|reason| OpError::CannotRemove {
            path: dir.clone(),
            reason,
            imported: false,
        })?;
    }
    let key = PrivateKey::generate(r.key.value)?;
    let pem = pcsr::build(&req.subject, &req.sans, kind, &key)?;
    let key_pem = key.to_pkcs8_pem()?;
    let meta = PendingMeta {
        tenant: tenant.to_string(),
        env: env.to_string(),
        kind,
        subject: r.subject.value.clone(),
        key_algorithm: key.algorithm().to_string(),
        created_at: cert::whole_seconds(now),
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("pending meta serialises");
    fsutil::write_dir_atomic(
        &dir,
        &[
            NewFile {
                name: PENDING_KEY,
                bytes: &key_pem,
                mode: SECRET,
            },
            NewFile {
                name: PENDING_CSR,
                bytes: pem.as_bytes(),
                mode: PUBLIC,
            },
            NewFile {
                name: PENDING_META,
                bytes: &meta_json,
                mode: PUBLIC,
            },
        ],
    )?;
    let mut ev = Event::new("csr");
    ev.tenant = Some(tenant);
    ev.env = Some(env);
    ev.kind = Some(kind.as_str());
    ws.audit(&ev)?;
    Ok(CsrReport {
        tenant: tenant.to_string(),
        env: env.to_string(),
        kind,
        subject: r.subject.value.clone(),
        san: req.sans,
        key_algorithm: key.algorithm().to_string(),
        csr: dir.join(PENDING_CSR),
        key: dir.join(PENDING_KEY),
        csr_pem: pem,
    })
}

fn certs_in(path: &Path, what: &'static str) -> Result<Vec<Vec<u8>>> {
    let data = fsutil::read(path)?;
    inspect::certificates(&data).map_err(|reason| OpError::Unparsable {
        path: path.to_path_buf(),
        what,
        reason,
        expected: Expected::FromCa,
    })
}

/// What `import` did: the issuance, and the warnings verification found.
#[derive(Debug)]
pub struct Imported {
    pub report: IssueReport,
    pub warnings: Vec<Finding>,
}

/// The certificate an external CA sent back, checked: it holds the pending key, its
/// chain ends in a root, the path validates for `kind` at `now` (a customer CA breaking
/// a strict rule only with `accept_nonconforming_ca`), and it carries every name the
/// profile asks for, as `verify --tenant` checks it. `whose` names the pending request
/// in the refusal.
struct ImportCheck<'a> {
    cert_file: &'a Path,
    chain_file: Option<&'a Path>,
    kind: Kind,
    accept_nonconforming_ca: bool,
    now: OffsetDateTime,
}

fn check_import(
    key: &PrivateKey,
    c: &ImportCheck<'_>,
    r: &crate::profile::Resolved,
    whose: impl Fn() -> String,
) -> Result<(Vec<u8>, verify::Outcome)> {
    let cert_file = c.cert_file;
    let mut given = certs_in(cert_file, "--cert")?;
    let leaf = given.remove(0);
    let mut others = given;
    if let Some(ch) = c.chain_file {
        others.extend(certs_in(ch, "--chain")?);
    }
    let leaf_x = X509::from_der(&leaf).map_err(PkiError::from)?;
    let leaf_pub = leaf_x.public_key().map_err(PkiError::from)?;
    if !leaf_pub.public_eq(key.pkey()) {
        return Err(OpError::NotForPendingKey {
            cert: cert_file.to_path_buf(),
            whose: whose(),
        });
    }
    let (trusted, untrusted): (Vec<Vec<u8>>, Vec<Vec<u8>>) = others.into_iter().partition(|d| {
        inspect::cert_info(d)
            .map(|i| i.self_signed)
            .unwrap_or(false)
    });
    if trusted.is_empty() {
        return Err(OpError::ChainWithoutRoot);
    }
    let mut outcome = super::verify::verify_customer(
        &Input {
            leaf: leaf.clone(),
            untrusted,
            trusted,
            crls: Vec::new(),
            purpose: Purpose::from(c.kind),
            hostname: None,
            ip: None,
            at: Some(c.now),
            renew_before: time::Duration::ZERO,
            max_depth: None,
            relaxed: false,
        },
        c.accept_nonconforming_ca,
    )?;
    let info = inspect::cert_info(&leaf)?;
    outcome.add(super::verify::profile_findings(r, &info, true));
    if let Some(e) = outcome.errors().next() {
        return Err(OpError::NotImported {
            cert: cert_file.to_path_buf(),
            finding: Box::new(e.clone()),
        });
    }
    Ok((leaf, outcome))
}

/// Brings back the certificate an external CA signed for the pending request of
/// tenant/env/kind, checks it, and completes the issuance like `issue`.
#[allow(clippy::too_many_arguments)]
pub fn import(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: &str,
    env: &str,
    kind: Option<Kind>,
    cert_file: &Path,
    chain_file: Option<&Path>,
    accept_nonconforming_ca: bool,
    now: OffsetDateTime,
) -> Result<Imported> {
    ws.audit_preflight()?;
    let r = profiles.resolve_kind(tenant, env, kind)?;
    let kind = r.kind.value;
    let dir = ws.pending_dir(env, tenant, kind);
    let key_path = dir.join(PENDING_KEY);
    if !key_path.is_file() {
        return Err(OpError::NoPendingRequest {
            tenant: tenant.to_string(),
            env: env.to_string(),
            kind,
            key: key_path,
        });
    }
    let key_pem = zeroize::Zeroizing::new(ws.read(&key_path)?);
    let key = PrivateKey::from_pem_or_der(&key_pem, None)?;
    let check = ImportCheck {
        cert_file,
        chain_file,
        kind,
        accept_nonconforming_ca,
        now,
    };
    let (leaf, outcome) = check_import(&key, &check, &r, || {
        format!(
            "{tenant}/{env}/{kind}; import the certificate issued for {}",
            dir.join(PENDING_CSR).display()
        )
    })?;
    let accepted: Vec<String> = outcome
        .warnings()
        .filter(|f| f.code == verify::Code::NonconformingCaAccepted)
        .map(|f| f.subject().unwrap_or("a CA").to_string())
        .collect();
    let audit_detail = (!accepted.is_empty()).then(|| {
        format!(
            "nonconforming CA accepted (--accept-nonconforming-ca): {}",
            accepted.join(", ")
        )
    });
    let mut chain = Vec::new();
    for p in outcome.path.iter().skip(1) {
        chain.push(X509::from_der(&p.der).map_err(PkiError::from)?);
    }
    let pfx = r
        .pfx_enabled
        .value
        .then_some((r.pfx_compat.value, r.pfx_friendly_name.value.as_str()));
    let rec = issue::store(
        ws,
        &NewLeaf {
            staged: false,
            tenant,
            env,
            kind,
            origin: "import",
            key: Some(&key),
            cert_der: &leaf,
            chain: &chain,
            pfx,
            renewed_from: None,
            renew_before_secs: None,
            ca: None,
            fixture: false,
            audit_detail,
            now,
        },
    )?;
    std::fs::remove_dir_all(&dir).map_err(|reason| OpError::CannotRemove {
        path: dir.clone(),
        reason,
        imported: true,
    })?;
    Ok(Imported {
        report: issue::report_of(&rec, "imported")?,
        warnings: outcome.warnings().cloned().collect(),
    })
}

/// A request to sign a third-party CSR.
#[derive(Clone, Debug, Default)]
pub struct SignRequest {
    pub env: String,
    pub tenant: Option<String>,
    pub kind: Option<Kind>,
    pub dns: Vec<String>,
    pub ip: Vec<IpAddr>,
    pub validity: Option<Dur>,
    /// Take the SANs the CSR asks for (they are otherwise ignored).
    pub accept_csr_sans: bool,
}

/// What `sign` reports.
#[derive(Debug, Serialize)]
pub struct SignReport {
    pub env: String,
    pub tenant: Option<String>,
    pub kind: Kind,
    pub serial: String,
    pub subject: String,
    pub san: Sans,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub sha256: String,
    pub cert: PathBuf,
    pub chain: PathBuf,
    pub fullchain: PathBuf,
    /// What was asked for and not granted, and other notes.
    pub warnings: Vec<String>,
}

/// Signs a checked CSR with `env`'s CA under the profile's rules and records it.
/// Reads a CSR given on the command line (PEM or DER, the first request in the file) and
/// checks its self-signature: a request its key did not sign is refused.
pub fn read_csr(path: &Path) -> Result<CheckedCsr> {
    let data = fsutil::read(path).map_err(|e| OpError::input(path, e))?;
    let der = pcsr::first_request(&data).map_err(|e| OpError::input(path, e))?;
    pcsr::check(&der).map_err(|e| OpError::input(path, e))
}

pub fn sign(
    ws: &Workspace,
    profiles: &Profiles,
    req: &SignRequest,
    csr: &CheckedCsr,
    with: &issue::SignWith<'_>,
    now: OffsetDateTime,
) -> Result<SignReport> {
    let (signer, chain) = (with.signer, with.chain);
    ws.audit_preflight()?;
    let mut lr = sign_settings(profiles, req, csr)?;
    let mut warnings = grant_csr_sans(req, csr, &mut lr.sans);
    check_server_names(lr.kind, &lr.sans, csr)?;
    if csr.requests_ca {
        warnings.push(
            "the request asks for CA:TRUE; not granted: the certificate is an end-entity (CA:FALSE)"
                .into(),
        );
    }
    for s in &csr.ignored_sans {
        warnings.push(format!("requested name not carried over: {s}"));
    }
    let pk = pcsr::public_key(csr)?;
    let built = cert::sign_leaf(&lr, &pk, csr.key.is_rsa(), signer, now)?;
    warnings.extend(built.warnings.iter().cloned());
    let rec = match &req.tenant {
        Some(t) => issue::store(
            ws,
            &NewLeaf {
                staged: false,
                tenant: t,
                env: &req.env,
                kind: lr.kind,
                origin: "sign",
                key: None,
                cert_der: &built.der,
                chain,
                pfx: None,
                renewed_from: None,
                renew_before_secs: None,
                ca: Some(with.ca.clone()),
                fixture: false,
                audit_detail: None,
                now,
            },
        )?,
        None => store_signed(ws, &req.env, lr.kind, &built.der, chain, with.ca, now)?,
    };
    let info = inspect::cert_info(&built.der)?;
    let files = issue::files_of(&rec);
    Ok(SignReport {
        env: req.env.clone(),
        tenant: req.tenant.clone(),
        kind: lr.kind,
        serial: rec.meta.serial.clone(),
        subject: info.subject,
        san: lr.sans,
        not_before: info.not_before,
        not_after: info.not_after,
        sha256: rec.meta.sha256.clone(),
        cert: files.cert,
        chain: files.chain,
        fullchain: files.fullchain,
        warnings,
    })
}

/// What `sign` builds: from the tenant's profile with `--tenant`, else from the request's
/// subject, the flags' names and the default validity.
/// The kind of certificate `sign` makes of `csr` (to pick the CA that signs it).
pub fn sign_kind(profiles: &Profiles, req: &SignRequest, csr: &CheckedCsr) -> Result<Kind> {
    Ok(sign_settings(profiles, req, csr)?.kind)
}

fn sign_settings(profiles: &Profiles, req: &SignRequest, csr: &CheckedCsr) -> Result<LeafRequest> {
    if let Some(t) = &req.tenant {
        let r = profiles.resolve(
            t,
            &req.env,
            &LeafFlags {
                kind: req.kind,
                validity: req.validity,
                dns: req.dns.clone(),
                ip: req.ip.clone(),
                ..LeafFlags::default()
            },
        )?;
        return Ok(r.leaf_request());
    }
    profiles.check_env(&req.env)?;
    let subject = Subject::parse(&csr.subject).map_err(|reason| OpError::UnusableSubject {
        subject: csr.subject.clone(),
        reason,
    })?;
    let validity = req
        .validity
        .unwrap_or(Dur::days(crate::profile::resolve::defaults::VALIDITY_DAYS));
    Ok(LeafRequest {
        kind: req.kind.unwrap_or(Kind::Server),
        both_ekus: false,
        subject,
        sans: Sans {
            dns: req.dns.clone(),
            ip: req.ip.clone(),
            ..Sans::default()
        },
        validity: validity.to_time(),
        clip_to_ca: false,
    })
}

/// Takes the request's names with `--accept-csr-sans`; otherwise warns of the ones asked
/// for and not granted.
fn grant_csr_sans(req: &SignRequest, csr: &CheckedCsr, sans: &mut Sans) -> Vec<String> {
    if req.accept_csr_sans {
        merge(sans, &csr.sans);
        return Vec::new();
    }
    let mut asked: Vec<String> = csr.sans.dns.clone();
    asked.extend(csr.sans.ip.iter().map(|i| i.to_string()));
    asked.extend(csr.sans.email.clone());
    asked.extend(csr.sans.uri.clone());
    let missing: Vec<String> = asked
        .iter()
        .filter(|a| {
            !sans.dns.contains(a)
                && !sans.ip.iter().any(|i| &i.to_string() == *a)
                && !sans.email.contains(a)
                && !sans.uri.contains(a)
        })
        .map(|s| crate::pki::text::sanitize(s))
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the request asks for names that were not granted: {} (pass --accept-csr-sans to take them, or --dns/--ip)",
        missing.join(", ")
    )]
}

/// A server certificate must carry a DNS or IP name.
fn check_server_names(kind: Kind, sans: &Sans, csr: &CheckedCsr) -> Result<()> {
    if kind != Kind::Server || !sans.dns.is_empty() || !sans.ip.is_empty() {
        return Ok(());
    }
    Err(OpError::ServerNeedsName {
        fix: if csr.sans.is_empty() {
            NameFix::Flags
        } else {
            NameFix::FlagsOrRequest
        },
    })
}

fn merge(into: &mut Sans, from: &Sans) {
    for d in &from.dns {
        if !into.dns.contains(d) {
            into.dns.push(d.clone());
        }
    }
    for i in &from.ip {
        if !into.ip.contains(i) {
            into.ip.push(*i);
        }
    }
    for e in &from.email {
        if !into.email.contains(e) {
            into.email.push(e.clone());
        }
    }
    for u in &from.uri {
        if !into.uri.contains(u) {
            into.uri.push(u.clone());
        }
    }
}

/// Records a leaf signed for no tenant: its own folder, no supersession (partners may
/// hold several at once), an audit line, under a journal written first.
fn store_signed(
    ws: &Workspace,
    env: &str,
    kind: Kind,
    der: &[u8],
    chain: &[X509],
    ca: &crate::workspace::CaLoc,
    now: OffsetDateTime,
) -> Result<LeafRecord> {
    let info = inspect::cert_info(der)?;
    let x = X509::from_der(der).map_err(PkiError::from)?;
    let cert_pem = x.to_pem().map_err(PkiError::from)?;
    let mut chain_pem = Vec::new();
    for c in chain {
        chain_pem.extend(c.to_pem().map_err(PkiError::from)?);
    }
    let mut full = cert_pem.clone();
    full.extend(&chain_pem);
    let sha256 = crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(der));
    let meta = LeafMeta {
        serial: info.serial.clone(),
        tenant: SIGNED_TENANT.to_string(),
        env: env.to_string(),
        kind,
        status: Status::Active,
        issued_at: cert::whole_seconds(now),
        not_after: info.not_after,
        subject: info.subject.clone(),
        sha256: sha256.clone(),
        origin: "sign".into(),
        superseded_by: None,
        renewed_from: None,
        superseded_at: None,
        revoked_at: None,
        revocation_reason: None,
        renew_before_secs: None,
        ca: Some(ca.clone()),
        fixture: false,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serialises");
    let dir = ws.leaf_dir(env, SIGNED_TENANT, kind, &info.serial);
    ws.check_no_symlink(&dir)?;
    let mut intent = Intent::new("sign", now);
    issue::LeafPlan {
        tenant: SIGNED_TENANT,
        env,
        kind,
        origin: "sign",
        renewed_from: None,
        has_key: false,
        supersede: false,
        ca: Some(ca),
    }
    .add_to(ws, &mut intent, &info.serial)?;
    intent.leaves[0].audit.detail = Some(format!("subject {}", info.subject));
    let journal = ws.begin(&intent)?;
    fsutil::write_dir_atomic(
        &dir,
        &[
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
                name: issue::FULLCHAIN,
                bytes: &full,
                mode: PUBLIC,
            },
            NewFile {
                name: META,
                bytes: &meta_json,
                mode: PUBLIC,
            },
        ],
    )?;
    let mut ev = intent.leaves[0].event(&meta);
    ev.tenant = None; // signed for no tenant
    issue::audit(ws, &[ev], true)?;
    journal.done();
    Ok(LeafRecord { dir, meta })
}
