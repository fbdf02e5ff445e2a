//! PKCS#12 (PFX) bundles in the two compatibility modes DESIGN.md section 5 names, each
//! opened again and checked before it is handed back.

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::stack::Stack;
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};

use super::keys::PrivateKey;
use super::{PkiError, Result};

/// Which readers a PFX must open in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PfxCompat {
    /// AES-256-CBC / PBKDF2 with an HMAC-SHA-256 MAC (OpenSSL 3 default).
    #[default]
    Modern,
    /// PBE-SHA1-3DES for key and certificates with a SHA-1 MAC: Windows Server 2016 / IIS,
    /// older macOS and Java 8; OpenSSL 3 reads it without its legacy provider.
    Legacy,
}

impl PfxCompat {
    pub fn as_str(self) -> &'static str {
        match self {
            PfxCompat::Modern => "modern",
            PfxCompat::Legacy => "legacy",
        }
    }
}

impl std::str::FromStr for PfxCompat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "modern" => Ok(PfxCompat::Modern),
            "legacy" => Ok(PfxCompat::Legacy),
            o => Err(format!("unknown PFX compat '{o}': use modern or legacy")),
        }
    }
}

const ITERATIONS: i32 = 2048;

/// Builds a PFX holding the key, its certificate and the chain, under `friendly_name`.
pub fn build(
    key: &PrivateKey,
    cert: &X509,
    chain: &[X509],
    friendly_name: &str,
    password: &SecretString,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    check_password(password)?;
    let mut ca = Stack::new()?;
    for c in chain {
        ca.push(c.clone())?;
    }
    let mut b = Pkcs12::builder();
    b.name(friendly_name).pkey(key.pkey()).cert(cert).ca(ca);
    if compat == PfxCompat::Legacy {
        b.key_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
            .cert_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
            .key_iter(ITERATIONS as u32)
            .mac_md(MessageDigest::sha1())
            .mac_iter(ITERATIONS as u32);
    }
    let der = b.build2(password.expose_secret())?.to_der()?;
    verify(&der, password, cert, chain.len())?;
    Ok(der)
}

/// What a PFX holds.
pub struct Opened {
    pub key: Option<PrivateKey>,
    pub cert: Option<X509>,
    pub chain: Vec<X509>,
}

/// Opens a PFX with its password.
pub fn open(der: &[u8], password: &SecretString) -> Result<Opened> {
    check_password(password)?;
    let p12 = Pkcs12::from_der(der).map_err(|_| PkiError::PfxPassword)?;
    let parsed = p12
        .parse2(password.expose_secret())
        .map_err(|_| PkiError::PfxPassword)?;
    let key = match parsed.pkey {
        Some(k) => Some(PrivateKey::from_pkey(k)?),
        None => None,
    };
    Ok(Opened {
        key,
        cert: parsed.cert,
        chain: parsed
            .ca
            .map(|s| s.into_iter().collect())
            .unwrap_or_default(),
    })
}

/// Opens a PFX just written and checks that its key matches its certificate, that the
/// certificate is the one meant, and that the whole chain is inside.
pub fn verify(der: &[u8], password: &SecretString, cert: &X509, chain_len: usize) -> Result<()> {
    let o = open(der, password)?;
    let key = o
        .key
        .ok_or_else(|| PkiError::Invalid("the PFX written holds no private key".into()))?;
    let c = o
        .cert
        .ok_or_else(|| PkiError::Invalid("the PFX written holds no certificate".into()))?;
    if c.to_der()? != cert.to_der()? {
        return Err(PkiError::Invalid(
            "the PFX written holds another certificate".into(),
        ));
    }
    if !c.public_key()?.public_eq(key.pkey()) {
        return Err(PkiError::Invalid(
            "the key in the PFX does not match its certificate".into(),
        ));
    }
    if o.chain.len() != chain_len {
        return Err(PkiError::Invalid(format!(
            "the PFX written holds {} chain certificates, expected {chain_len}",
            o.chain.len()
        )));
    }
    Ok(())
}

fn check_password(p: &SecretString) -> Result<()> {
    if p.expose_secret().contains('\0') {
        return Err(PkiError::Invalid(
            "a PFX password cannot contain a NUL byte".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::cert::{CaRequest, self_signed_ca};
    use crate::pki::dn::Subject;
    use crate::pki::keys::KeyAlgorithm;
    use time::{Duration, OffsetDateTime};

    #[test]
    fn both_modes_round_trip_and_wrong_password_fails() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CaRequest {
            subject: Subject::parse("CN=x").unwrap(),
            validity: Duration::days(1),
            path_length: 0,
        };
        let b = self_signed_ca(&req, &key, OffsetDateTime::now_utc()).unwrap();
        let cert = X509::from_der(&b.der).unwrap();
        let pw = SecretString::from("pw".to_string());
        for compat in [PfxCompat::Modern, PfxCompat::Legacy] {
            let der = build(&key, &cert, &[], "x", &pw, compat).unwrap();
            assert!(open(&der, &pw).is_ok());
            let bad = SecretString::from("bad".to_string());
            assert!(matches!(open(&der, &bad), Err(PkiError::PfxPassword)));
        }
    }
}
