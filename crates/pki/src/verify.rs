//! Path validation that explains itself.
//!
//! OpenSSL's verifier does the path building and the RFC 5280 checks (X509_STRICT, the
//! purpose, host or IP, CRLs for the whole chain, a verification time). On top of it
//! this module adds checks OpenSSL skips (web-PKI and RFC 5280 rules: malformed name
//! constraints, invalid SAN syntax, wildcards against excluded subtrees, weak CA keys,
//! v1 leaves, CA:TRUE leaves, ...), and turns every failure into a [`Finding`] with a
//! stable reason code, the certificate it concerns and what to do about it.

use std::collections::HashSet;
use std::net::IpAddr;

use foreign_types::ForeignTypeRef;
use openssl::nid::Nid;
use openssl::pkey::Id;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags};
use openssl::x509::{X509, X509Crl, X509PurposeId, X509StoreContext, X509VerifyResult};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::inspect::{self, CertInfo};
use super::{PkiError, Result};

/// What the leaf must be good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Client,
    Server,
    Any,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Client => "client",
            Purpose::Server => "server",
            Purpose::Any => "any",
        }
    }
}

impl std::str::FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "client" => Ok(Purpose::Client),
            "server" => Ok(Purpose::Server),
            "any" => Ok(Purpose::Any),
            o => Err(format!("unknown purpose '{o}': use client, server or any")),
        }
    }
}

impl From<super::Kind> for Purpose {
    fn from(k: super::Kind) -> Self {
        match k {
            super::Kind::Client => Purpose::Client,
            super::Kind::Server => Purpose::Server,
        }
    }
}

/// Everything a validation needs, already read from files.
#[derive(Clone, Debug)]
pub struct Input {
    /// The certificate to validate (DER).
    pub leaf: Vec<u8>,
    /// Intermediates that may be used to build the path (DER), not trusted.
    pub untrusted: Vec<Vec<u8>>,
    /// Trust anchors (DER).
    pub trusted: Vec<Vec<u8>>,
    /// CRLs (DER); when any is given every certificate of the path must be covered.
    pub crls: Vec<Vec<u8>>,
    pub purpose: Purpose,
    pub hostname: Option<String>,
    pub ip: Option<IpAddr>,
    /// Verification time; now when None.
    pub at: Option<OffsetDateTime>,
    /// Warn when a certificate of the path expires within this window.
    pub renew_before: Duration,
    /// Most intermediates allowed between the leaf and the trust anchor.
    pub max_depth: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing found about the path.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, machine-readable reason code (docs/verify.md lists them).
    pub code: &'static str,
    /// Position in the path (0 = the leaf); None when it concerns no one certificate.
    pub depth: Option<usize>,
    /// Subject of the certificate concerned.
    pub subject: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// OpenSSL's own words, when the finding came from its verifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openssl: Option<String>,
}

/// One certificate of the path as validated.
#[derive(Clone, Debug, Serialize)]
pub struct PathCert {
    pub depth: usize,
    /// "leaf", "intermediate" or "root".
    pub role: &'static str,
    /// Whether the certificate is one of the trust anchors given.
    pub trusted: bool,
    #[serde(flatten)]
    pub cert: CertInfo,
    pub findings: Vec<Finding>,
    /// The certificate itself (DER), for callers that keep the path.
    #[serde(skip)]
    pub der: Vec<u8>,
}

/// The verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub valid: bool,
    /// The code of the first error, when invalid.
    pub reason: Option<&'static str>,
    pub purpose: Purpose,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub crl_checked: bool,
    /// The path from the leaf (depth 0) up, as far as it could be built.
    pub path: Vec<PathCert>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Outcome {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

/// Every reason code this module can give, with its severity; docs/verify.md mirrors it.
pub const CODES: &[(&str, Severity)] = &[
    ("expired", Severity::Error),
    ("not_yet_valid", Severity::Error),
    ("wrong_eku", Severity::Error),
    ("ca_eku_mismatch", Severity::Error),
    ("wrong_ca", Severity::Error),
    ("missing_intermediate", Severity::Error),
    ("untrusted_root", Severity::Error),
    ("ca_not_root", Severity::Error),
    ("self_signed_leaf", Severity::Error),
    ("bad_signature", Severity::Error),
    ("revoked", Severity::Error),
    ("crl_missing", Severity::Error),
    ("crl_expired", Severity::Error),
    ("crl_not_yet_valid", Severity::Error),
    ("crl_bad_signature", Severity::Error),
    ("crl_invalid", Severity::Error),
    ("hostname_mismatch", Severity::Error),
    ("ip_mismatch", Severity::Error),
    ("path_length_exceeded", Severity::Error),
    ("chain_too_long", Severity::Error),
    ("not_a_ca", Severity::Error),
    ("ca_key_usage", Severity::Error),
    ("leaf_is_ca", Severity::Error),
    ("name_constraints_violation", Severity::Error),
    ("name_constraints_invalid", Severity::Error),
    ("invalid_san", Severity::Error),
    ("san_critical", Severity::Error),
    ("unsupported_version", Severity::Error),
    ("malformed_extension", Severity::Error),
    ("unknown_critical_extension", Severity::Error),
    ("aki_without_key_id", Severity::Error),
    ("weak_ca_key", Severity::Error),
    ("weak_algorithm", Severity::Error),
    ("nonconforming", Severity::Error),
    ("rejected", Severity::Error),
    ("profile_san_mismatch", Severity::Error),
    ("expires_soon", Severity::Warning),
    ("sha1_signature", Severity::Warning),
    ("weak_rsa_key", Severity::Warning),
    ("leaf_outlives_ca", Severity::Warning),
    ("server_without_san", Severity::Warning),
    ("no_eku", Severity::Warning),
    ("cn_not_in_san", Severity::Warning),
    ("profile_key_mismatch", Severity::Warning),
];

/// Reads every CRL in a PEM or DER file as DER.
pub fn crls_from(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for b in inspect::blocks(data)? {
        match b.label.as_str() {
            "X509 CRL" => out.push(b.der),
            "DER" => {
                X509Crl::from_der(&b.der)
                    .map_err(|_| PkiError::Parse("not a CRL (PEM or DER)".into()))?;
                out.push(b.der)
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(PkiError::Parse("no CRL in this file".into()));
    }
    Ok(out)
}

mod ffi {
    use std::os::raw::c_int;
    unsafe extern "C" {
        // libcrypto, linked through openssl-sys; the Rust binding has no way to put an
        // in-memory CRL into a store.
        pub fn X509_STORE_add_crl(
            store: *mut openssl_sys::X509_STORE,
            crl: *mut openssl_sys::X509_CRL,
        ) -> c_int;
    }
}

struct RawResult {
    ok: bool,
    code: i32,
    text: &'static str,
    depth: usize,
    chain: Vec<Vec<u8>>,
}

fn run_openssl(inp: &Input, at: OffsetDateTime) -> Result<RawResult> {
    let mut b = X509StoreBuilder::new()?;
    for t in &inp.trusted {
        b.add_cert(X509::from_der(t)?)?;
    }
    let mut crls = Vec::new();
    for c in &inp.crls {
        crls.push(
            X509Crl::from_der(c)
                .map_err(|_| PkiError::Parse("a CRL given could not be parsed".into()))?,
        );
    }
    for c in &crls {
        // SAFETY: both pointers are valid for the call; X509_STORE_add_crl takes its own
        // reference to the CRL, so `crls` may be dropped afterwards.
        let rc = unsafe { ffi::X509_STORE_add_crl(b.as_ptr(), c.as_ptr()) };
        if rc != 1 {
            return Err(PkiError::OpenSsl(openssl::error::ErrorStack::get()));
        }
    }
    let mut flags = X509VerifyFlags::X509_STRICT;
    if !crls.is_empty() {
        flags |= X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL;
    }
    let mut p = openssl::x509::verify::X509VerifyParam::new()?;
    p.set_flags(flags)?;
    match inp.purpose {
        Purpose::Client => p.set_purpose(X509PurposeId::SSL_CLIENT)?,
        Purpose::Server => p.set_purpose(X509PurposeId::SSL_SERVER)?,
        Purpose::Any => {}
    }
    p.set_time(at.unix_timestamp() as libc::time_t);
    if let Some(d) = inp.max_depth {
        p.set_depth(d.min(i32::MAX as u32) as i32);
    }
    p.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS | X509CheckFlags::NEVER_CHECK_SUBJECT);
    if let Some(h) = &inp.hostname {
        p.set_host(h)?;
    }
    if let Some(ip) = inp.ip {
        p.set_ip(ip)?;
    }
    b.set_param(&p)?;
    let store = b.build();
    let leaf = X509::from_der(&inp.leaf)?;
    let mut untrusted = Stack::new()?;
    for u in &inp.untrusted {
        untrusted.push(X509::from_der(u)?)?;
    }
    let mut ctx = X509StoreContext::new()?;
    let r = ctx.init(&store, &leaf, &untrusted, |c| {
        let ok = c.verify_cert()?;
        let err: X509VerifyResult = c.error();
        let mut chain = Vec::new();
        if let Some(ch) = c.chain() {
            for x in ch {
                chain.push(x.to_der()?);
            }
        }
        Ok(RawResult {
            ok,
            code: err.as_raw(),
            text: err.error_string(),
            depth: c.error_depth() as usize,
            chain,
        })
    })?;
    Ok(r)
}

/// A certificate of the path, parsed once.
struct Cert {
    der: Vec<u8>,
    info: CertInfo,
}

impl Cert {
    fn new(der: Vec<u8>) -> Result<Self> {
        let info = inspect::cert_info(&der)?;
        Ok(Cert { der, info })
    }
    fn parsed(&self) -> Option<X509Certificate<'_>> {
        x509_parser::parse_x509_certificate(&self.der)
            .ok()
            .map(|(_, c)| c)
    }
}

/// Validates `inp` and explains the result.
pub fn verify(inp: &Input) -> Result<Outcome> {
    if inp.trusted.is_empty() {
        return Err(PkiError::Invalid(
            "no trusted CA certificate given: pass the CA with --ca FILE".into(),
        ));
    }
    if inp.hostname.is_some() && inp.ip.is_some() {
        return Err(PkiError::Invalid(
            "give either --hostname or --ip, not both".into(),
        ));
    }
    // certificates carry whole seconds: compare at that granularity
    let at = super::cert::whole_seconds(inp.at.unwrap_or_else(OffsetDateTime::now_utc));
    let mut raw = run_openssl(inp, at)?;
    // RFC 5280 4.1.2.5: the validity period includes notAfter; OpenSSL treats a time
    // equal to notAfter as expired. Look again one second earlier in that one case.
    if !raw.ok && raw.code == openssl_sys::X509_V_ERR_CERT_HAS_EXPIRED {
        let at_edge = raw
            .chain
            .get(raw.depth)
            .and_then(|d| inspect::cert_info(d).ok())
            .is_some_and(|i| i.not_after == at);
        if at_edge {
            let again = run_openssl(inp, at - Duration::seconds(1))?;
            let any_starts_now = again
                .chain
                .iter()
                .filter_map(|d| inspect::cert_info(d).ok())
                .any(|i| i.not_before == at);
            if !any_starts_now {
                raw = again;
            }
        }
    }

    let mut chain: Vec<Cert> = Vec::new();
    for d in &raw.chain {
        chain.push(Cert::new(d.clone())?);
    }
    if chain.is_empty() {
        chain.push(Cert::new(inp.leaf.clone())?);
    }
    let trusted_set: HashSet<&[u8]> = inp.trusted.iter().map(|v| v.as_slice()).collect();
    let trusted_info: Vec<CertInfo> = inp
        .trusted
        .iter()
        .filter_map(|d| inspect::cert_info(d).ok())
        .collect();

    let mut findings: Vec<Finding> = Vec::new();
    if !raw.ok {
        findings.push(from_openssl(&raw, &chain, &trusted_info, inp));
    }
    extra_checks(inp, at, &chain, &trusted_set, &mut findings);

    // one finding per (code, depth); errors first, in path order
    let mut seen = HashSet::new();
    findings.retain(|f| seen.insert((f.code, f.depth)));
    findings.sort_by_key(|f| {
        (
            f.severity == Severity::Warning,
            f.depth.unwrap_or(usize::MAX),
        )
    });

    let n = chain.len();
    let path = chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let trusted = trusted_set.contains(c.der.as_slice());
            PathCert {
                depth: i,
                role: if i == 0 {
                    "leaf"
                } else if i + 1 == n && (trusted || c.info.self_signed) {
                    "root"
                } else {
                    "intermediate"
                },
                trusted,
                cert: c.info.clone(),
                der: c.der.clone(),
                findings: findings
                    .iter()
                    .filter(|f| f.depth == Some(i))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    let reason = findings
        .iter()
        .find(|f| f.severity == Severity::Error)
        .map(|f| f.code);
    Ok(Outcome {
        valid: reason.is_none(),
        reason,
        purpose: inp.purpose,
        hostname: inp.hostname.clone(),
        ip: inp.ip,
        at,
        crl_checked: !inp.crls.is_empty(),
        path,
        findings,
    })
}

fn err(
    code: &'static str,
    depth: Option<usize>,
    subject: Option<&str>,
    message: String,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity: Severity::Error,
        code,
        depth,
        subject: subject.map(str::to_string),
        message,
        fix: fix.into(),
        openssl: None,
    }
}

fn warn(
    code: &'static str,
    depth: Option<usize>,
    subject: Option<&str>,
    message: String,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        severity: Severity::Warning,
        ..err(code, depth, subject, message, fix)
    }
}

fn kind_flag(p: Purpose) -> &'static str {
    match p {
        Purpose::Client => "client",
        Purpose::Server => "server",
        Purpose::Any => "client",
    }
}

fn what(depth: usize, info: &CertInfo) -> String {
    let role = if depth == 0 {
        "the leaf".to_string()
    } else if info.self_signed {
        format!("the root at depth {depth}")
    } else {
        format!("the CA at depth {depth}")
    };
    format!("{role} ({})", info.subject)
}

/// Maps OpenSSL's single verdict to a finding with a reason code and a fix.
fn from_openssl(raw: &RawResult, chain: &[Cert], trusted: &[CertInfo], inp: &Input) -> Finding {
    use openssl_sys as s;
    let depth = raw.depth.min(chain.len().saturating_sub(1));
    let c = &chain[depth].info;
    let who = what(depth, c);
    let subj = Some(c.subject.as_str());
    let d = Some(depth);
    let code = raw.code;
    let mut f = if code == s::X509_V_ERR_CERT_HAS_EXPIRED {
        err(
            "expired",
            d,
            subj,
            format!("{who} expired at {}", crate::text::rfc3339(c.not_after)),
            if depth == 0 {
                "issue a new certificate (`mtlsctl renew` or `mtlsctl issue`) and deploy it"
            } else {
                "renew this CA and reissue the certificates below it"
            },
        )
    } else if code == s::X509_V_ERR_CERT_NOT_YET_VALID {
        err(
            "not_yet_valid",
            d,
            subj,
            format!(
                "{who} is not valid before {}",
                crate::text::rfc3339(c.not_before)
            ),
            "check the clock of the machine that verifies (and of the one that issued); wait until notBefore or reissue",
        )
    } else if code == s::X509_V_ERR_INVALID_PURPOSE {
        if depth == 0 {
            eku_finding(c, inp.purpose)
        } else {
            err(
                "ca_eku_mismatch",
                d,
                subj,
                format!(
                    "{who} restricts its extended key usage and does not allow {} authentication",
                    inp.purpose.as_str()
                ),
                "use a CA whose extendedKeyUsage includes the purpose, or none at all",
            )
        }
    } else if code == s::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        || code == s::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        || code == s::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    {
        issuer_finding(chain, trusted)
    } else if code == s::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT {
        err(
            "self_signed_leaf",
            d,
            subj,
            format!("{who} is self-signed and is not one of the trusted CAs"),
            "use a certificate issued by the CA the peer trusts, or add this certificate to --ca if it is meant to be trusted directly",
        )
    } else if code == s::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN {
        err(
            "untrusted_root",
            d,
            subj,
            format!(
                "the chain ends at the root {} which is not among the trusted CAs",
                c.subject
            ),
            "pass that root with --ca if you trust it, or get a certificate from the CA you trust",
        )
    } else if code == s::X509_V_ERR_CERT_SIGNATURE_FAILURE
        || code == s::X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE
        || code == s::X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY
        // 24 is "no issuer public key" since OpenSSL 3.0
        || code == 24
    {
        err(
            "bad_signature",
            d,
            subj,
            format!("the signature on {who} does not verify with its issuer's key"),
            "the certificate was altered or the CA was replaced by one with the same name: get the certificate again from its CA",
        )
    } else if code == s::X509_V_ERR_CERT_REVOKED {
        err(
            "revoked",
            d,
            subj,
            format!("{who} (serial {}) is revoked by its CA's CRL", c.serial),
            if depth == 0 {
                "issue a new certificate for this tenant (`mtlsctl issue`) and deploy it"
            } else {
                "this CA is revoked: move to a new CA and reissue what it signed"
            },
        )
    } else if code == s::X509_V_ERR_UNABLE_TO_GET_CRL {
        err(
            "crl_missing",
            d,
            subj,
            format!(
                "no CRL from the issuer of {who} was given, and CRL checking covers every certificate of the path"
            ),
            "pass the issuer's current CRL with --crl FILE (one per CA in the chain), as a gateway with CRL checking would need",
        )
    } else if code == s::X509_V_ERR_CRL_HAS_EXPIRED {
        err(
            "crl_expired",
            d,
            subj,
            format!(
                "the CRL covering {who} is past its nextUpdate: a gateway that checks CRLs will reject every certificate of this CA"
            ),
            "re-sign the CRL (`mtlsctl crl --env ENV`) and hand the new one to the gateway; schedule it well before nextUpdate",
        )
    } else if code == s::X509_V_ERR_CRL_NOT_YET_VALID {
        err(
            "crl_not_yet_valid",
            d,
            subj,
            format!("the CRL covering {who} has a thisUpdate in the future"),
            "check the clocks of the CA host and of the verifier, then re-sign the CRL",
        )
    } else if code == s::X509_V_ERR_CRL_SIGNATURE_FAILURE
        || code == s::X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE
    {
        err(
            "crl_bad_signature",
            d,
            subj,
            format!("the CRL covering {who} is not signed by its issuer"),
            "fetch the CRL again from the CA that issued the certificate",
        )
    } else if code == s::X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER
        || code == s::X509_V_ERR_KEYUSAGE_NO_CRL_SIGN
        || code == s::X509_V_ERR_DIFFERENT_CRL_SCOPE
        || code == s::X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION
        || code == s::X509_V_ERR_CRL_PATH_VALIDATION_ERROR
        || code == s::X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD
        || code == s::X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD
    {
        err(
            "crl_invalid",
            d,
            subj,
            format!("the CRL covering {who} cannot be used: {}", raw.text),
            "give the CRL the issuing CA itself signed (its key must allow cRLSign)",
        )
    } else if code == s::X509_V_ERR_HOSTNAME_MISMATCH {
        let names = if c.san.dns.is_empty() {
            "it has no DNS name in its subjectAltName (the CN is not used)".to_string()
        } else {
            format!("its DNS names are {}", c.san.dns.join(", "))
        };
        err(
            "hostname_mismatch",
            d,
            subj,
            format!(
                "{who} is not valid for '{}': {names}",
                inp.hostname.as_deref().unwrap_or("")
            ),
            "reissue it with the name clients use (`--dns NAME`, or san.dns in the profile), or connect with a name it holds",
        )
    } else if code == s::X509_V_ERR_IP_ADDRESS_MISMATCH {
        let ips = if c.san.ip.is_empty() {
            "it has no IP address in its subjectAltName".to_string()
        } else {
            format!("its IP addresses are {}", c.san.ip.join(", "))
        };
        err(
            "ip_mismatch",
            d,
            subj,
            format!(
                "{who} is not valid for {}: {ips}",
                inp.ip.map(|i| i.to_string()).unwrap_or_default()
            ),
            "reissue it with that address (`--ip ADDR`), or connect by a name it holds",
        )
    } else if code == s::X509_V_ERR_PATH_LENGTH_EXCEEDED {
        err(
            "path_length_exceeded",
            d,
            subj,
            format!("{who} sits below more CAs than a pathLenConstraint above it allows"),
            "issue from a CA higher up (or directly from the root), or re-create the CA with a larger path_length",
        )
    } else if code == s::X509_V_ERR_CERT_CHAIN_TOO_LONG {
        err(
            "chain_too_long",
            d,
            subj,
            match inp.max_depth {
                Some(n) => format!(
                    "the path has more intermediate CAs than the {n} allowed (--max-depth); a gateway with that verify depth rejects it"
                ),
                None => "the path is longer than the verifier allows".into(),
            },
            "issue from a CA closer to the root, or raise the gateway's verify depth (nginx ssl_verify_depth)",
        )
    } else if code == s::X509_V_ERR_INVALID_CA || code == s::X509_V_ERR_INVALID_NON_CA {
        err(
            "not_a_ca",
            d,
            subj,
            format!(
                "{who} signed another certificate but is not a CA (basicConstraints CA:TRUE is missing)"
            ),
            "the certificate was issued by a leaf: get one issued by the real CA, and give the right intermediates",
        )
    } else if code == s::X509_V_ERR_KEYUSAGE_NO_CERTSIGN {
        err(
            "ca_key_usage",
            d,
            subj,
            format!("{who} signs certificates but its keyUsage lacks keyCertSign"),
            "re-create the CA with keyUsage keyCertSign (and cRLSign)",
        )
    } else if code == s::X509_V_ERR_PERMITTED_VIOLATION || code == s::X509_V_ERR_EXCLUDED_VIOLATION
    {
        err(
            "name_constraints_violation",
            d,
            subj,
            format!(
                "{who} carries a name that a CA above it may not certify ({})",
                raw.text
            ),
            "request a certificate only for names inside the CA's permitted name constraints",
        )
    } else if code == s::X509_V_ERR_SUBTREE_MINMAX
        || code == s::X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE
        || code == s::X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX
        || code == s::X509_V_ERR_UNSUPPORTED_NAME_SYNTAX
    {
        err(
            "name_constraints_invalid",
            d,
            subj,
            format!(
                "name constraints in the path cannot be processed ({})",
                raw.text
            ),
            "the CA's nameConstraints extension is malformed or unsupported: have the CA reissued",
        )
    } else if code == s::X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION {
        err(
            "unknown_critical_extension",
            d,
            subj,
            format!("{who} has a critical extension the verifier does not know"),
            "reissue the certificate without that extension, or mark it non-critical",
        )
    } else if code == s::X509_V_ERR_CA_KEY_TOO_SMALL || code == s::X509_V_ERR_EE_KEY_TOO_SMALL {
        err(
            "weak_ca_key",
            d,
            subj,
            format!("{who} has a key too small to be trusted"),
            "use a CA with an RSA key of 2048 bits or more, or an ECDSA P-256/P-384 key",
        )
    } else if code == s::X509_V_ERR_CA_MD_TOO_WEAK {
        err(
            "weak_algorithm",
            d,
            subj,
            format!("{who} is signed with a digest too weak to be trusted"),
            "reissue it with SHA-256 or better",
        )
    } else if code == s::X509_V_ERR_INVALID_EXTENSION
        || code == s::X509_V_ERR_INVALID_POLICY_EXTENSION
        || code == s::X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD
        || code == s::X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD
        || (80..=100).contains(&code)
    {
        err(
            "nonconforming",
            d,
            subj,
            format!(
                "{who} breaks an RFC 5280 rule that strict verifiers enforce: {}",
                raw.text
            ),
            "have the CA reissue the certificate in a conforming form",
        )
    } else {
        err(
            "rejected",
            d,
            subj,
            format!("{who} was rejected: {}", raw.text),
            "see the OpenSSL reason above; `mtlsctl inspect` shows the certificate's fields",
        )
    };
    f.openssl = Some(format!("error {code} at depth {}: {}", raw.depth, raw.text));
    f
}

fn eku_finding(c: &CertInfo, purpose: Purpose) -> Finding {
    let has = if c.extended_key_usage.is_empty() {
        "no purpose".to_string()
    } else {
        c.extended_key_usage.join(", ")
    };
    let (wanted, peer) = match purpose {
        Purpose::Server => ("serverAuth", "a client connecting to this server"),
        _ => ("clientAuth", "a gateway that asks for a client certificate"),
    };
    let only = if c.extended_key_usage.len() == 1 {
        format!("the leaf allows {has} only")
    } else {
        format!("the leaf allows {has} but not {wanted}")
    };
    err(
        "wrong_eku",
        Some(0),
        Some(&c.subject),
        format!("{only}; {peer} will refuse it"),
        format!(
            "reissue with --kind {} (extendedKeyUsage {wanted})",
            kind_flag(purpose)
        ),
    )
}

/// No issuer found for the top of the path: a wrong CA or a missing intermediate.
fn issuer_finding(chain: &[Cert], trusted: &[CertInfo]) -> Finding {
    let depth = chain.len() - 1;
    let top = &chain[depth].info;
    let who = what(depth, top);
    let same_name = trusted.iter().any(|t| t.subject == top.issuer);
    let can_have_intermediates = trusted.iter().any(|t| t.path_length != Some(0));
    let trusted_names: Vec<&str> = trusted.iter().map(|t| t.subject.as_str()).collect();
    let top_is_trusted = trusted
        .iter()
        .any(|t| t.fingerprints.sha256 == top.fingerprints.sha256);
    if top_is_trusted && !top.self_signed {
        return err(
            "ca_not_root",
            Some(depth),
            Some(&top.subject),
            format!(
                "the trusted CA {} is an intermediate (issued by '{}'); like most gateways, the verifier needs the chain up to a self-signed root",
                top.subject, top.issuer
            ),
            "add the root CA certificate to --ca (keep the intermediate in --ca or --untrusted); give gateways the full CA chain too",
        );
    }
    if same_name {
        err(
            "wrong_ca",
            Some(depth),
            Some(&top.subject),
            format!(
                "{who} names '{}' as issuer, but the trusted CA of that name has a different key (it was re-created or replaced)",
                top.issuer
            ),
            "give the CA certificate that actually signed it, or reissue the certificate from the current CA",
        )
    } else if can_have_intermediates {
        err(
            "missing_intermediate",
            Some(depth),
            Some(&top.subject),
            format!(
                "{who} was issued by '{}', which is neither a trusted CA ({}) nor among the intermediates given",
                top.issuer,
                trusted_names.join("; ")
            ),
            "give the intermediate CA certificate(s) with --untrusted FILE or append them to the certificate file (gateways need the full chain too); if there is no intermediate, the certificate comes from a different CA",
        )
    } else {
        err(
            "wrong_ca",
            Some(depth),
            Some(&top.subject),
            format!(
                "{who} was issued by '{}', not by the trusted CA ({}); this CA signs leaves directly, so no intermediate is missing",
                top.issuer,
                trusted_names.join("; ")
            ),
            "verify against the CA that issued it (another environment's CA?), or get a certificate from this CA",
        )
    }
}

const SHA1_OIDS: &[&str] = &[
    "1.2.840.113549.1.1.5",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
];

/// The checks OpenSSL does not make, plus early warnings.
fn extra_checks(
    inp: &Input,
    at: OffsetDateTime,
    chain: &[Cert],
    trusted: &HashSet<&[u8]>,
    out: &mut Vec<Finding>,
) {
    for (i, c) in chain.iter().enumerate() {
        let info = &c.info;
        let who = what(i, info);
        let subj = Some(info.subject.as_str());
        let is_anchor = trusted.contains(c.der.as_slice());
        // validity, for every certificate (OpenSSL stops at the first error)
        if at > info.not_after {
            out.push(err(
                "expired",
                Some(i),
                subj,
                format!("{who} expired at {}", crate::text::rfc3339(info.not_after)),
                if i == 0 {
                    "issue a new certificate (`mtlsctl renew` or `mtlsctl issue`) and deploy it"
                } else {
                    "renew this CA and reissue the certificates below it"
                },
            ));
        } else if at < info.not_before {
            out.push(err(
                "not_yet_valid",
                Some(i),
                subj,
                format!(
                    "{who} is not valid before {}",
                    crate::text::rfc3339(info.not_before)
                ),
                "check the clocks; wait until notBefore or reissue",
            ));
        } else if info.not_after - at < inp.renew_before {
            out.push(warn(
                "expires_soon",
                Some(i),
                subj,
                format!(
                    "{who} expires at {} ({} days left), within the renewal window",
                    crate::text::rfc3339(info.not_after),
                    crate::text::days_left(info.not_after, at)
                ),
                if i == 0 {
                    "renew it now: `mtlsctl renew`"
                } else {
                    "plan the CA's renewal and the gateway hand-off"
                },
            ));
        }
        if !is_anchor && SHA1_OIDS.contains(&oid_of_sig(c).as_str()) {
            out.push(warn(
                "sha1_signature",
                Some(i),
                subj,
                format!("{who} is signed with SHA-1, which current clients and gateways refuse"),
                "reissue it with SHA-256 or better",
            ));
        }
        key_checks(c, i, &who, out);
        if i > 0 && chain[0].info.not_after > info.not_after {
            out.push(warn(
                "leaf_outlives_ca",
                Some(0),
                Some(chain[0].info.subject.as_str()),
                format!(
                    "the leaf is valid until {} but {who} expires at {}: it stops working then",
                    crate::text::rfc3339(chain[0].info.not_after),
                    crate::text::rfc3339(info.not_after)
                ),
                "renew the CA before then, or issue leaves that end with it (clip_to_ca)",
            ));
        }
        let Some(x) = c.parsed() else {
            continue;
        };
        structure_checks(&x, i, &who, is_anchor, out);
    }
    for der in &inp.crls {
        if let Ok(c) = inspect::crl_info(der)
            && c.crl_number.is_none()
        {
            out.push(err(
                "crl_invalid",
                None,
                None,
                format!(
                    "the CRL issued by {} has no CRL number, which RFC 5280 requires",
                    c.issuer
                ),
                "re-sign the CRL with a cRLNumber extension (`mtlsctl crl` always adds one)",
            ));
        }
    }
    leaf_checks(inp, chain, out);
    name_constraint_checks(chain, out);
}

fn oid_of_sig(c: &Cert) -> String {
    c.parsed()
        .map(|x| x.signature_algorithm.algorithm.to_id_string())
        .unwrap_or_default()
}

fn key_checks(c: &Cert, i: usize, who: &str, out: &mut Vec<Finding>) {
    let Ok(x) = X509::from_der(&c.der) else {
        return;
    };
    let Ok(k) = x.public_key() else {
        return;
    };
    let subj = Some(c.info.subject.as_str());
    let ca = i > 0;
    let weak: Option<String> = match k.id() {
        Id::RSA => {
            let bits = k.bits();
            if bits < 2048 {
                Some(format!("an RSA key of {bits} bits (under 2048)"))
            } else if bits % 8 != 0 {
                Some(format!("an RSA key of {bits} bits (not a multiple of 8)"))
            } else {
                None
            }
        }
        Id::DSA => Some("a DSA key (no longer accepted)".into()),
        Id::EC => {
            let curve = k.ec_key().ok().and_then(|e| e.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1) | Some(Nid::SECP521R1) => None,
                other => Some(format!(
                    "an EC key on curve {}",
                    other
                        .and_then(|n| n.short_name().ok())
                        .unwrap_or("with explicit parameters")
                )),
            }
        }
        _ => None,
    };
    if let Some(w) = weak {
        if ca {
            out.push(err(
                "weak_ca_key",
                Some(i),
                subj,
                format!("{who} has {w}; a CA key like that cannot be trusted"),
                "use a CA with an RSA key of 2048 bits or more (a multiple of 8), or ECDSA P-256/P-384",
            ));
        } else {
            out.push(warn(
                "weak_rsa_key",
                Some(i),
                subj,
                format!("the leaf has {w}; many gateways and clients refuse such keys"),
                "reissue with a stronger key (key: ecdsa-p256 or rsa-2048 and up in the profile)",
            ));
        }
    }
}

fn structure_checks(
    x: &X509Certificate<'_>,
    i: usize,
    who: &str,
    is_anchor: bool,
    out: &mut Vec<Finding>,
) {
    let subject = crate::dn::rfc4514(x.subject());
    let subj = Some(subject.as_str());
    if x.version().0 != 2 && !is_anchor {
        out.push(err(
            "unsupported_version",
            Some(i),
            subj,
            format!(
                "{who} is an X.509 v{} certificate; only v3 may carry the extensions a chain needs",
                x.version().0 + 1
            ),
            "have it reissued as an X.509 v3 certificate",
        ));
    }
    for e in x.extensions() {
        match e.parsed_extension() {
            ParsedExtension::ParseError { .. } => out.push(err(
                "malformed_extension",
                Some(i),
                subj,
                format!("{who} has a malformed extension ({})", e.oid.to_id_string()),
                "have the certificate reissued; its encoding is broken",
            )),
            ParsedExtension::AuthorityInfoAccess(a) if a.accessdescs.is_empty() => {
                out.push(err(
                    "malformed_extension",
                    Some(i),
                    subj,
                    format!("{who} has an authorityInfoAccess extension with no entry"),
                    "have the certificate reissued without the empty extension",
                ))
            }
            ParsedExtension::AuthorityKeyIdentifier(a) if a.key_identifier.is_none() => {
                out.push(err(
                    "aki_without_key_id",
                    Some(i),
                    subj,
                    format!("{who} has an authorityKeyIdentifier without a keyIdentifier"),
                    "have the certificate reissued with keyIdentifier in its authorityKeyIdentifier (RFC 5280 4.2.1.1)",
                ))
            }
            ParsedExtension::SubjectAlternativeName(_)
                if e.critical && !x.subject().as_raw().is_empty() && x.subject().iter().next().is_some() =>
            {
                out.push(err(
                    "san_critical",
                    Some(i),
                    subj,
                    format!("{who} marks subjectAltName critical although its subject is not empty"),
                    "have it reissued with a non-critical subjectAltName (RFC 5280 4.2.1.6)",
                ))
            }
            ParsedExtension::NameConstraints(nc) => {
                if i == 0 && !x.is_ca() {
                    out.push(err(
                        "name_constraints_invalid",
                        Some(i),
                        subj,
                        format!("{who} is not a CA but carries name constraints"),
                        "have it reissued without nameConstraints (only CAs may carry them)",
                    ));
                }
                let empty = nc.permitted_subtrees.as_ref().is_none_or(|v| v.is_empty())
                    && nc.excluded_subtrees.as_ref().is_none_or(|v| v.is_empty());
                if empty {
                    out.push(err(
                        "name_constraints_invalid",
                        Some(i),
                        subj,
                        format!("{who} has a nameConstraints extension with neither permitted nor excluded names"),
                        "have the CA reissued with a meaningful nameConstraints, or without it",
                    ));
                }
                let all = nc
                    .permitted_subtrees
                    .iter()
                    .flatten()
                    .chain(nc.excluded_subtrees.iter().flatten());
                for s in all {
                    if let GeneralName::DNSName(d) = &s.base
                        && (d.starts_with('.') || !dns_constraint_ok(d))
                    {
                        out.push(err(
                            "name_constraints_invalid",
                            Some(i),
                            subj,
                            format!("{who} has a malformed DNS name constraint '{d}'"),
                            "have the CA reissued: DNS constraints are names like example.com, without a leading '.'",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

fn leaf_checks(inp: &Input, chain: &[Cert], out: &mut Vec<Finding>) {
    let leaf = &chain[0];
    let info = &leaf.info;
    let subj = Some(info.subject.as_str());
    let Some(x) = leaf.parsed() else {
        return;
    };
    if inp.purpose != Purpose::Any && x.is_ca() {
        out.push(err(
            "leaf_is_ca",
            Some(0),
            subj,
            "the leaf is a CA certificate (basicConstraints CA:TRUE); a client or server must present an end-entity certificate".into(),
            format!("issue an end-entity certificate from this CA (`mtlsctl issue --kind {}`)", kind_flag(inp.purpose)),
        ));
    }
    // the EKU, checked here too so that it is reported alongside other errors
    if inp.purpose != Purpose::Any
        && let Ok(Some(eku)) = x.extended_key_usage()
    {
        let e = eku.value;
        let ok = e.any
            || match inp.purpose {
                Purpose::Client => e.client_auth,
                Purpose::Server => e.server_auth,
                Purpose::Any => true,
            };
        if !ok {
            out.push(eku_finding(info, inp.purpose));
        }
    } else if inp.purpose != Purpose::Any && !x.is_ca() {
        out.push(warn(
            "no_eku",
            Some(0),
            subj,
            "the leaf has no extendedKeyUsage; some gateways require clientAuth or serverAuth explicitly".into(),
            format!("reissue with --kind {}", kind_flag(inp.purpose)),
        ));
    }
    // SAN syntax
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for g in &san.value.general_names {
            match g {
                GeneralName::DNSName(d) if !dns_san_ok(d) => out.push(err(
                    "invalid_san",
                    Some(0),
                    subj,
                    format!("the leaf's DNS name '{}' is not a valid host name", crate::text::sanitize(d)),
                    "reissue with host names made of letters, digits and '-', with at most a whole '*' as the leftmost label",
                )),
                GeneralName::RFC822Name(m) if !email_ok(m) => out.push(err(
                    "invalid_san",
                    Some(0),
                    subj,
                    format!("the leaf's email name '{}' is not a valid address", crate::text::sanitize(m)),
                    "reissue with a single valid address (local@domain)",
                )),
                GeneralName::IPAddress(b) if b.len() != 4 && b.len() != 16 => out.push(err(
                    "invalid_san",
                    Some(0),
                    subj,
                    format!("the leaf has an IP address SAN of {} bytes", b.len()),
                    "reissue with IPv4 (4 bytes) or IPv6 (16 bytes) addresses",
                )),
                _ => {}
            }
        }
    }
    // CABF BR 7.1.4.3: a CN that names a host must be one of the SANs
    if inp.purpose == Purpose::Server && !x.is_ca() && !info.san.is_empty() {
        for cn in x.subject().iter_common_name() {
            let Ok(cn) = cn.as_str() else { continue };
            let listed =
                info.san.dns.iter().any(|d| d == cn) || info.san.ip.iter().any(|i| i == cn);
            if cn.contains('.') && !listed {
                out.push(warn(
                    "cn_not_in_san",
                    Some(0),
                    subj,
                    format!(
                        "the leaf's common name '{}' looks like a host name but is not one of its subjectAltNames ({})",
                        crate::text::sanitize(cn),
                        info.san.joined()
                    ),
                    "clients that still read the CN may disagree with those that read SANs: reissue with the CN equal to one of the DNS names",
                ));
            }
        }
    }
    let server_like = inp.purpose == Purpose::Server
        || (inp.purpose == Purpose::Any
            && info.extended_key_usage.iter().any(|e| e == "serverAuth"));
    if server_like && info.san.dns.is_empty() && info.san.ip.is_empty() && !x.is_ca() {
        out.push(warn(
            "server_without_san",
            Some(0),
            subj,
            "the server certificate has no DNS or IP subjectAltName; clients ignore the CN and will reject it".into(),
            "reissue with --dns NAME (or san.dns in the profile)",
        ));
    }
}

/// A wildcard SAN may match names that an excluded subtree forbids: refuse it
/// (the defensive reading of RFC 5280 with RFC 9525, as CVE-2025-61727 shows).
fn name_constraint_checks(chain: &[Cert], out: &mut Vec<Finding>) {
    let Some(leaf) = chain[0].parsed() else {
        return;
    };
    let mut wildcards = Vec::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for g in &san.value.general_names {
            if let GeneralName::DNSName(d) = g
                && let Some(rest) = d.strip_prefix("*.")
            {
                wildcards.push(rest.to_ascii_lowercase());
            }
        }
    }
    if wildcards.is_empty() {
        return;
    }
    for (i, c) in chain.iter().enumerate().skip(1) {
        let Some(x) = c.parsed() else { continue };
        let Ok(Some(nc)) = x.name_constraints() else {
            continue;
        };
        for s in nc.value.excluded_subtrees.iter().flatten() {
            let GeneralName::DNSName(base) = &s.base else {
                continue;
            };
            let base = base.trim_start_matches('.').to_ascii_lowercase();
            for w in &wildcards {
                // *.w covers one label under w; an excluded base under w may be matched
                let covers = base
                    .strip_suffix(w.as_str())
                    .and_then(|p| p.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty());
                if covers || base == *w {
                    out.push(err(
                        "name_constraints_violation",
                        Some(0),
                        Some(chain[0].info.subject.as_str()),
                        format!(
                            "the leaf's wildcard '*.{w}' can match '{base}', which {} excludes",
                            what(i, &c.info)
                        ),
                        "reissue the leaf without the wildcard, naming only hosts outside the excluded names",
                    ));
                }
            }
        }
    }
}

fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A DNS SAN: host name labels, optionally a whole '*' as the leftmost label.
pub(crate) fn dns_san_ok(d: &str) -> bool {
    let body = d.strip_prefix("*.").unwrap_or(d);
    !body.is_empty() && body.len() <= 253 && body.split('.').all(label_ok)
}

fn dns_constraint_ok(d: &str) -> bool {
    d.is_empty() || d.split('.').all(label_ok)
}

fn email_ok(m: &str) -> bool {
    let mut parts = m.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => !local.is_empty() && domain.split('.').all(label_ok),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_syntax() {
        assert!(dns_san_ok("api.example.com"));
        assert!(dns_san_ok("*.example.com"));
        assert!(!dns_san_ok("f*.example.com"));
        assert!(!dns_san_ok("under_score.example.com"));
        assert!(!dns_san_ok("a..b"));
        assert!(email_ok("ops@example.com"));
        assert!(!email_ok("invalid@address@example.com"));
        assert!(!dns_constraint_ok("exa mple.com"));
    }

    use crate::cert::{CaRequest, LeafRequest, Sans, Signer, self_signed_ca, sign_leaf};
    use crate::dn::Subject;
    use crate::keys::{KeyAlgorithm, PrivateKey};

    fn pki(kind: super::super::Kind) -> (Vec<u8>, Vec<u8>) {
        let now = OffsetDateTime::now_utc();
        let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let ca = self_signed_ca(
            &CaRequest {
                subject: Subject::parse("CN=Unit CA").unwrap(),
                validity: Duration::days(365),
                path_length: 0,
            },
            &ca_key,
            now,
        )
        .unwrap();
        let signer = Signer::new(&ca.der, &ca_key).unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let leaf = sign_leaf(
            &LeafRequest {
                kind,
                both_ekus: false,
                subject: Subject::parse("CN=unit leaf").unwrap(),
                sans: Sans {
                    dns: vec!["api.example.com".into()],
                    ..Sans::default()
                },
                validity: Duration::days(90),
                clip_to_ca: false,
            },
            &key.to_rcgen().unwrap(),
            false,
            &signer,
            now,
        )
        .unwrap();
        (ca.der, leaf.der)
    }

    fn input(ca: &[u8], leaf: &[u8], purpose: Purpose) -> Input {
        Input {
            leaf: leaf.to_vec(),
            untrusted: Vec::new(),
            trusted: vec![ca.to_vec()],
            crls: Vec::new(),
            purpose,
            hostname: None,
            ip: None,
            at: None,
            renew_before: Duration::days(30),
            max_depth: None,
        }
    }

    #[test]
    fn valid_path_has_two_certificates_and_no_error() {
        let (ca, leaf) = pki(super::super::Kind::Client);
        let o = verify(&input(&ca, &leaf, Purpose::Client)).unwrap();
        assert!(o.valid, "{:?}", o.findings);
        assert_eq!(o.path.len(), 2);
        assert_eq!(o.path[1].role, "root");
        assert!(o.path[1].trusted);
    }

    #[test]
    fn wrong_purpose_and_expiry_are_both_reported() {
        let (ca, leaf) = pki(super::super::Kind::Server);
        let mut i = input(&ca, &leaf, Purpose::Client);
        i.at = Some(OffsetDateTime::now_utc() + Duration::days(100));
        let o = verify(&i).unwrap();
        assert!(!o.valid);
        let codes: Vec<&str> = o.errors().map(|f| f.code).collect();
        assert!(
            codes.contains(&"wrong_eku") && codes.contains(&"expired"),
            "{codes:?}"
        );
        assert!(
            o.findings
                .iter()
                .all(|f| CODES.iter().any(|(c, _)| *c == f.code))
        );
    }

    #[test]
    fn not_after_second_is_still_valid() {
        let (ca, leaf) = pki(super::super::Kind::Client);
        let na = inspect::cert_info(&leaf).unwrap().not_after;
        let mut i = input(&ca, &leaf, Purpose::Client);
        i.at = Some(na);
        assert!(verify(&i).unwrap().valid);
        i.at = Some(na + Duration::seconds(1));
        assert_eq!(verify(&i).unwrap().reason, Some("expired"));
    }

    #[test]
    fn hostname_never_falls_back_to_cn() {
        let (ca, leaf) = pki(super::super::Kind::Server);
        let mut i = input(&ca, &leaf, Purpose::Server);
        i.hostname = Some("unit leaf".into());
        assert_eq!(verify(&i).unwrap().reason, Some("hostname_mismatch"));
        i.hostname = Some("api.example.com".into());
        assert!(verify(&i).unwrap().valid);
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for (c, _) in CODES {
            assert!(seen.insert(*c), "{c} twice");
            assert!(
                c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
        }
    }
}
