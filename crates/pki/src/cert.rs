//! Building certificates: self-signed CAs and leaves signed by them (rcgen), with every
//! default that rcgen gets wrong for production overridden.

use std::net::IpAddr;

use openssl::x509::X509;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::dn::Subject;
use super::keys::PrivateKey;
use super::serial::random_serial;
use super::{Kind, PkiError, Result};

/// How far back notBefore is set, for peers whose clocks run slow.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// A certificate just built.
#[derive(Clone, Debug)]
pub struct Built {
    pub der: Vec<u8>,
    pub pem: String,
    pub serial: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Things the caller should tell the operator (a clipped validity, say).
    pub warnings: Vec<String>,
}

/// What a root CA should look like.
#[derive(Clone, Debug)]
pub struct CaRequest {
    pub subject: Subject,
    pub validity: Duration,
    /// Maximum number of intermediate CAs below this one (0: it signs leaves only).
    pub path_length: u8,
}

/// Builds a self-signed root: CA:TRUE with a path length, keyCertSign + cRLSign, SKI.
pub fn self_signed_ca(req: &CaRequest, key: &PrivateKey, now: OffsetDateTime) -> Result<Built> {
    self_signed_ca_with_serial(req, key, now, &random_serial()?)
}

/// [`self_signed_ca`] with a serial drawn beforehand ([`random_serial`]), so that a caller
/// can record it before anything is signed.
pub fn self_signed_ca_with_serial(
    req: &CaRequest,
    key: &PrivateKey,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    let now = whole_seconds(now);
    let mut p = CertificateParams::default();
    p.distinguished_name = req.subject.to_rcgen();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(req.path_length));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - CLOCK_SKEW;
    p.not_after = now + req.validity;
    p.serial_number = Some(SerialNumber::from_slice(serial));
    let kp = key.to_rcgen()?;
    let cert = p.self_signed(&kp)?;
    Ok(Built {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        serial: serial.to_vec(),
        not_before: p.not_before,
        not_after: p.not_after,
        warnings: Vec::new(),
    })
}

/// A CA ready to sign: its certificate and its decrypted key.
pub struct Signer {
    pub cert_der: Vec<u8>,
    pub cert: X509,
    pub not_after: OffsetDateTime,
    /// The CA's subject key identifier (CRLs carry it as their AKI).
    pub ski: Vec<u8>,
    /// The revocation pointers (CRL distribution point, OCSP, caIssuers) written into
    /// every certificate this CA signs: where this CA's CRL, responder and certificate
    /// are found. Empty by default.
    pub urls: crate::pointers::RevocationUrls,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

impl Signer {
    /// Pairs a CA certificate with its key, refusing a key that does not belong to it or
    /// a certificate that is not a CA.
    pub fn new(cert_der: &[u8], key: &PrivateKey) -> Result<Self> {
        let cert = X509::from_der(cert_der)?;
        let cert_pub = cert.public_key()?;
        if !cert_pub.public_eq(key.pkey()) {
            return Err(PkiError::Invalid(
                "the CA key does not match the CA certificate: restore the key that belongs to ca.crt".into(),
            ));
        }
        let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| PkiError::Parse(format!("CA certificate: {e}")))?;
        if !parsed.is_ca() {
            return Err(PkiError::Invalid(
                "this certificate is not a CA (basicConstraints CA:FALSE)".into(),
            ));
        }
        let not_after = parsed.validity().not_after.to_datetime();
        let ski = parsed
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .ok_or_else(|| {
                PkiError::Invalid("the CA certificate has no subject key identifier".into())
            })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.to_vec().into(), key.to_rcgen()?)?;
        Ok(Signer {
            cert_der: cert_der.to_vec(),
            cert,
            not_after,
            ski,
            urls: Default::default(),
            issuer,
        })
    }
}

/// Subject alternative names of a leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sans {
    pub dns: Vec<String>,
    pub ip: Vec<IpAddr>,
    pub email: Vec<String>,
    pub uri: Vec<String>,
}

impl Sans {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ip.is_empty() && self.email.is_empty() && self.uri.is_empty()
    }

    fn to_rcgen(&self) -> Result<Vec<SanType>> {
        let bad = |what: &str, v: &str| PkiError::Invalid(format!("{what} SAN '{v}' is not ASCII"));
        let mut out = Vec::new();
        for d in &self.dns {
            validate_dns(d)?;
            out.push(SanType::DnsName(
                d.as_str().try_into().map_err(|_| bad("DNS", d))?,
            ));
        }
        for ip in &self.ip {
            out.push(SanType::IpAddress(*ip));
        }
        for e in &self.email {
            if !e.contains('@') {
                return Err(PkiError::Invalid(format!(
                    "email SAN '{e}' has no '@': give an address such as ops@example.com"
                )));
            }
            out.push(SanType::Rfc822Name(
                e.as_str().try_into().map_err(|_| bad("email", e))?,
            ));
        }
        for u in &self.uri {
            if !u.contains(':') {
                return Err(PkiError::Invalid(format!(
                    "URI SAN '{u}' has no scheme: write it as spiffe://... or https://..."
                )));
            }
            out.push(SanType::URI(
                u.as_str().try_into().map_err(|_| bad("URI", u))?,
            ));
        }
        Ok(out)
    }
}

fn validate_dns(d: &str) -> Result<()> {
    let body = d.strip_prefix("*.").unwrap_or(d);
    let ok = !body.is_empty()
        && body.len() <= 253
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(PkiError::Invalid(format!(
            "'{d}' is not a DNS name: use letters, digits, '-' and dots (a leading '*.' for a wildcard)"
        )))
    }
}

/// What a leaf should look like.
#[derive(Clone, Debug)]
pub struct LeafRequest {
    pub kind: Kind,
    /// Also add the other kind's EKU (only when a profile asks for both).
    pub both_ekus: bool,
    pub subject: Subject,
    pub sans: Sans,
    pub validity: Duration,
    /// Clip notAfter to the CA's notAfter instead of refusing.
    pub clip_to_ca: bool,
}

/// Explicit bounds for a leaf (`issue --not-before/--not-after`): notBefore as given (no
/// clock skew subtracted), notAfter as given; a missing notAfter is notBefore plus the
/// request's validity, a missing notBefore the usual now minus [`CLOCK_SKEW`]. A window
/// wholly in the past or in the future is built as asked: test certificates need both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
}

impl Window {
    pub fn is_set(&self) -> bool {
        self.not_before.is_some() || self.not_after.is_some()
    }
}

/// Signs a leaf for `public_key` with the CA. `rsa` adds keyEncipherment.
pub fn sign_leaf(
    req: &LeafRequest,
    public_key: &impl PublicKeyData,
    rsa: bool,
    signer: &Signer,
    now: OffsetDateTime,
) -> Result<Built> {
    sign_leaf_with_serial(req, public_key, rsa, signer, now, &random_serial()?)
}

/// [`sign_leaf`] with a serial drawn beforehand ([`random_serial`]), so that a caller can
/// record it before anything is signed.
pub fn sign_leaf_with_serial(
    req: &LeafRequest,
    public_key: &impl PublicKeyData,
    rsa: bool,
    signer: &Signer,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    sign_leaf_in_window(
        req,
        &Window::default(),
        public_key,
        rsa,
        signer,
        now,
        serial,
    )
}

/// [`sign_leaf_with_serial`] within explicit bounds ([`Window`]).
pub fn sign_leaf_in_window(
    req: &LeafRequest,
    window: &Window,
    public_key: &impl PublicKeyData,
    rsa: bool,
    signer: &Signer,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    if req.kind == Kind::Server && req.sans.dns.is_empty() && req.sans.ip.is_empty() {
        return Err(PkiError::ServerWithoutSan);
    }
    let now = whole_seconds(now);
    let mut warnings = Vec::new();
    let mut p = CertificateParams::default();
    p.distinguished_name = req.subject.to_rcgen();
    p.subject_alt_names = req.sans.to_rcgen()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = if rsa {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    let eku = |k: Kind| match k {
        Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
    };
    p.extended_key_usages = vec![eku(req.kind)];
    if req.both_ekus {
        let other = if req.kind == Kind::Client {
            Kind::Server
        } else {
            Kind::Client
        };
        p.extended_key_usages.push(eku(other));
    }
    p.use_authority_key_identifier_extension = true;
    p.not_before = window
        .not_before
        .map(whole_seconds)
        .unwrap_or(now - CLOCK_SKEW);
    p.not_after = match (window.not_after, window.not_before) {
        (Some(t), _) => whole_seconds(t),
        (None, Some(nb)) => whole_seconds(nb) + req.validity,
        (None, None) => now + req.validity,
    };
    if p.not_after <= p.not_before {
        return Err(PkiError::Invalid(format!(
            "notAfter ({}) must be after notBefore ({})",
            crate::text::rfc3339(p.not_after),
            crate::text::rfc3339(p.not_before)
        )));
    }
    if p.not_after > signer.not_after {
        if req.clip_to_ca {
            warnings.push(format!(
                "validity clipped to the CA's notAfter ({}); renew the CA before then",
                crate::text::rfc3339(signer.not_after)
            ));
            p.not_after = signer.not_after;
        } else {
            return Err(PkiError::OutlivesCa {
                ca_not_after: signer.not_after,
            });
        }
    }
    let expired = match window.is_set() {
        // an explicit window may lie in the past; the CA must still be valid
        true => signer.not_after <= now,
        false => p.not_after <= now,
    };
    if expired {
        return Err(PkiError::CaExpired {
            not_after: signer.not_after,
        });
    }
    p.serial_number = Some(SerialNumber::from_slice(serial));
    signer.urls.apply(&mut p)?;
    let cert = p.signed_by(public_key, &signer.issuer)?;
    Ok(Built {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        serial: serial.to_vec(),
        not_before: p.not_before,
        not_after: p.not_after,
        warnings,
    })
}

/// A self-signed leaf with `req`'s subject, names and EKU, signed by its own `key`: what
/// an impostor who copied a tenant's subject and SANs would present (`gateway-test`).
/// No CA vouches for it; it is never stored.
pub fn self_signed_leaf(req: &LeafRequest, key: &PrivateKey, now: OffsetDateTime) -> Result<Built> {
    let now = whole_seconds(now);
    let serial = random_serial()?;
    let mut p = CertificateParams::default();
    p.distinguished_name = req.subject.to_rcgen();
    p.subject_alt_names = req.sans.to_rcgen()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = if key.algorithm().is_rsa() {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    p.extended_key_usages = vec![match req.kind {
        Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }];
    p.not_before = now - CLOCK_SKEW;
    p.not_after = now + req.validity;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    let cert = p.self_signed(&key.to_rcgen()?)?;
    Ok(Built {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        serial: serial.to_vec(),
        not_before: p.not_before,
        not_after: p.not_after,
        warnings: Vec::new(),
    })
}

/// Certificates carry whole seconds; so do the times we report for them.
pub fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A fresh P-256 root CA `CN=cn` valid for a year, and its signer: for the tests of the
/// modules that check or use a CA.
#[cfg(test)]
pub(crate) fn test_ca(cn: &str) -> (Signer, Built) {
    let key = PrivateKey::generate(crate::keys::KeyAlgorithm::EcdsaP256).unwrap();
    let req = CaRequest {
        subject: Subject::parse(&format!("CN={cn}")).unwrap(),
        validity: Duration::days(365),
        path_length: 0,
    };
    let built = self_signed_ca(&req, &key, OffsetDateTime::now_utc()).unwrap();
    (Signer::new(&built.der, &key).unwrap(), built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    #[test]
    fn pem_is_what_openssl_writes() {
        let (_, built) = ca();
        let ours = crate::pem("CERTIFICATE", &built.der);
        let theirs = X509::from_der(&built.der).unwrap().to_pem().unwrap();
        assert_eq!(ours.as_bytes(), &theirs[..]);
        assert_eq!(crate::pem("X", &[]), "-----BEGIN X-----\n-----END X-----\n");
    }

    fn ca() -> (Signer, Built) {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CaRequest {
            subject: Subject::parse("CN=Test CA,O=Test").unwrap(),
            validity: Duration::days(365),
            path_length: 0,
        };
        let built = self_signed_ca(&req, &key, OffsetDateTime::now_utc()).unwrap();
        (Signer::new(&built.der, &key).unwrap(), built)
    }

    fn leaf(kind: Kind, days: i64, clip: bool) -> LeafRequest {
        LeafRequest {
            kind,
            both_ekus: false,
            subject: Subject::parse("CN=leaf").unwrap(),
            sans: Sans {
                dns: vec!["api.example.com".into()],
                ..Sans::default()
            },
            validity: Duration::days(days),
            clip_to_ca: clip,
        }
    }

    #[test]
    fn leaf_has_the_rules_of_design_section_5() {
        let (signer, _) = ca();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let b = sign_leaf(
            &leaf(Kind::Client, 30, false),
            &key.to_rcgen().unwrap(),
            false,
            &signer,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&b.der).unwrap();
        assert!(!c.is_ca());
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let ku = c.key_usage().unwrap().unwrap();
        assert!(ku.critical && ku.value.digital_signature() && !ku.value.key_encipherment());
        assert!(b.serial[0] & 0x80 == 0);
    }

    #[test]
    fn leaf_outliving_ca_is_refused_or_clipped() {
        let (signer, ca) = ca();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let kp = key.to_rcgen().unwrap();
        let now = OffsetDateTime::now_utc();
        let e = sign_leaf(&leaf(Kind::Client, 400, false), &kp, false, &signer, now);
        assert!(
            matches!(e, Err(PkiError::OutlivesCa { ca_not_after }) if ca_not_after == ca.not_after)
        );
        let b = sign_leaf(&leaf(Kind::Client, 400, true), &kp, false, &signer, now).unwrap();
        assert_eq!(b.not_after, ca.not_after);
        assert_eq!(b.warnings.len(), 1);
    }

    #[test]
    fn an_expired_ca_signs_nothing() {
        let (signer, ca) = ca();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let kp = key.to_rcgen().unwrap();
        let later = ca.not_after + Duration::days(1);
        let e = sign_leaf(&leaf(Kind::Client, 30, true), &kp, false, &signer, later);
        assert!(matches!(e, Err(PkiError::CaExpired { not_after }) if not_after == ca.not_after));
    }

    #[test]
    fn server_without_san_is_refused() {
        let (signer, _) = ca();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut r = leaf(Kind::Server, 30, false);
        r.sans = Sans::default();
        let e = sign_leaf(
            &r,
            &key.to_rcgen().unwrap(),
            false,
            &signer,
            OffsetDateTime::now_utc(),
        );
        assert!(matches!(e, Err(PkiError::ServerWithoutSan)));
    }

    #[test]
    fn explicit_window_is_kept_to_the_second() {
        let (signer, _) = ca();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let kp = key.to_rcgen().unwrap();
        let now = whole_seconds(OffsetDateTime::now_utc());
        let w = Window {
            not_before: Some(now - Duration::hours(2)),
            not_after: Some(now - Duration::hours(1)),
        };
        let r = leaf(Kind::Client, 30, false);
        let b = sign_leaf_in_window(&r, &w, &kp, false, &signer, now, &random_serial().unwrap())
            .unwrap();
        assert_eq!(
            (b.not_before, b.not_after),
            (now - Duration::hours(2), now - Duration::hours(1))
        );
        let one_second = Window {
            not_before: Some(now + Duration::hours(1)),
            not_after: Some(now + Duration::hours(1) + Duration::seconds(1)),
        };
        let b = sign_leaf_in_window(
            &r,
            &one_second,
            &kp,
            false,
            &signer,
            now,
            &random_serial().unwrap(),
        )
        .unwrap();
        assert_eq!(b.not_after - b.not_before, Duration::seconds(1));
        let backwards = Window {
            not_before: Some(now),
            not_after: Some(now - Duration::seconds(1)),
        };
        let e = sign_leaf_in_window(
            &r,
            &backwards,
            &kp,
            false,
            &signer,
            now,
            &random_serial().unwrap(),
        );
        assert!(matches!(e, Err(PkiError::Invalid(_))));
    }

    #[test]
    fn self_signed_leaf_is_its_own_issuer() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let b = self_signed_leaf(
            &leaf(Kind::Client, 1, false),
            &key,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let (_, c) = x509_parser::parse_x509_certificate(&b.der).unwrap();
        assert_eq!(c.subject(), c.issuer());
        assert!(!c.is_ca());
    }

    #[test]
    fn signer_refuses_foreign_key() {
        let (_, built) = ca();
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert!(Signer::new(&built.der, &other).is_err());
    }
}
