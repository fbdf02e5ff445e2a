//! Read-only parsing (x509-parser) of certificates, chains, CSRs, CRLs and keys into
//! plain structures that reports and checks use.

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::dn::rfc4514;
use super::fingerprint;
use super::serial::to_hex;
use super::{PkiError, Result};

/// One PEM block or one DER blob found in a file.
#[derive(Debug, Clone)]
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
}

/// Splits a file into blocks: every PEM block, or the whole file as one DER block
/// labelled "DER".
pub fn blocks(data: &[u8]) -> Result<Vec<Block>> {
    if looks_like_pem(data) {
        let mut out = Vec::new();
        for (i, p) in x509_parser::pem::Pem::iter_from_buffer(data).enumerate() {
            let p = p.map_err(|e| PkiError::Parse(format!("PEM block {}: {e}", i + 1)))?;
            out.push(Block {
                label: p.label,
                der: p.contents,
            });
        }
        if out.is_empty() {
            return Err(PkiError::Parse("no PEM block found".into()));
        }
        Ok(out)
    } else {
        Ok(vec![Block {
            label: "DER".into(),
            der: data.to_vec(),
        }])
    }
}

pub fn looks_like_pem(data: &[u8]) -> bool {
    data.windows(11).take(4096).any(|w| w == b"-----BEGIN ")
}

/// Every certificate in a PEM or DER file, in file order, as DER.
pub fn certificates(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let bl = blocks(data)?;
    let mut out = Vec::new();
    for b in bl {
        match b.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => out.push(b.der),
            "DER" => {
                x509_parser::parse_x509_certificate(&b.der)
                    .map_err(|e| PkiError::Parse(format!("not a certificate (PEM or DER): {e}")))?;
                out.push(b.der)
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(PkiError::Parse("no certificate in this file".into()));
    }
    Ok(out)
}

/// Subject alternative names as strings.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct SanInfo {
    pub dns: Vec<String>,
    pub ip: Vec<String>,
    pub email: Vec<String>,
    pub uri: Vec<String>,
    pub other: Vec<String>,
}

impl SanInfo {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty()
            && self.ip.is_empty()
            && self.email.is_empty()
            && self.uri.is_empty()
            && self.other.is_empty()
    }
    pub fn joined(&self) -> String {
        let mut v = Vec::new();
        v.extend(self.dns.iter().map(|s| format!("DNS:{s}")));
        v.extend(self.ip.iter().map(|s| format!("IP:{s}")));
        v.extend(self.email.iter().map(|s| format!("email:{s}")));
        v.extend(self.uri.iter().map(|s| format!("URI:{s}")));
        v.extend(self.other.iter().cloned());
        v.join(", ")
    }
}

/// What a certificate says, in the shape reports use.
#[derive(Clone, Debug, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub san: SanInfo,
    pub key_usage: Vec<String>,
    pub extended_key_usage: Vec<String>,
    pub is_ca: bool,
    pub path_length: Option<u32>,
    pub key: KeyInfo,
    pub signature_algorithm: String,
    pub self_signed: bool,
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    /// CRL distribution point, OCSP responder and caIssuers URLs (absent when the
    /// certificate names none).
    #[serde(skip_serializing_if = "crate::pointers::RevocationUrls::is_empty")]
    pub revocation: crate::pointers::RevocationUrls,
    pub fingerprints: Fingerprints,
}

#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    /// ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, ... or the OID when unknown.
    pub algorithm: String,
    pub bits: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Fingerprints {
    pub sha256: String,
    pub sha1: String,
}

/// Parses one DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::Parse(format!("not a certificate: {e}")))?;
    Ok(describe(&c, der))
}

/// The fast path for scans: validity, names and serial only.
pub fn describe(c: &X509Certificate<'_>, der: &[u8]) -> CertInfo {
    let mut san = SanInfo::default();
    let mut key_usage = Vec::new();
    let mut eku = Vec::new();
    let mut path_length = None;
    let mut ski = None;
    let mut aki = None;
    let mut urls = crate::pointers::RevocationUrls::default();
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(s) => {
                for g in &s.general_names {
                    push_general_name(&mut san, g);
                }
            }
            ParsedExtension::KeyUsage(k) => {
                // RFC 5280 names, as openssl and the X.509 rules spell them
                let names = [
                    (k.digital_signature(), "digitalSignature"),
                    (k.non_repudiation(), "nonRepudiation"),
                    (k.key_encipherment(), "keyEncipherment"),
                    (k.data_encipherment(), "dataEncipherment"),
                    (k.key_agreement(), "keyAgreement"),
                    (k.key_cert_sign(), "keyCertSign"),
                    (k.crl_sign(), "cRLSign"),
                    (k.encipher_only(), "encipherOnly"),
                    (k.decipher_only(), "decipherOnly"),
                ];
                key_usage = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(e) => {
                if e.any {
                    eku.push("any".to_string());
                }
                if e.server_auth {
                    eku.push("serverAuth".to_string());
                }
                if e.client_auth {
                    eku.push("clientAuth".to_string());
                }
                if e.code_signing {
                    eku.push("codeSigning".to_string());
                }
                if e.email_protection {
                    eku.push("emailProtection".to_string());
                }
                if e.time_stamping {
                    eku.push("timeStamping".to_string());
                }
                if e.ocsp_signing {
                    eku.push("OCSPSigning".to_string());
                }
                for o in &e.other {
                    eku.push(o.to_id_string());
                }
            }
            ParsedExtension::BasicConstraints(b) => path_length = b.path_len_constraint,
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(fingerprint::colon_hex(k.0)),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a
                    .key_identifier
                    .as_ref()
                    .map(|k| fingerprint::colon_hex(k.0))
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                urls.crl = points.iter().find_map(|p| match &p.distribution_point {
                    Some(x509_parser::extensions::DistributionPointName::FullName(names)) => {
                        names.iter().find_map(|g| match g {
                            GeneralName::URI(u) => Some(u.to_string()),
                            _ => None,
                        })
                    }
                    _ => None,
                });
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for ad in aia.iter() {
                    let GeneralName::URI(u) = &ad.access_location else {
                        continue;
                    };
                    match ad.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" if urls.ocsp.is_none() => {
                            urls.ocsp = Some(u.to_string())
                        }
                        "1.3.6.1.5.5.7.48.2" if urls.issuer.is_none() => {
                            urls.issuer = Some(u.to_string())
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let sha1 = fingerprint::sha1(der).unwrap_or_default();
    CertInfo {
        subject: rfc4514(c.subject()),
        issuer: rfc4514(c.issuer()),
        serial: to_hex(strip_sign(c.raw_serial())),
        not_before: c.validity().not_before.to_datetime(),
        not_after: c.validity().not_after.to_datetime(),
        san,
        key_usage,
        extended_key_usage: eku,
        is_ca: c.is_ca(),
        path_length,
        key: key_info(c.public_key()),
        signature_algorithm: sig_alg_name(&c.signature_algorithm.algorithm.to_id_string()),
        self_signed: c.subject().as_raw() == c.issuer().as_raw(),
        subject_key_id: ski,
        authority_key_id: aki,
        revocation: urls,
        fingerprints: Fingerprints {
            sha256: fingerprint::colon_hex(&fingerprint::sha256(der)),
            sha1: fingerprint::colon_hex(&sha1),
        },
    }
}

/// What a scan needs from a certificate, and nothing more: no fingerprints, names or
/// key details, which cost more than the parse itself.
#[derive(Clone, Debug)]
pub struct Brief {
    pub subject: String,
    pub issuer: String,
    /// Lowercase hex, DER sign byte stripped (as `inspect` and CRL entries print it).
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub is_ca: bool,
}

/// Parses one DER certificate into a [`Brief`].
pub fn brief(der: &[u8]) -> std::result::Result<Brief, String> {
    let (_, c) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let raw = strip_sign(c.raw_serial());
    Ok(Brief {
        subject: rfc4514(c.subject()),
        issuer: rfc4514(c.issuer()),
        serial: to_hex(raw),
        not_after: c.validity().not_after.to_datetime(),
        is_ca: c.is_ca(),
    })
}

fn strip_sign(b: &[u8]) -> &[u8] {
    if b.len() > 1 && b[0] == 0 { &b[1..] } else { b }
}

fn push_general_name(san: &mut SanInfo, g: &GeneralName<'_>) {
    match g {
        GeneralName::DNSName(d) => san.dns.push(d.to_string()),
        GeneralName::RFC822Name(e) => san.email.push(e.to_string()),
        GeneralName::URI(u) => san.uri.push(u.to_string()),
        GeneralName::IPAddress(b) => san.ip.push(ip_string(b)),
        other => san.other.push(format!("{other}")),
    }
}

fn ip_string(b: &[u8]) -> String {
    match b.len() {
        4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => format!("<{} bytes>", b.len()),
    }
}

/// Key algorithm and size from a SubjectPublicKeyInfo.
pub fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
    let oid = spki.algorithm.algorithm.to_id_string();
    let bits = spki.parsed().map(|p| p.key_size()).unwrap_or(0);
    let algorithm = match oid.as_str() {
        "1.2.840.113549.1.1.1" => format!("rsa-{bits}"),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" => "ecdsa-p256".to_string(),
                "1.3.132.0.34" => "ecdsa-p384".to_string(),
                "1.3.132.0.35" => "ecdsa-p521".to_string(),
                other => format!("ec({other})"),
            }
        }
        "1.3.101.112" => "ed25519".to_string(),
        "1.3.101.113" => "ed448".to_string(),
        "1.2.840.10040.4.1" => format!("dsa-{bits}"),
        other => other.to_string(),
    };
    let bits = match algorithm.as_str() {
        "ed25519" => 256,
        "ed448" => 456,
        "ecdsa-p256" => 256,
        "ecdsa-p384" => 384,
        "ecdsa-p521" => 521,
        _ => bits,
    };
    KeyInfo { algorithm, bits }
}

/// Readable names for the signature algorithms one meets.
pub fn sig_alg_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => other,
    }
    .to_string()
}

/// What a CSR says.
#[derive(Clone, Debug, Serialize)]
pub struct CsrInfo {
    pub subject: String,
    pub san: SanInfo,
    pub key: KeyInfo,
    pub signature_algorithm: String,
    pub signature_valid: bool,
    pub requests_ca: bool,
}

pub fn csr_info(der: &[u8]) -> Result<CsrInfo> {
    let (_, r) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| PkiError::Parse(format!("not a certificate request: {e}")))?;
    let mut san = SanInfo::default();
    let mut requests_ca = false;
    if let Some(exts) = r.requested_extensions() {
        for e in exts {
            match e {
                ParsedExtension::SubjectAlternativeName(s) => {
                    for g in &s.general_names {
                        push_general_name(&mut san, g);
                    }
                }
                ParsedExtension::BasicConstraints(b) => requests_ca |= b.ca,
                _ => {}
            }
        }
    }
    let signature_valid = openssl::x509::X509Req::from_der(der)
        .and_then(|req| {
            let k = req.public_key()?;
            req.verify(&k)
        })
        .unwrap_or(false);
    Ok(CsrInfo {
        subject: rfc4514(&r.certification_request_info.subject),
        san,
        key: key_info(&r.certification_request_info.subject_pki),
        signature_algorithm: sig_alg_name(&r.signature_algorithm.algorithm.to_id_string()),
        signature_valid,
        requests_ca,
    })
}

/// What a CRL says.
#[derive(Clone, Debug, Serialize)]
pub struct CrlInfo {
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    pub crl_number: Option<String>,
    pub revoked: Vec<RevokedInfo>,
    pub authority_key_id: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RevokedInfo {
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    pub reason: Option<String>,
}

pub fn crl_info(der: &[u8]) -> Result<CrlInfo> {
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| PkiError::Parse(format!("not a CRL: {e}")))?;
    let mut aki = None;
    for ext in crl.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
            aki = a
                .key_identifier
                .as_ref()
                .map(|k| fingerprint::colon_hex(k.0));
        }
    }
    let revoked = crl
        .iter_revoked_certificates()
        .map(|r| RevokedInfo {
            serial: to_hex(strip_sign(r.raw_serial())),
            revoked_at: r.revocation_date.to_datetime(),
            reason: r.reason_code().map(|(_, rc)| format!("{rc}")),
        })
        .collect();
    Ok(CrlInfo {
        issuer: rfc4514(crl.issuer()),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
        crl_number: crl.crl_number().map(|n| n.to_str_radix(16)),
        revoked,
        authority_key_id: aki,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(certificates(b"hello").is_err());
        assert!(cert_info(&[0x30, 0x03, 0x02, 0x01]).is_err());
        assert!(csr_info(b"").is_err());
        assert!(crl_info(b"\x30").is_err());
    }
}

/// What a private key file says, without its secret.
#[derive(Clone, Debug, Serialize)]
pub struct PrivateKeyInfo {
    /// "pkcs8", "encrypted-pkcs8", "sec1", "pkcs1", "der".
    pub format: String,
    pub encrypted: bool,
    /// How an encrypted PKCS#8 key is encrypted, e.g. "PBES2 PBKDF2-HMAC-SHA-256 600000
    /// iterations AES-256-CBC" (read without the passphrase).
    pub encryption: Option<String>,
    /// Known only when the key could be read (unencrypted or with its passphrase).
    pub algorithm: Option<String>,
    pub bits: Option<u32>,
    /// SHA-256 of the DER public key, to match a key with its certificate.
    pub public_key_sha256: Option<String>,
}

/// What a PKCS#12 file holds, and how it is protected.
#[derive(Clone, Debug, Serialize)]
pub struct PfxInfo {
    /// Whether the contents were read (with the password). Without it, only the
    /// protection below is known, and `has_key` says whether a key bag is visible.
    pub opened: bool,
    pub has_key: Option<bool>,
    pub key_matches_cert: Option<bool>,
    pub friendly_name: Option<String>,
    pub certificate: Option<CertInfo>,
    pub chain: Vec<CertInfo>,
    /// The MAC as the file declares it; None when it has none.
    pub mac: Option<super::pkcs12::structure::MacInfo>,
    /// How each safe or bag is encrypted, as the file declares it.
    pub encryption: Vec<super::pkcs12::structure::BagEncryption>,
}

/// One thing found in a file.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Certificate(Box<CertInfo>),
    Csr(CsrInfo),
    Crl(CrlInfo),
    PrivateKey(PrivateKeyInfo),
    Pfx(Box<PfxInfo>),
}

/// Result of looking at a file that may need a password.
pub enum Inspected {
    Items(Vec<Item>),
    /// A PKCS#12 file described without its password (its protection only): call again
    /// with the password to read the contents.
    PfxLocked(Box<PfxInfo>),
}

fn key_item(format: &str, der_or_pem: &[u8], encrypted: bool) -> Item {
    let parsed = if encrypted {
        None
    } else {
        super::keys::PrivateKey::from_pem_or_der(der_or_pem, None).ok()
    };
    Item::PrivateKey(PrivateKeyInfo {
        format: format.to_string(),
        encrypted,
        encryption: if encrypted {
            super::keys::encryption_of(der_or_pem).map(|s| s.description)
        } else {
            None
        },
        algorithm: parsed
            .as_ref()
            .map(|k| super::keys::describe_public_key(k.pkey())),
        bits: parsed.as_ref().map(|k| k.pkey().bits()),
        public_key_sha256: parsed.as_ref().and_then(|k| {
            k.public_key_der()
                .ok()
                .map(|d| fingerprint::colon_hex(&fingerprint::sha256(&d)))
        }),
    })
}

/// A PFX: its protection, and with the password what it holds.
fn pfx_info(
    data: &[u8],
    protection: super::pkcs12::structure::Protection,
    password: Option<&secrecy::SecretString>,
) -> Result<Inspected> {
    let mut info = PfxInfo {
        opened: false,
        has_key: protection
            .bags
            .iter()
            .any(|b| matches!(b.bag, "shrouded_key" | "key"))
            .then_some(true),
        key_matches_cert: None,
        friendly_name: None,
        certificate: None,
        chain: Vec::new(),
        mac: protection.mac,
        encryption: protection.bags,
    };
    let Some(pw) = password else {
        return Ok(Inspected::PfxLocked(Box::new(info)));
    };
    let o = super::pkcs12::open(data, pw)?;
    info.opened = true;
    info.has_key = Some(o.key.is_some());
    if let Some(c) = &o.cert {
        info.certificate = Some(cert_info(&c.to_der()?)?);
        info.friendly_name = c.alias().map(|a| String::from_utf8_lossy(a).into_owned());
        if let Some(k) = &o.key {
            info.key_matches_cert = Some(c.public_key()?.public_eq(k.pkey()));
        }
    }
    for c in &o.chain {
        info.chain.push(cert_info(&c.to_der()?)?);
    }
    Ok(Inspected::Items(vec![Item::Pfx(Box::new(info))]))
}

/// Describes every item in a file; never returns secret material.
pub fn inspect_bytes(
    data: &[u8],
    pfx_password: Option<&secrecy::SecretString>,
) -> Result<Inspected> {
    let mut items = Vec::new();
    if looks_like_pem(data) {
        for b in blocks(data)? {
            let item = match b.label.as_str() {
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                    Item::Certificate(Box::new(cert_info(&b.der)?))
                }
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Item::Csr(csr_info(&b.der)?),
                "X509 CRL" => Item::Crl(crl_info(&b.der)?),
                "PRIVATE KEY" => {
                    key_item("pkcs8", super::pem("PRIVATE KEY", &b.der).as_bytes(), false)
                }
                "ENCRYPTED PRIVATE KEY" => key_item(
                    "encrypted-pkcs8",
                    super::pem("ENCRYPTED PRIVATE KEY", &b.der).as_bytes(),
                    true,
                ),
                "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                    let enc = data.windows(9).any(|w| w == b"ENCRYPTED");
                    let fmt = if b.label.starts_with("EC") {
                        "sec1"
                    } else {
                        "pkcs1"
                    };
                    key_item(fmt, super::pem(&b.label, &b.der).as_bytes(), enc)
                }
                "PUBLIC KEY" => continue,
                other => {
                    return Err(PkiError::UnknownPemBlock {
                        label: other.to_string(),
                    });
                }
            };
            items.push(item);
        }
        return Ok(Inspected::Items(items));
    }
    if let Ok((_, c)) = x509_parser::parse_x509_certificate(data) {
        return Ok(Inspected::Items(vec![Item::Certificate(Box::new(
            describe(&c, data),
        ))]));
    }
    if let Ok(i) = csr_info(data) {
        return Ok(Inspected::Items(vec![Item::Csr(i)]));
    }
    if let Ok(i) = crl_info(data) {
        return Ok(Inspected::Items(vec![Item::Crl(i)]));
    }
    if let Ok(protection) = super::pkcs12::structure::read(data) {
        return pfx_info(data, protection, pfx_password);
    }
    if openssl::pkcs12::Pkcs12::from_der(data).is_ok() {
        return Err(PkiError::Parse(
            "a PKCS#12 file that is not DER-encoded: mtlsctl cannot read its parameters, so it does not open it (re-export it as DER)".into(),
        ));
    }
    if openssl::pkey::PKey::private_key_from_der(data).is_ok() {
        return Ok(Inspected::Items(vec![key_item("der", data, false)]));
    }
    if super::keys::encryption_of(data).is_some() {
        return Ok(Inspected::Items(vec![key_item(
            "encrypted-pkcs8",
            data,
            true,
        )]));
    }
    Err(PkiError::Parse(
        "not a certificate, chain, CSR, CRL, private key or PKCS#12 file (PEM or DER)".into(),
    ))
}
