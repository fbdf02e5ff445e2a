//! `verify`: read the files a path validation needs, or take a tenant's current
//! certificate with its environment's CA, CRL and profile expectations.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use super::{CertNeed, Expected, OpError, Result};
use crate::pki::Kind;
use crate::pki::inspect::{self, CertInfo};
use crate::pki::verify::{self, CertRef, Code, Detail, Finding, Input, Outcome, Purpose};
use crate::profile::{Profiles, Resolved};
use crate::workspace::Workspace;
use crate::workspace::fsutil;

/// Default window for the "expires soon" warning outside a workspace.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::days(30);

/// The files and options of a stand-alone verification.
#[derive(Clone, Debug, Default)]
pub struct FileRequest {
    pub cert: PathBuf,
    pub ca: Vec<PathBuf>,
    pub untrusted: Vec<PathBuf>,
    pub crls: Vec<PathBuf>,
    pub hostname: Option<String>,
    pub ip: Option<IpAddr>,
    pub at: Option<OffsetDateTime>,
    pub renew_before: Option<Duration>,
    pub max_depth: Option<u32>,
}

fn certs_of(path: &Path, what: &'static str) -> Result<Vec<Vec<u8>>> {
    let data = fsutil::read(path)?;
    inspect::certificates(&data).map_err(|reason| OpError::Unparsable {
        path: path.to_path_buf(),
        what,
        reason,
        expected: Expected::Certificate,
    })
}

/// Reads the files of `r` and validates.
pub fn files(r: &FileRequest, purpose: Purpose) -> Result<Outcome> {
    let mut given = certs_of(&r.cert, "certificate")?;
    let leaf = given.remove(0);
    let mut untrusted = given;
    for u in &r.untrusted {
        untrusted.extend(certs_of(u, "--untrusted")?);
    }
    let mut trusted = Vec::new();
    for c in &r.ca {
        trusted.extend(certs_of(c, "--ca")?);
    }
    let mut crls = Vec::new();
    for c in &r.crls {
        let data = fsutil::read(c)?;
        crls.extend(
            verify::crls_from(&data).map_err(|reason| OpError::Unparsable {
                path: c.clone(),
                what: "--crl",
                reason,
                expected: Expected::Crl,
            })?,
        );
    }
    Ok(verify::verify(&Input {
        leaf,
        untrusted,
        trusted,
        crls,
        purpose,
        hostname: r.hostname.clone(),
        ip: r.ip,
        at: r.at,
        renew_before: r.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE),
        max_depth: r.max_depth,
        relaxed: false,
    })?)
}

/// Validates a path that ends in a customer's CA. Strict first; with `accept`, a path
/// whose only error is a CA breaking one of OpenSSL's strict rules (a root without
/// keyUsage, as `openssl req -x509` makes) is validated again without them, and each CA
/// taken as it is becomes a `nonconforming_ca_accepted` warning. OpenSSL checks the path
/// from the leaf up and stops at the first breach, so one found on a CA means the leaf
/// passed the strict rules; its purpose (clientAuth) is checked in either run.
pub(crate) fn verify_customer(input: &Input, accept: bool) -> Result<Outcome> {
    let strict = verify::verify(input)?;
    let errors: Vec<&Finding> = strict.errors().collect();
    let only_cas = !errors.is_empty()
        && errors
            .iter()
            .all(|f| f.code == Code::Nonconforming && f.depth().is_some_and(|d| d > 0));
    if !accept || !only_cas {
        return Ok(strict);
    }
    let accepted: Vec<Finding> = errors
        .into_iter()
        .map(|f| Finding {
            code: Code::NonconformingCaAccepted,
            ..f.clone()
        })
        .collect();
    let mut relaxed = verify::verify(&Input {
        relaxed: true,
        ..input.clone()
    })?;
    relaxed.add(accepted);
    Ok(relaxed)
}

/// A tenant's certificate verified in its workspace.
#[derive(Debug)]
pub struct TenantReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub serial: String,
    pub cert: PathBuf,
    pub ca: Vec<PathBuf>,
    pub crl: Vec<PathBuf>,
    pub outcome: Outcome,
}

/// Verifies the current certificate of tenant/env (of `kind`, default the profile's)
/// against the env CA, its current CRL and the profile's expectations.
pub fn tenant(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: &str,
    env: &str,
    kind: Option<Kind>,
    at: Option<OffsetDateTime>,
) -> Result<TenantReport> {
    let r = profiles.resolve_kind(tenant, env, kind)?;
    let kind = r.kind.value;
    let rec = ws
        .current_leaf(tenant, env, kind)?
        .ok_or_else(|| OpError::NoCurrentCert {
            tenant: tenant.to_string(),
            env: env.to_string(),
            kind: Some(kind),
            need: CertNeed::Verify,
        })?;
    let leaf = certs_of(&rec.cert_path(), "certificate")?.remove(0);
    let chain = if rec.chain_path().is_file() {
        let data = fsutil::read_nofollow(&rec.chain_path())?;
        inspect::certificates(&data).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut ca_files = Vec::new();
    let mut crl_files = Vec::new();
    let issuer = super::ca::issuer_of(&rec.meta);
    // an imported certificate is anchored in the customer chain stored with it, even
    // where the environment has a CA of ours for its other tenants
    let imported = rec.meta.origin == "import";
    let ours = !imported && ws.ca_cert(issuer.set()).is_file();
    let (trusted, untrusted): (Vec<Vec<u8>>, Vec<Vec<u8>>) = if ours {
        // the roots of the set that signed it are the anchors; its issuing CAs and any
        // cross-certificate may stand between
        let set = super::ca::read_set(ws, &issuer.set())?;
        let mut trusted = Vec::new();
        let mut untrusted = chain;
        for c in &set.cas {
            if c.entry.role == super::ca::CaRole::Root {
                ca_files.push(ws.ca_cert(&c.loc));
                trusted.push(c.der.clone());
            } else {
                untrusted.push(c.der.clone());
            }
            if c.entry.role != super::ca::CaRole::Cross && ws.crl(&c.loc).is_file() {
                crl_files.push(ws.crl(&c.loc));
            }
        }
        (trusted, untrusted)
    } else if !imported && ws.ca_cert(env).is_file() {
        ca_files.push(ws.ca_cert(env));
        (certs_of(&ws.ca_cert(env), "CA certificate")?, chain)
    } else {
        // external CA: the chain given at import ends with its root
        ca_files.push(rec.chain_path());
        chain.into_iter().partition(|d| {
            inspect::cert_info(d)
                .map(|i| i.self_signed)
                .unwrap_or(false)
        })
    };
    if trusted.is_empty() {
        return Err(OpError::NoTrustAnchor {
            ca_cert: ws.ca_cert(env),
            chain: rec.chain_path(),
        });
    }
    if crl_files.is_empty() && !imported && ws.crl(env).is_file() {
        crl_files.push(ws.crl(env));
    }
    let mut crls = Vec::new();
    for crl_path in &crl_files {
        let data = ws.read(crl_path)?;
        crls.extend(verify::crls_from(&data).map_err(|e| OpError::input(crl_path, e))?);
    }
    let crl = crl_files;
    // `import` refused a nonconforming customer CA unless told to take it, so one
    // stored with an imported certificate was accepted then
    let mut outcome = verify_customer(
        &Input {
            leaf: leaf.clone(),
            untrusted,
            trusted,
            crls,
            purpose: kind.into(),
            hostname: None,
            ip: None,
            at,
            renew_before: r.renew_before.value.to_time(),
            max_depth: None,
            relaxed: false,
        },
        imported,
    )?;
    let info = inspect::cert_info(&leaf).map_err(OpError::from)?;
    outcome.add(profile_findings(&r, &info, imported));
    Ok(TenantReport {
        tenant: tenant.to_string(),
        env: env.to_string(),
        kind,
        serial: rec.meta.serial.clone(),
        cert: rec.cert_path(),
        ca: ca_files,
        crl,
        outcome,
    })
}

/// What the profile asks of the tenant's certificate that it lacks: names (an error),
/// the key algorithm (a warning: renewal switches keys).
/// `external`: the certificate came from an external CA, so the fix is a new request.
pub(crate) fn profile_findings(r: &Resolved, info: &CertInfo, external: bool) -> Vec<Finding> {
    let leaf = CertRef {
        depth: 0,
        subject: info.subject.clone(),
        self_signed: info.self_signed,
    };
    let missing = |want: &[String], have: &[String]| -> Vec<String> {
        want.iter()
            .filter(|w| !have.iter().any(|h| h.eq_ignore_ascii_case(w)))
            .cloned()
            .collect()
    };
    let ips: Vec<String> = r.san_ip.value.iter().map(|i| i.to_string()).collect();
    let mut gone = missing(&r.san_dns.value, &info.san.dns);
    gone.extend(missing(&ips, &info.san.ip));
    gone.extend(missing(&r.san_email.value, &info.san.email));
    gone.extend(missing(&r.san_uri.value, &info.san.uri));
    let (tenant, env, kind) = (r.tenant.clone(), r.env.clone(), r.kind.value);
    let mut out = Vec::new();
    if !gone.is_empty() {
        let detail = Detail::ProfileSans {
            missing: gone,
            tenant: tenant.clone(),
            env: env.clone(),
            kind,
            external,
        };
        out.push(Finding::new(
            Code::ProfileSanMismatch,
            Some(leaf.clone()),
            detail,
        ));
    }
    if info.key.algorithm != r.key.value.as_str() {
        let detail = Detail::ProfileKey {
            has: info.key.algorithm.clone(),
            wants: r.key.value.to_string(),
            source: r.key.source.to_string(),
            tenant,
            env,
            kind,
            external,
        };
        out.push(Finding::new(Code::ProfileKeyMismatch, Some(leaf), detail));
    }
    out
}
