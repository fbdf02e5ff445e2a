//! PKCS#10 certificate signing requests: building ours for an external CA, and reading
//! and checking third-party ones before signing.
//!
//! Third-party requests are parsed with OpenSSL (self-signature) and x509-parser
//! (subject, extensions); only the public key, and the SANs where the caller allows, are
//! ever taken from them. Key usage, EKU and basic constraints always come from the
//! profile, never from the request.

use std::net::IpAddr;

use openssl::x509::X509Req;
#[cfg(test)]
use rcgen::PublicKeyData;
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::cert::Sans;
use super::dn::{Subject, rfc4514};
use super::inspect;
use super::keys::{KeyAlgorithm, PrivateKey, algorithm_of, describe_public_key};
use super::{Kind, PkiError, Result};

/// Builds a CSR for `key` with the subject and SANs given, asking for the EKU of `kind`
/// (an external CA may ignore the request; `import` checks what comes back).
pub fn build(subject: &Subject, sans: &Sans, kind: Kind, key: &PrivateKey) -> Result<String> {
    let mut p = CertificateParams::default();
    p.distinguished_name = subject.to_rcgen();
    p.subject_alt_names = san_types(sans)?;
    p.key_usages = if key.algorithm().is_rsa() {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    p.extended_key_usages = vec![match kind {
        Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    let kp = key.to_rcgen()?;
    let csr = p.serialize_request(&kp)?;
    Ok(csr.pem()?)
}

fn san_types(s: &Sans) -> Result<Vec<SanType>> {
    let bad = |v: &str| PkiError::Invalid(format!("SAN '{v}' is not ASCII"));
    let mut out = Vec::new();
    for d in &s.dns {
        out.push(SanType::DnsName(d.as_str().try_into().map_err(|_| bad(d))?));
    }
    for ip in &s.ip {
        out.push(SanType::IpAddress(*ip));
    }
    for e in &s.email {
        out.push(SanType::Rfc822Name(
            e.as_str().try_into().map_err(|_| bad(e))?,
        ));
    }
    for u in &s.uri {
        out.push(SanType::URI(u.as_str().try_into().map_err(|_| bad(u))?));
    }
    Ok(out)
}

/// A third-party request that passed the checks.
#[derive(Clone, Debug)]
pub struct CheckedCsr {
    pub der: Vec<u8>,
    /// The requested subject, RFC 4514.
    pub subject: String,
    /// The requested SANs (taken only when the caller allows).
    pub sans: Sans,
    /// Requested names this tool does not carry over (otherName, directoryName...).
    pub ignored_sans: Vec<String>,
    pub key: KeyAlgorithm,
    /// The request's SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
    /// The request asked for basicConstraints CA:TRUE (never granted).
    pub requests_ca: bool,
    /// Other extensions requested and not copied (key usage, EKU...), by name.
    pub ignored_extensions: Vec<String>,
}

/// Reads the first CSR in a PEM or DER file.
pub fn first_request(data: &[u8]) -> Result<Vec<u8>> {
    for b in inspect::blocks(data)? {
        match b.label.as_str() {
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" | "DER" => return Ok(b.der),
            _ => {}
        }
    }
    Err(PkiError::Parse(
        "no certificate request (PEM 'CERTIFICATE REQUEST' or DER) in this file".into(),
    ))
}

/// Parses a CSR and checks its self-signature and key.
pub fn check(der: &[u8]) -> Result<CheckedCsr> {
    let req = X509Req::from_der(der)
        .map_err(|_| PkiError::Parse("not a PKCS#10 certificate request (PEM or DER)".into()))?;
    let pkey = req
        .public_key()
        .map_err(|_| PkiError::Invalid("the request's public key cannot be read".into()))?;
    let sig_ok = req.verify(&pkey).unwrap_or(false);
    if !sig_ok {
        return Err(PkiError::Invalid(
            "the request's self-signature does not verify: it was altered in transit or made with another key; ask its author for a new CSR".into(),
        ));
    }
    let key = algorithm_of(&pkey).map_err(|_| {
        PkiError::Invalid(format!(
            "the request's key is {}, which the key policy refuses: ask for a CSR with ecdsa-p256, ecdsa-p384, ed25519 or RSA of 2048, 3072 or 4096 bits",
            describe_public_key(&pkey)
        ))
    })?;
    let (_, r) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| PkiError::Parse(format!("certificate request: {e}")))?;
    let info = &r.certification_request_info;
    let mut sans = Sans::default();
    let mut ignored_sans = Vec::new();
    let mut requests_ca = false;
    let mut ignored_extensions = Vec::new();
    if let Some(exts) = r.requested_extensions() {
        for e in exts {
            match e {
                ParsedExtension::SubjectAlternativeName(s) => {
                    for g in &s.general_names {
                        match g {
                            GeneralName::DNSName(d) => {
                                if !super::verify::dns_san_ok(d) {
                                    return Err(PkiError::Invalid(format!(
                                        "the request asks for the DNS name '{}', which is not a valid host name",
                                        crate::text::sanitize(d)
                                    )));
                                }
                                sans.dns.push(d.to_ascii_lowercase())
                            }
                            GeneralName::IPAddress(b) => match ip_from(b) {
                                Some(ip) => sans.ip.push(ip),
                                None => ignored_sans.push(format!("IP of {} bytes", b.len())),
                            },
                            GeneralName::RFC822Name(m) => sans.email.push(m.to_string()),
                            GeneralName::URI(u) => sans.uri.push(u.to_string()),
                            other => ignored_sans.push(format!("{other:?}")),
                        }
                    }
                }
                ParsedExtension::BasicConstraints(b) => requests_ca |= b.ca,
                ParsedExtension::KeyUsage(_) => ignored_extensions.push("keyUsage".into()),
                ParsedExtension::ExtendedKeyUsage(_) => {
                    ignored_extensions.push("extendedKeyUsage".into())
                }
                ParsedExtension::SubjectKeyIdentifier(_) => {}
                _ => ignored_extensions.push("other".into()),
            }
        }
    }
    Ok(CheckedCsr {
        der: der.to_vec(),
        subject: rfc4514(&info.subject),
        sans,
        ignored_sans,
        key,
        spki: pkey.public_key_to_der()?,
        requests_ca,
        ignored_extensions,
    })
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from([b[0], b[1], b[2], b[3]])),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

/// The request's public key as rcgen signs it.
pub fn public_key(c: &CheckedCsr) -> Result<rcgen::SubjectPublicKeyInfo> {
    Ok(rcgen::SubjectPublicKeyInfo::from_der(&c.spki)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_request_checks_out() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let sans = Sans {
            dns: vec!["api.example.com".into()],
            ..Sans::default()
        };
        let pem = build(
            &Subject::parse("CN=acme,O=Example").unwrap(),
            &sans,
            Kind::Server,
            &key,
        )
        .unwrap();
        let der = first_request(pem.as_bytes()).unwrap();
        let c = check(&der).unwrap();
        assert_eq!(c.key, KeyAlgorithm::EcdsaP384);
        assert_eq!(c.sans.dns, vec!["api.example.com".to_string()]);
        assert!(!c.requests_ca);
        assert_eq!(c.spki, key.public_key_der().unwrap());
        // rcgen reads the P-384 key from the SPKI, not from the signature algorithm
        assert_eq!(
            public_key(&c).unwrap().algorithm(),
            &rcgen::PKCS_ECDSA_P384_SHA384
        );
    }

    #[test]
    fn tampered_request_is_refused() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pem = build(
            &Subject::parse("CN=acme").unwrap(),
            &Sans::default(),
            Kind::Client,
            &key,
        )
        .unwrap();
        let mut der = first_request(pem.as_bytes()).unwrap();
        // flip a byte of the subject's CN value
        let pos = der.windows(4).position(|w| w == b"acme").unwrap();
        der[pos] ^= 0x01;
        assert!(matches!(check(&der), Err(PkiError::Invalid(_))));
    }
}
