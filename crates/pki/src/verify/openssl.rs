//! OpenSSL's verifier: the store and parameters a strict gateway uses, the run, and its
//! single verdict mapped to a [`Code`]: a table of X509_V_ERR_* numbers, plus the few
//! rules that need the path to choose (the purpose at a CA, a missing issuer).

use std::os::raw::c_int;

use foreign_types::ForeignTypeRef;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509Crl, X509PurposeId, X509StoreContext, X509VerifyResult};
use openssl_sys as s;
use time::{Duration, OffsetDateTime};

use super::finding::{Detail, Finding, OpensslVerdict};
use super::{Cert, Code, Input, Purpose, usage};
use crate::inspect::{self, CertInfo};
use crate::{PkiError, Result};

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

/// "no issuer public key" since OpenSSL 3.0 (openssl-sys has no name for it).
const NO_ISSUER_PUBLIC_KEY: c_int = 24;

/// OpenSSL's verdicts that name one code whatever the path.
#[rustfmt::skip]
const CODES: &[(c_int, Code)] = &[
    (s::X509_V_ERR_CERT_HAS_EXPIRED, Code::Expired),
    (s::X509_V_ERR_CERT_NOT_YET_VALID, Code::NotYetValid),
    (s::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, Code::SelfSignedLeaf),
    (s::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, Code::UntrustedRoot),
    (s::X509_V_ERR_CERT_SIGNATURE_FAILURE, Code::BadSignature),
    (s::X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE, Code::BadSignature),
    (s::X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY, Code::BadSignature),
    (NO_ISSUER_PUBLIC_KEY, Code::BadSignature),
    (s::X509_V_ERR_CERT_REVOKED, Code::Revoked),
    (s::X509_V_ERR_UNABLE_TO_GET_CRL, Code::CrlMissing),
    (s::X509_V_ERR_CRL_HAS_EXPIRED, Code::CrlExpired),
    (s::X509_V_ERR_CRL_NOT_YET_VALID, Code::CrlNotYetValid),
    (s::X509_V_ERR_CRL_SIGNATURE_FAILURE, Code::CrlBadSignature),
    (s::X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE, Code::CrlBadSignature),
    (s::X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER, Code::CrlInvalid),
    (s::X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, Code::CrlInvalid),
    (s::X509_V_ERR_DIFFERENT_CRL_SCOPE, Code::CrlInvalid),
    (s::X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION, Code::CrlInvalid),
    (s::X509_V_ERR_CRL_PATH_VALIDATION_ERROR, Code::CrlInvalid),
    (s::X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, Code::CrlInvalid),
    (s::X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD, Code::CrlInvalid),
    (s::X509_V_ERR_HOSTNAME_MISMATCH, Code::HostnameMismatch),
    (s::X509_V_ERR_IP_ADDRESS_MISMATCH, Code::IpMismatch),
    (s::X509_V_ERR_PATH_LENGTH_EXCEEDED, Code::PathLengthExceeded),
    (s::X509_V_ERR_CERT_CHAIN_TOO_LONG, Code::ChainTooLong),
    (s::X509_V_ERR_INVALID_CA, Code::NotACa),
    (s::X509_V_ERR_INVALID_NON_CA, Code::NotACa),
    (s::X509_V_ERR_KEYUSAGE_NO_CERTSIGN, Code::CaKeyUsage),
    (s::X509_V_ERR_PERMITTED_VIOLATION, Code::NameConstraintsViolation),
    (s::X509_V_ERR_EXCLUDED_VIOLATION, Code::NameConstraintsViolation),
    (s::X509_V_ERR_SUBTREE_MINMAX, Code::NameConstraintsInvalid),
    (s::X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE, Code::NameConstraintsInvalid),
    (s::X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX, Code::NameConstraintsInvalid),
    (s::X509_V_ERR_UNSUPPORTED_NAME_SYNTAX, Code::NameConstraintsInvalid),
    (s::X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, Code::UnknownCriticalExtension),
    (s::X509_V_ERR_CA_KEY_TOO_SMALL, Code::WeakCaKey),
    (s::X509_V_ERR_EE_KEY_TOO_SMALL, Code::WeakCaKey),
    (s::X509_V_ERR_CA_MD_TOO_WEAK, Code::WeakAlgorithm),
    (s::X509_V_ERR_INVALID_EXTENSION, Code::Nonconforming),
    (s::X509_V_ERR_INVALID_POLICY_EXTENSION, Code::Nonconforming),
    (s::X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, Code::Nonconforming),
    (s::X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD, Code::Nonconforming),
];

/// OpenSSL 3's X509_STRICT checks (missing SKI/AKI, explicit EC parameters, non-critical
/// CA basicConstraints...): 80 to 100, names that openssl-sys does not all have.
const STRICT_RULES: std::ops::RangeInclusive<c_int> = 80..=100;

/// The verdicts that mean "no issuer found for the top of the path".
const NO_ISSUER: &[c_int] = &[
    s::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    s::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
    s::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
];

/// The code for an OpenSSL verdict that needs no context.
pub(super) fn code_of(err: c_int) -> Option<Code> {
    CODES
        .iter()
        .find(|(e, _)| *e == err)
        .map(|(_, c)| *c)
        .or_else(|| STRICT_RULES.contains(&err).then_some(Code::Nonconforming))
}

/// What OpenSSL said about a path.
pub(super) struct RawResult {
    pub ok: bool,
    pub code: c_int,
    pub text: &'static str,
    pub depth: usize,
    pub chain: Vec<Vec<u8>>,
}

/// Runs OpenSSL at `at`; when it calls a certificate expired in the very second of its
/// notAfter, looks again one second earlier: RFC 5280 4.1.2.5 counts that second as
/// valid, OpenSSL does not.
pub(super) fn run(inp: &Input, at: OffsetDateTime) -> Result<RawResult> {
    let raw = run_once(inp, at)?;
    if raw.ok || raw.code != s::X509_V_ERR_CERT_HAS_EXPIRED {
        return Ok(raw);
    }
    let infos = |r: &RawResult| -> Vec<CertInfo> {
        r.chain
            .iter()
            .filter_map(|d| inspect::cert_info(d).ok())
            .collect()
    };
    let at_edge = raw
        .chain
        .get(raw.depth)
        .and_then(|d| inspect::cert_info(d).ok())
        .is_some_and(|i| i.not_after == at);
    if !at_edge {
        return Ok(raw);
    }
    let again = run_once(inp, at - Duration::seconds(1))?;
    let any_starts_now = infos(&again).iter().any(|i| i.not_before == at);
    Ok(if any_starts_now { raw } else { again })
}

fn run_once(inp: &Input, at: OffsetDateTime) -> Result<RawResult> {
    let store = store(inp, at)?;
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

/// The trust anchors and CRLs of `inp`, with the verification parameters.
fn store(inp: &Input, at: OffsetDateTime) -> Result<X509Store> {
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
    let p = params(inp, at, !crls.is_empty())?;
    b.set_param(&p)?;
    Ok(b.build())
}

/// What a strict gateway asks of a path: X509_STRICT, the purpose, the name (never the
/// CN, no partial wildcards), every CRL of the path when any is given, the time, the depth.
fn params(inp: &Input, at: OffsetDateTime, crl_check: bool) -> Result<X509VerifyParam> {
    let mut flags = if inp.relaxed {
        X509VerifyFlags::empty()
    } else {
        X509VerifyFlags::X509_STRICT
    };
    if crl_check {
        flags |= X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL;
    }
    let mut p = X509VerifyParam::new()?;
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
    Ok(p)
}

/// OpenSSL's single verdict as a finding on the certificate it concerns.
pub(super) fn finding(
    raw: &RawResult,
    chain: &[Cert],
    trusted: &[CertInfo],
    inp: &Input,
) -> Finding {
    let depth = raw.depth.min(chain.len().saturating_sub(1));
    let c = &chain[depth];
    let mut f = if raw.code == s::X509_V_ERR_INVALID_PURPOSE {
        purpose_finding(c, inp.purpose)
    } else if NO_ISSUER.contains(&raw.code) {
        issuer_finding(chain, trusted)
    } else {
        let code = code_of(raw.code).unwrap_or(Code::Rejected);
        Finding::new(code, Some(c.r()), detail_of(code, &c.info, inp))
    };
    f.openssl = Some(OpensslVerdict {
        code: raw.code,
        depth: raw.depth,
        text: raw.text.to_string(),
    });
    f
}

/// The data a table-mapped code carries.
fn detail_of(code: Code, c: &CertInfo, inp: &Input) -> Detail {
    match code {
        Code::Expired => Detail::Expired {
            not_after: c.not_after,
        },
        Code::NotYetValid => Detail::NotYetValid {
            not_before: c.not_before,
        },
        Code::Revoked => Detail::Revoked {
            serial: c.serial.clone(),
        },
        Code::HostnameMismatch => Detail::HostnameMismatch {
            hostname: inp.hostname.clone().unwrap_or_default(),
            dns: c.san.dns.clone(),
        },
        Code::IpMismatch => Detail::IpMismatch {
            ip: inp.ip,
            ips: c.san.ip.clone(),
        },
        Code::ChainTooLong => Detail::ChainTooLong {
            max_depth: inp.max_depth,
        },
        Code::WeakCaKey => Detail::WeakKey(None),
        _ => Detail::None,
    }
}

/// An unsuitable purpose: the leaf's EKU, or a CA's that excludes it.
fn purpose_finding(c: &Cert, purpose: Purpose) -> Finding {
    if c.depth == 0 {
        usage::wrong_eku(c, purpose)
    } else {
        Finding::new(Code::CaEkuMismatch, Some(c.r()), Detail::Purpose(purpose))
    }
}

/// No issuer found for the top of the path: the trusted CA is an intermediate, a CA of
/// the same name was re-created, an intermediate is missing, or another CA issued it.
fn issuer_finding(chain: &[Cert], trusted: &[CertInfo]) -> Finding {
    let top = &chain[chain.len() - 1];
    let info = &top.info;
    let trusted_names = || trusted.iter().map(|t| t.subject.clone()).collect();
    let top_is_trusted = trusted
        .iter()
        .any(|t| t.fingerprints.sha256 == info.fingerprints.sha256);
    let same_name = trusted.iter().any(|t| t.subject == info.issuer);
    let (code, detail) = if top_is_trusted && !info.self_signed {
        let issuer = info.issuer.clone();
        (Code::CaNotRoot, Detail::CaNotRoot { issuer })
    } else if !same_name && trusted.iter().any(|t| t.path_length != Some(0)) {
        let detail = Detail::MissingIntermediate {
            issuer: info.issuer.clone(),
            trusted: trusted_names(),
        };
        (Code::MissingIntermediate, detail)
    } else {
        let detail = Detail::WrongCa {
            issuer: info.issuer.clone(),
            trusted: trusted_names(),
            same_name,
        };
        (Code::WrongCa, detail)
    };
    Finding::new(code, Some(top.r()), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_verdict_once() {
        let mut seen = std::collections::HashSet::new();
        for (e, _) in CODES {
            assert!(seen.insert(*e), "X509_V_ERR {e} twice");
            assert!(!NO_ISSUER.contains(e) && *e != s::X509_V_ERR_INVALID_PURPOSE);
        }
    }

    #[test]
    fn verdicts_map_to_codes() {
        assert_eq!(code_of(s::X509_V_ERR_CERT_HAS_EXPIRED), Some(Code::Expired));
        assert_eq!(code_of(NO_ISSUER_PUBLIC_KEY), Some(Code::BadSignature));
        assert_eq!(code_of(86), Some(Code::Nonconforming));
        // 55 is "path loop": no code names it
        assert_eq!(code_of(55), None);
    }
}
