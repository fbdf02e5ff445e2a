//! `verify -o json` (docs/verify.md): the outcome with each finding worded.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use super::explain::{explain, openssl_line};
use crate::pki::inspect::CertInfo;
use crate::pki::verify::{Code, Finding, Outcome, PathCert, Purpose, Severity};

/// A finding as JSON shows it.
#[derive(Serialize)]
pub struct FindingJson<'a> {
    severity: Severity,
    code: Code,
    depth: Option<usize>,
    subject: Option<&'a str>,
    message: String,
    fix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    openssl: Option<String>,
}

impl<'a> FindingJson<'a> {
    pub fn of(f: &'a Finding) -> Self {
        let e = explain(f);
        FindingJson {
            severity: f.severity(),
            code: f.code,
            depth: f.depth(),
            subject: f.subject(),
            message: e.message,
            fix: e.fix,
            openssl: openssl_line(f),
        }
    }
}

fn findings(v: &[Finding]) -> Vec<FindingJson<'_>> {
    v.iter().map(FindingJson::of).collect()
}

/// A certificate of the path: where it sits, then its description.
#[derive(Serialize)]
struct PathJson<'a> {
    depth: usize,
    role: &'static str,
    trusted: bool,
    #[serde(flatten)]
    cert: &'a CertInfo,
    findings: Vec<FindingJson<'a>>,
}

impl<'a> PathJson<'a> {
    fn of(p: &'a PathCert) -> Self {
        PathJson {
            depth: p.depth,
            role: p.role,
            trusted: p.trusted,
            cert: &p.cert,
            findings: findings(&p.findings),
        }
    }
}

/// The outcome's fields, as both file and tenant mode print them.
#[derive(Serialize)]
pub struct OutcomeJson<'a> {
    valid: bool,
    reason: Option<Code>,
    purpose: Purpose,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    crl_checked: bool,
    path: Vec<PathJson<'a>>,
    findings: Vec<FindingJson<'a>>,
}

impl<'a> OutcomeJson<'a> {
    pub fn of(o: &'a Outcome) -> Self {
        OutcomeJson {
            valid: o.valid,
            reason: o.reason,
            purpose: o.purpose,
            hostname: o.hostname.as_deref(),
            ip: o.ip,
            at: o.at,
            crl_checked: o.crl_checked,
            path: o.path.iter().map(PathJson::of).collect(),
            findings: findings(&o.findings),
        }
    }
}
