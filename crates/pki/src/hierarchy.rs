//! CA hierarchies: issuing CAs signed by a root, constrained to what they issue (an
//! issuing CA cross-certified by an old root during a rotation is the same certificate
//! signed by that root), and a root re-issued with room for issuing CAs below it.
//! The name constraints extension is encoded by RustCrypto's x509-cert (rcgen has no URI
//! subtree); everything else is rcgen's.

use der::Encode;
use der::asn1::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::name::GeneralName;

use super::cert::{Built, CLOCK_SKEW, Signer, whole_seconds};
use super::dn::Subject;
use super::keys::PrivateKey;
use super::{Kind, PkiError, Result};

/// Names an issuing CA may (permitted) or may not (excluded) vouch for, by type. An
/// entry is an RFC 5280 subtree: `example.com` or `.example.com` for DNS (the domain and
/// its subdomains), `example.com` / `.example.com` / `ops@example.com` for email, and a
/// host (`example.com` or `.example.com`) for URI.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameSubtrees {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uri: Vec<String>,
}

impl NameSubtrees {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.email.is_empty() && self.uri.is_empty()
    }

    fn to_subtrees(&self) -> Result<Vec<GeneralSubtree>> {
        let ia5 = |what: &str, v: &str| {
            if v.is_empty() || v.contains(|c: char| c.is_whitespace() || !c.is_ascii()) {
                return Err(PkiError::Invalid(format!(
                    "name constraint {what} '{v}' must be a non-empty ASCII name without spaces"
                )));
            }
            Ia5String::new(v)
                .map_err(|e| PkiError::Invalid(format!("name constraint {what} '{v}': {e}")))
        };
        let sub = |base| GeneralSubtree {
            base,
            minimum: 0,
            maximum: None,
        };
        let mut out = Vec::new();
        for d in &self.dns {
            out.push(sub(GeneralName::DnsName(ia5("dns", d)?)));
        }
        for e in &self.email {
            out.push(sub(GeneralName::Rfc822Name(ia5("email", e)?)));
        }
        for u in &self.uri {
            if u.contains("://") || u.contains('/') {
                return Err(PkiError::Invalid(format!(
                    "name constraint uri '{u}' must be a host such as example.com or .example.com (RFC 5280 4.2.1.10), not a URL"
                )));
            }
            out.push(sub(GeneralName::UniformResourceIdentifier(ia5("uri", u)?)));
        }
        Ok(out)
    }
}

/// The name constraints of an issuing CA.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameConstraintSpec {
    #[serde(default, skip_serializing_if = "NameSubtrees::is_empty")]
    pub permitted: NameSubtrees,
    #[serde(default, skip_serializing_if = "NameSubtrees::is_empty")]
    pub excluded: NameSubtrees,
}

impl NameConstraintSpec {
    pub fn is_empty(&self) -> bool {
        self.permitted.is_empty() && self.excluded.is_empty()
    }

    /// The critical nameConstraints extension (RFC 5280 4.2.1.10), or None when empty.
    pub fn extension(&self) -> Result<Option<CustomExtension>> {
        if self.is_empty() {
            return Ok(None);
        }
        let opt = |v: Vec<GeneralSubtree>| (!v.is_empty()).then_some(v);
        let nc = NameConstraints {
            permitted_subtrees: opt(self.permitted.to_subtrees()?),
            excluded_subtrees: opt(self.excluded.to_subtrees()?),
        };
        let der = nc
            .to_der()
            .map_err(|e| PkiError::Invalid(format!("name constraints: {e}")))?;
        // id-ce-nameConstraints, 2.5.29.30
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], der);
        ext.set_criticality(true);
        Ok(Some(ext))
    }
}

/// What an issuing (intermediate) CA should look like.
#[derive(Clone, Debug)]
pub struct SubCaRequest {
    pub subject: Subject,
    pub validity: Duration,
    /// Maximum number of CAs below this one (0: it signs leaves only).
    pub path_length: u8,
    /// The extendedKeyUsage it carries, limiting what it vouches for along the chain
    /// (None: no EKU, it may vouch for anything its issuer allows).
    pub eku: Option<Kind>,
    pub name_constraints: NameConstraintSpec,
}

fn eku_of(k: Kind) -> ExtendedKeyUsagePurpose {
    match k {
        Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
    }
}

/// notAfter for a CA certificate the signer issues: `wanted`, clipped (with a warning)
/// to the signer's own notAfter, which a CA below it cannot outlive usefully.
fn clip(wanted: OffsetDateTime, signer: &Signer, warnings: &mut Vec<String>) -> OffsetDateTime {
    if wanted > signer.not_after {
        warnings.push(format!(
            "validity clipped to the issuing CA's notAfter ({})",
            crate::text::rfc3339(signer.not_after)
        ));
        signer.not_after
    } else {
        wanted
    }
}

/// Signs an issuing CA for `public_key` with `signer` (a root): CA:TRUE with the path
/// length, keyCertSign + cRLSign, SKI and AKI, the EKU and name constraints asked for.
/// Its notAfter is clipped to the root's.
pub fn sign_sub_ca_with_serial(
    req: &SubCaRequest,
    public_key: &impl PublicKeyData,
    signer: &Signer,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    let now = whole_seconds(now);
    if signer.not_after <= now {
        return Err(PkiError::CaExpired {
            not_after: signer.not_after,
        });
    }
    let mut warnings = Vec::new();
    let mut p = CertificateParams::default();
    p.distinguished_name = req.subject.to_rcgen();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(req.path_length));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.extended_key_usages = req.eku.map(eku_of).into_iter().collect();
    if let Some(ext) = req.name_constraints.extension()? {
        p.custom_extensions.push(ext);
    }
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - CLOCK_SKEW;
    p.not_after = clip(now + req.validity, signer, &mut warnings);
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

/// A root re-issued with the same subject and key and a larger path length: what lets
/// a one-tier root (path length 0) certify an issuing CA, while every certificate it
/// signed still verifies (same name, same key). Valid until the old root's notAfter.
/// Refuses when `subject` does not encode as the old root's subject.
pub fn reissue_root_with_serial(
    old_der: &[u8],
    subject: &Subject,
    key: &PrivateKey,
    path_length: u8,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    let now = whole_seconds(now);
    let old = openssl::x509::X509::from_der(old_der)?;
    let not_after = crate::inspect::cert_info(old_der)?.not_after;
    if not_after <= now {
        return Err(PkiError::CaExpired { not_after });
    }
    let mut p = CertificateParams::default();
    p.distinguished_name = subject.to_rcgen();
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_length));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = now - CLOCK_SKEW;
    p.not_after = not_after;
    p.serial_number = Some(SerialNumber::from_slice(serial));
    let cert = p.self_signed(&key.to_rcgen()?)?;
    let new = openssl::x509::X509::from_der(cert.der())?;
    let same_name = new.subject_name().to_der()? == old.subject_name().to_der()?;
    let old_key = old.public_key()?;
    let same_key = new.public_key()?.public_eq(&old_key);
    if !same_name || !same_key {
        return Err(PkiError::Invalid(
            "the re-issued root would not carry the old root's exact name and key, so the certificates it signed would no longer chain to it".into(),
        ));
    }
    Ok(Built {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        serial: serial.to_vec(),
        not_before: p.not_before,
        not_after: p.not_after,
        warnings: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{CaRequest, self_signed_ca};
    use crate::keys::KeyAlgorithm;

    fn root(cn: &str) -> (Signer, Built, PrivateKey) {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CaRequest {
            subject: Subject::parse(&format!("CN={cn}")).unwrap(),
            validity: Duration::days(3650),
            path_length: 1,
        };
        let built = self_signed_ca(&req, &key, OffsetDateTime::now_utc()).unwrap();
        (Signer::new(&built.der, &key).unwrap(), built, key)
    }

    #[test]
    fn issuing_ca_carries_eku_path_length_and_name_constraints() {
        let (root, _, _) = root("Root");
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = SubCaRequest {
            subject: Subject::parse("CN=Issuing").unwrap(),
            validity: Duration::days(365 * 30),
            path_length: 0,
            eku: Some(Kind::Client),
            name_constraints: NameConstraintSpec {
                permitted: NameSubtrees {
                    dns: vec![".example.com".into()],
                    uri: vec![".example.com".into()],
                    ..NameSubtrees::default()
                },
                excluded: NameSubtrees {
                    email: vec!["evil.example.com".into()],
                    ..NameSubtrees::default()
                },
            },
        };
        let b = sign_sub_ca_with_serial(
            &req,
            &key.to_rcgen().unwrap(),
            &root,
            OffsetDateTime::now_utc(),
            &[1; 16],
        )
        .unwrap();
        // 30 years asked, the root lives 10: clipped
        assert_eq!(b.not_after, root.not_after);
        assert_eq!(b.warnings.len(), 1);
        let (_, c) = x509_parser::parse_x509_certificate(&b.der).unwrap();
        assert!(c.is_ca());
        let bc = c.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.path_len_constraint, Some(0));
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        let nc = c.name_constraints().unwrap().unwrap();
        assert!(nc.critical);
        assert_eq!(nc.value.permitted_subtrees.as_ref().unwrap().len(), 2);
        assert_eq!(nc.value.excluded_subtrees.as_ref().unwrap().len(), 1);
        assert_eq!(c.issuer().to_string(), "CN=Root");
    }

    #[test]
    fn a_url_is_not_a_uri_constraint() {
        let spec = NameConstraintSpec {
            permitted: NameSubtrees {
                uri: vec!["https://example.com/x".into()],
                ..NameSubtrees::default()
            },
            ..NameConstraintSpec::default()
        };
        assert!(spec.extension().is_err());
        assert!(NameConstraintSpec::default().extension().unwrap().is_none());
    }

    #[test]
    fn a_reissued_root_keeps_name_and_key_and_still_verifies_its_leaves() {
        let (old, built, key) = root("Root");
        let leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = SubCaRequest {
            subject: Subject::parse("CN=Issuing").unwrap(),
            validity: Duration::days(30),
            path_length: 0,
            eku: None,
            name_constraints: NameConstraintSpec::default(),
        };
        let signed = sign_sub_ca_with_serial(
            &req,
            &leaf_key.to_rcgen().unwrap(),
            &old,
            OffsetDateTime::now_utc(),
            &[3; 16],
        )
        .unwrap();
        let re = reissue_root_with_serial(
            &built.der,
            &Subject::parse("CN=Root").unwrap(),
            &key,
            2,
            OffsetDateTime::now_utc(),
            &[4; 16],
        )
        .unwrap();
        assert!(crate::integrity::issued_by(&signed.der, &re.der).unwrap());
        assert_eq!(re.not_after, built.not_after);
        let (_, c) = x509_parser::parse_x509_certificate(&re.der).unwrap();
        assert_eq!(
            c.basic_constraints()
                .unwrap()
                .unwrap()
                .value
                .path_len_constraint,
            Some(2)
        );
        let other = reissue_root_with_serial(
            &built.der,
            &Subject::parse("CN=Root 2").unwrap(),
            &key,
            2,
            OffsetDateTime::now_utc(),
            &[5; 16],
        );
        assert!(other.is_err());
    }
}
