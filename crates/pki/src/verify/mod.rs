//! Path validation that explains itself.
//!
//! OpenSSL's verifier does the path building and the RFC 5280 checks (X509_STRICT, the
//! purpose, host or IP, CRLs for the whole chain, a verification time). On top of it
//! this module adds checks OpenSSL skips (web-PKI and RFC 5280 rules: malformed name
//! constraints, invalid SAN syntax, wildcards against excluded subtrees, weak CA keys,
//! v1 leaves, CA:TRUE leaves, ...), one small function per rule, and turns every failure
//! into a [`Finding`]: a stable [`Code`], the certificate it concerns and the data behind
//! it. Wording a finding for a person is the caller's business.

mod algorithms;
mod code;
mod crl;
mod finding;
mod names;
mod openssl;
mod structure;
mod usage;
mod validity;

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;

use super::inspect::{self, CertInfo};
use super::{PkiError, Result};

pub use code::{Code, Severity, rank};
pub use crl::crls_from;
pub use finding::{
    BadConstraints, BadSan, CertRef, Detail, Finding, OpensslVerdict, WeakKey, order,
};
pub(crate) use names::dns_san_ok;

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
    /// Leave out OpenSSL's X509_STRICT rules (a customer CA taken as it is, such as a
    /// root without keyUsage); every other check still applies.
    pub relaxed: bool,
}

/// One certificate of the path as validated.
#[derive(Clone, Debug)]
pub struct PathCert {
    pub depth: usize,
    /// "leaf", "intermediate" or "root".
    pub role: &'static str,
    /// Whether the certificate is one of the trust anchors given.
    pub trusted: bool,
    pub cert: CertInfo,
    pub findings: Vec<Finding>,
    /// The certificate itself (DER), for callers that keep the path.
    pub der: Vec<u8>,
}

/// The verdict.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub valid: bool,
    /// The code of the first error, when invalid.
    pub reason: Option<Code>,
    pub purpose: Purpose,
    pub hostname: Option<String>,
    pub ip: Option<IpAddr>,
    pub at: OffsetDateTime,
    pub crl_checked: bool,
    /// The path from the leaf (depth 0) up, as far as it could be built.
    pub path: Vec<PathCert>,
    /// Every finding, in [`order`].
    pub findings: Vec<Finding>,
}

impl Outcome {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity() == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity() == Severity::Warning)
    }

    /// Adds findings made elsewhere (a profile's expectations, say) and recomputes the
    /// verdict.
    pub fn add(&mut self, extra: Vec<Finding>) {
        for f in extra {
            if let Some(p) = f.depth().and_then(|d| self.path.get_mut(d)) {
                p.findings.push(f.clone());
            }
            self.findings.push(f);
        }
        order(&mut self.findings);
        self.settle();
    }

    /// The verdict from the findings: the first error is the reason.
    fn settle(&mut self) {
        let reason = self.errors().next().map(|f| f.code);
        self.reason = reason;
        self.valid = self.reason.is_none();
    }
}

/// A certificate of the path, parsed once.
struct Cert {
    depth: usize,
    der: Vec<u8>,
    info: CertInfo,
}

impl Cert {
    fn new(depth: usize, der: Vec<u8>) -> Result<Self> {
        let info = inspect::cert_info(&der)?;
        Ok(Cert { depth, der, info })
    }

    fn parsed(&self) -> Option<X509Certificate<'_>> {
        x509_parser::parse_x509_certificate(&self.der)
            .ok()
            .map(|(_, c)| c)
    }

    /// How a finding names this certificate.
    fn r(&self) -> CertRef {
        CertRef {
            depth: self.depth,
            subject: self.info.subject.clone(),
            self_signed: self.info.self_signed,
        }
    }
}

/// What every check sees: the input, the verification time and the path.
struct Checks<'a> {
    inp: &'a Input,
    at: OffsetDateTime,
    chain: &'a [Cert],
    trusted: HashSet<&'a [u8]>,
}

impl Checks<'_> {
    /// Whether `c` is one of the trust anchors given.
    fn is_anchor(&self, c: &Cert) -> bool {
        self.trusted.contains(c.der.as_slice())
    }

    /// The checks OpenSSL does not make, plus early warnings, in reporting order.
    fn run(&self, out: &mut Vec<Finding>) {
        for c in self.chain {
            out.extend(validity::period(self, c));
            out.extend(algorithms::sha1_signature(self, c));
            out.extend(algorithms::weak_key(c));
            out.extend(validity::leaf_outlives(self, c));
            if let Some(x) = c.parsed() {
                out.extend(structure::version(self, c, &x));
                structure::extensions(c, &x, out);
            }
        }
        out.extend(self.inp.crls.iter().filter_map(|d| crl::without_number(d)));
        if let Some(x) = self.chain[0].parsed() {
            out.extend(usage::leaf_is_ca(self, &x));
            out.extend(usage::eku(self, &x));
            names::san_syntax(self, &x, out);
            names::cn_not_in_san(self, &x, out);
            out.extend(names::server_without_san(self, &x));
        }
        names::wildcards_vs_excluded(self, out);
    }
}

/// Validates `inp` and explains the result.
pub fn verify(inp: &Input) -> Result<Outcome> {
    if inp.trusted.is_empty() {
        return Err(PkiError::NoTrustAnchor);
    }
    if inp.hostname.is_some() && inp.ip.is_some() {
        return Err(PkiError::HostnameAndIp);
    }
    // certificates carry whole seconds: compare at that granularity
    let at = super::cert::whole_seconds(inp.at.unwrap_or_else(OffsetDateTime::now_utc));
    let raw = openssl::run(inp, at)?;
    let mut chain = Vec::new();
    for (depth, d) in raw.chain.iter().enumerate() {
        chain.push(Cert::new(depth, d.clone())?);
    }
    if chain.is_empty() {
        chain.push(Cert::new(0, inp.leaf.clone())?);
    }
    let trusted_info: Vec<CertInfo> = inp
        .trusted
        .iter()
        .filter_map(|d| inspect::cert_info(d).ok())
        .collect();
    let checks = Checks {
        inp,
        at,
        chain: &chain,
        trusted: inp.trusted.iter().map(|v| v.as_slice()).collect(),
    };
    let mut findings = Vec::new();
    if !raw.ok {
        findings.push(openssl::finding(&raw, &chain, &trusted_info, inp));
    }
    checks.run(&mut findings);
    order(&mut findings);
    let path = path_of(&checks, &findings);
    let mut outcome = Outcome {
        valid: false,
        reason: None,
        purpose: inp.purpose,
        hostname: inp.hostname.clone(),
        ip: inp.ip,
        at,
        crl_checked: !inp.crls.is_empty(),
        path,
        findings,
    };
    outcome.settle();
    Ok(outcome)
}

/// The path as reported: each certificate with its role and its findings.
fn path_of(k: &Checks, findings: &[Finding]) -> Vec<PathCert> {
    let n = k.chain.len();
    k.chain
        .iter()
        .map(|c| {
            let trusted = k.is_anchor(c);
            let i = c.depth;
            let role = if i == 0 {
                "leaf"
            } else if i + 1 == n && (trusted || c.info.self_signed) {
                "root"
            } else {
                "intermediate"
            };
            PathCert {
                depth: i,
                role,
                trusted,
                cert: c.info.clone(),
                der: c.der.clone(),
                findings: findings
                    .iter()
                    .filter(|f| f.depth() == Some(i))
                    .cloned()
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            relaxed: false,
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
        let codes: Vec<Code> = o.errors().map(|f| f.code).collect();
        assert!(
            codes.contains(&Code::WrongEku) && codes.contains(&Code::Expired),
            "{codes:?}"
        );
        assert!(o.findings.iter().all(|f| Code::ALL.contains(&f.code)));
        let eku = o
            .findings
            .iter()
            .find(|f| f.code == Code::WrongEku)
            .unwrap();
        assert_eq!(
            eku.detail,
            Detail::WrongEku {
                has: vec!["serverAuth".into()],
                purpose: Purpose::Client
            }
        );
        assert!(eku.openssl.is_some());
    }

    #[test]
    fn not_after_second_is_still_valid() {
        let (ca, leaf) = pki(super::super::Kind::Client);
        let na = inspect::cert_info(&leaf).unwrap().not_after;
        let mut i = input(&ca, &leaf, Purpose::Client);
        i.at = Some(na);
        assert!(verify(&i).unwrap().valid);
        i.at = Some(na + Duration::seconds(1));
        assert_eq!(verify(&i).unwrap().reason, Some(Code::Expired));
    }

    #[test]
    fn hostname_never_falls_back_to_cn() {
        let (ca, leaf) = pki(super::super::Kind::Server);
        let mut i = input(&ca, &leaf, Purpose::Server);
        i.hostname = Some("unit leaf".into());
        assert_eq!(verify(&i).unwrap().reason, Some(Code::HostnameMismatch));
        i.hostname = Some("api.example.com".into());
        assert!(verify(&i).unwrap().valid);
    }
}
