//! Checks of what the tool reads back before trusting it: which public key a certificate
//! carries, and whether a certificate or a CRL was signed by a given CA. None of them
//! needs a private key or a passphrase.

use openssl::x509::{X509, X509Crl, X509VerifyResult};

use super::{PkiError, Result, fingerprint};

/// SHA-256 (lowercase hex) of a certificate's DER SubjectPublicKeyInfo: the same for
/// every certificate of one key, whatever else changes.
pub fn spki_sha256(cert_der: &[u8]) -> Result<String> {
    let (_, c) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::Parse(format!("not a certificate: {e}")))?;
    Ok(fingerprint::hex(&fingerprint::sha256(
        c.tbs_certificate.subject_pki.raw,
    )))
}

/// Whether `ca_der` issued `cert_der`: its subject is the certificate's issuer (and its
/// key identifier the certificate's authority key identifier, when both are present),
/// and its public key verifies the certificate's signature.
pub fn issued_by(cert_der: &[u8], ca_der: &[u8]) -> Result<bool> {
    let cert = X509::from_der(cert_der)?;
    let ca = X509::from_der(ca_der)?;
    if ca.issued(&cert) != X509VerifyResult::OK {
        return Ok(false);
    }
    let key = ca.public_key()?;
    Ok(cert.verify(&key)?)
}

/// Whether `ca_der` signed the CRL `crl_der` (issuer name and signature).
pub fn crl_signed_by(crl_der: &[u8], ca_der: &[u8]) -> Result<bool> {
    let crl = X509Crl::from_der(crl_der)?;
    let ca = X509::from_der(ca_der)?;
    let same_issuer = crl
        .issuer_name()
        .try_cmp(ca.subject_name())
        .map(|o| o.is_eq())
        .unwrap_or(false);
    let key = ca.public_key()?;
    Ok(same_issuer && crl.verify(&key)?)
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::cert::test_ca;

    #[test]
    fn a_ca_is_told_from_another_of_the_same_name() {
        let (signer, built) = test_ca("Same");
        let (der, other) = (built.der, test_ca("Same").1.der);
        assert_ne!(spki_sha256(&der).unwrap(), spki_sha256(&other).unwrap());
        assert!(issued_by(&der, &der).unwrap());
        assert!(!issued_by(&der, &other).unwrap());
        let now = OffsetDateTime::now_utc();
        let (pem, _) = crate::crl::sign(&signer, 1, &[], Duration::days(1), now).unwrap();
        let crl = crate::inspect::blocks(pem.as_bytes())
            .unwrap()
            .remove(0)
            .der;
        assert!(crl_signed_by(&crl, &der).unwrap());
        assert!(!crl_signed_by(&crl, &other).unwrap());
        assert!(spki_sha256(b"junk").is_err());
    }
}
