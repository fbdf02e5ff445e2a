//! Where a relying party finds revocation for a certificate: the CRL Distribution Point
//! (rcgen encodes it) and the Authority Information Access extension with the OCSP
//! responder and the issuer's certificate (encoded by RustCrypto's x509-cert: rcgen has
//! no AIA). Both are non-critical, as RFC 5280 4.2.1.13 and 4.2.2.1 ask.

use der::Encode;
use der::asn1::{Ia5String, ObjectIdentifier};
use rcgen::{CertificateParams, CrlDistributionPoint, CustomExtension};
use serde::Serialize;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};

use super::{PkiError, Result};

/// id-ad-ocsp (RFC 5280 4.2.2.1).
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// id-ad-caIssuers (RFC 5280 4.2.2.1).
const ID_AD_CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
/// id-pe-authorityInfoAccess, 1.3.6.1.5.5.7.1.1.
const AIA_OID: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 1];

/// The revocation pointers a CA writes into what it signs (all expanded, absolute URLs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RevocationUrls {
    /// The CRL Distribution Point: where the signing CA's CRL is fetched (DER).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl: Option<String>,
    /// The OCSP responder that answers for the signing CA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<String>,
    /// Where the signing CA's certificate is fetched (caIssuers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl RevocationUrls {
    pub fn is_empty(&self) -> bool {
        self.crl.is_none() && self.ocsp.is_none() && self.issuer.is_none()
    }

    /// Adds the CRL Distribution Point and the AIA extension to `p`.
    pub(crate) fn apply(&self, p: &mut CertificateParams) -> Result<()> {
        if let Some(u) = &self.crl {
            check_url("CRL distribution point", u)?;
            p.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![u.clone()],
            }];
        }
        if let Some(ext) = self.aia()? {
            p.custom_extensions.push(ext);
        }
        Ok(())
    }

    /// The non-critical Authority Information Access extension, or None without an OCSP
    /// or caIssuers URL.
    fn aia(&self) -> Result<Option<CustomExtension>> {
        let mut ads = Vec::new();
        for (what, method, url) in [
            ("OCSP", ID_AD_OCSP, &self.ocsp),
            ("caIssuers", ID_AD_CA_ISSUERS, &self.issuer),
        ] {
            if let Some(u) = url {
                check_url(what, u)?;
                let ia5 = Ia5String::new(u)
                    .map_err(|e| PkiError::Invalid(format!("{what} URL '{u}': {e}")))?;
                ads.push(AccessDescription {
                    access_method: method,
                    access_location: GeneralName::UniformResourceIdentifier(ia5),
                });
            }
        }
        if ads.is_empty() {
            return Ok(None);
        }
        let der = AuthorityInfoAccessSyntax(ads)
            .to_der()
            .map_err(|e| PkiError::Invalid(format!("authority information access: {e}")))?;
        Ok(Some(CustomExtension::from_oid_content(&AIA_OID, der)))
    }
}

/// A revocation URL must be plain http:// (RFC 5280 4.2.1.13 and RFC 6960 A.1: a
/// relying party cannot check an https server's certificate while it checks revocation),
/// ASCII, without spaces.
pub fn check_url(what: &str, u: &str) -> Result<()> {
    let rest = u.strip_prefix("http://").ok_or_else(|| {
        PkiError::Invalid(format!(
            "{what} URL '{u}' must start with http:// (gateways fetch revocation over plain HTTP; the responses are signed)"
        ))
    })?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    if host.is_empty() || u.contains(|c: char| c.is_whitespace() || !c.is_ascii()) {
        return Err(PkiError::Invalid(format!(
            "{what} URL '{u}' needs a host and only ASCII characters without spaces"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aia_is_encoded_with_both_methods() {
        let u = RevocationUrls {
            crl: None,
            ocsp: Some("http://ocsp.example/".into()),
            issuer: Some("http://pki.example/ca.der".into()),
        };
        let ext = u.aia().unwrap().unwrap();
        let aia = <AuthorityInfoAccessSyntax as der::Decode>::from_der(ext.content()).unwrap();
        assert_eq!(aia.0.len(), 2);
        assert_eq!(aia.0[0].access_method, ID_AD_OCSP);
    }

    #[test]
    fn https_and_spaces_are_refused() {
        assert!(check_url("OCSP", "https://x.example/").is_err());
        assert!(check_url("OCSP", "http:///x").is_err());
        assert!(check_url("OCSP", "http://x.example/a b").is_err());
        assert!(check_url("OCSP", "http://x.example:8080/ocsp").is_ok());
    }
}
