//! Certificate revocation lists (v2, numbered, with AKI and reason codes), signed by rcgen.

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::cert::{Signer, whole_seconds};
use super::{PkiError, Result};

/// Revocation reasons (RFC 5280 section 5.3.1) as the command line spells them.
pub const REASONS: &[(&str, RevocationReason)] = &[
    ("unspecified", RevocationReason::Unspecified),
    ("key-compromise", RevocationReason::KeyCompromise),
    ("ca-compromise", RevocationReason::CaCompromise),
    ("affiliation-changed", RevocationReason::AffiliationChanged),
    ("superseded", RevocationReason::Superseded),
    (
        "cessation-of-operation",
        RevocationReason::CessationOfOperation,
    ),
];

pub fn parse_reason(s: &str) -> Result<RevocationReason> {
    REASONS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            let names: Vec<_> = REASONS.iter().map(|(n, _)| *n).collect();
            PkiError::Invalid(format!(
                "unknown revocation reason '{s}': use one of {}",
                names.join(", ")
            ))
        })
}

/// One entry of a CRL.
pub struct Entry<'a> {
    pub serial_hex: &'a str,
    pub revoked_at: OffsetDateTime,
    pub reason: &'a str,
}

/// Signs a CRL numbered `number`, valid from now for `validity`.
pub fn sign(
    signer: &Signer,
    number: u64,
    entries: &[Entry<'_>],
    validity: Duration,
    now: OffsetDateTime,
) -> Result<(String, OffsetDateTime)> {
    let now = whole_seconds(now);
    let mut revoked = Vec::new();
    for e in entries {
        let serial = super::serial::parse_hex(e.serial_hex)?;
        let reason = parse_reason(e.reason)?;
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: whole_seconds(e.revoked_at),
            // RFC 5280 5.3.1: the unspecified code SHOULD be absent
            reason_code: (reason != RevocationReason::Unspecified).then_some(reason),
            invalidity_date: None,
        });
    }
    let next_update = now + validity;
    let params = CertificateRevocationListParams {
        this_update: now - super::cert::CLOCK_SKEW,
        next_update,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::PreSpecified(signer.ski.clone()),
    };
    let crl = params.signed_by(&signer.issuer)?;
    Ok((crl.pem()?, next_update))
}
