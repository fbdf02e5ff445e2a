//! PKCS#12 (PFX) bundles in the two compatibility modes DESIGN.md section 5 names, each
//! opened again and checked before it is handed back. `modern` files are written and
//! checked by [`modern`] (fast password derivations); `legacy` files by OpenSSL's
//! PKCS#12 code. Files from elsewhere are always opened by OpenSSL.

mod der;
pub mod modern;

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

/// Builds a PFX holding the key, its certificate and the chain, under `friendly_name`,
/// then opens it again with the password and checks what it holds.
pub fn build(
    key: &PrivateKey,
    cert: &X509,
    chain: &[X509],
    friendly_name: &str,
    password: &SecretString,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_der()).collect::<Result<_, _>>()?;
    build_der(
        key,
        &cert.to_der()?,
        &chain,
        friendly_name,
        password,
        compat,
    )
}

/// [`build`] for a certificate and chain given as DER.
pub fn build_der(
    key: &PrivateKey,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &SecretString,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    check_password(password)?;
    let pw = password.expose_secret();
    match compat {
        PfxCompat::Modern => {
            let pkcs8 = key.pkcs8_der()?;
            let mut derived = modern::Derived::default();
            let der = modern::write(pkcs8, cert_der, chain, friendly_name, pw, &mut derived)?;
            check_modern(&der, pw, pkcs8, cert_der, chain, &mut derived)?;
            if !key_matches_cert(key, cert_der)? {
                return Err(mismatch());
            }
            Ok(der)
        }
        PfxCompat::Legacy => {
            let cert = X509::from_der(cert_der)?;
            let mut ca = Stack::new()?;
            for c in chain {
                ca.push(X509::from_der(c)?)?;
            }
            let mut b = Pkcs12::builder();
            b.name(friendly_name)
                .pkey(key.pkey())
                .cert(&cert)
                .ca(ca)
                .key_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
                .cert_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
                .key_iter(modern::ITERATIONS)
                .mac_md(MessageDigest::sha1())
                .mac_iter(modern::ITERATIONS);
            let der = b.build2(pw)?.to_der()?;
            check(open(&der, password)?, &cert, chain.len())?;
            Ok(der)
        }
    }
}

fn mismatch() -> PkiError {
    PkiError::Invalid("the key in the PFX does not match its certificate".into())
}

/// Whether `cert_der` certifies the public half of `key`: the certificate's
/// SubjectPublicKeyInfo compared with the key's, and OpenSSL's own comparison when the
/// encodings differ (a compressed EC point, say).
fn key_matches_cert(key: &PrivateKey, cert_der: &[u8]) -> Result<bool> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::Parse(format!("certificate: {e}")))?;
    if parsed.tbs_certificate.subject_pki.raw == key.public_key_der()?.as_slice() {
        return Ok(true);
    }
    Ok(X509::from_der(cert_der)?
        .public_key()?
        .public_eq(key.pkey()))
}

/// Opens a modern PFX just written and checks that it holds exactly the key,
/// certificate (tied to the key by its local key id) and chain that went in.
fn check_modern(
    der: &[u8],
    password: &str,
    pkcs8: &[u8],
    cert_der: &[u8],
    chain: &[Vec<u8>],
    derived: &mut modern::Derived,
) -> Result<()> {
    let c = modern::read_with(der, password, derived)?;
    if c.key_pkcs8.as_deref().map(|k| k.as_slice()) != Some(pkcs8) {
        return Err(PkiError::Invalid(
            "the PFX written does not hold the private key".into(),
        ));
    }
    let (leaf, rest): (Vec<_>, Vec<_>) = c
        .certs
        .into_iter()
        .partition(|f| f.local_key_id.is_some() && f.local_key_id == c.key_local_id);
    if leaf.len() != 1 || leaf[0].der != cert_der {
        return Err(PkiError::Invalid(
            "the PFX written holds another certificate".into(),
        ));
    }
    if rest.len() != chain.len() || rest.iter().zip(chain).any(|(f, c)| f.der != *c) {
        return Err(PkiError::Invalid(format!(
            "the PFX written holds {} chain certificates, not the {} of the chain",
            rest.len(),
            chain.len()
        )));
    }
    Ok(())
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

/// Checks a PFX just written and opened again: its key matches its certificate, the
/// certificate is the one meant, and the whole chain is inside.
fn check(o: Opened, cert: &X509, chain_len: usize) -> Result<()> {
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
        return Err(mismatch());
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

    fn ca_and_leaf() -> (PrivateKey, X509, PrivateKey, X509) {
        let ca_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CaRequest {
            subject: Subject::parse("CN=Test CA").unwrap(),
            validity: Duration::days(2),
            path_length: 0,
        };
        let ca = X509::from_der(
            &self_signed_ca(&req, &ca_key, OffsetDateTime::now_utc())
                .unwrap()
                .der,
        )
        .unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let leaf = {
            let req = CaRequest {
                subject: Subject::parse("CN=leaf").unwrap(),
                validity: Duration::days(1),
                path_length: 0,
            };
            X509::from_der(
                &self_signed_ca(&req, &key, OffsetDateTime::now_utc())
                    .unwrap()
                    .der,
            )
            .unwrap()
        };
        (key, leaf, ca_key, ca)
    }

    #[test]
    fn modern_files_open_in_openssl_with_name_key_and_chain() {
        let (key, leaf, _, ca) = ca_and_leaf();
        let pw = SecretString::from("pässwörd-1".to_string());
        let der = build(
            &key,
            &leaf,
            std::slice::from_ref(&ca),
            "Tenant Ä",
            &pw,
            PfxCompat::Modern,
        )
        .unwrap();
        let parsed = Pkcs12::from_der(&der)
            .unwrap()
            .parse2("pässwörd-1")
            .unwrap();
        assert_eq!(
            parsed.cert.unwrap().to_der().unwrap(),
            leaf.to_der().unwrap()
        );
        assert!(parsed.pkey.unwrap().public_eq(key.pkey()));
        let chain: Vec<X509> = parsed.ca.unwrap().into_iter().collect();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].to_der().unwrap(), ca.to_der().unwrap());
        assert!(Pkcs12::from_der(&der).unwrap().parse2("wrong").is_err());
        // the friendly name, as OpenSSL reads it back
        let opened = open(&der, &pw).unwrap();
        assert!(opened.key.is_some());
    }

    #[test]
    fn openssl_agrees_on_empty_and_astral_passwords() {
        let (key, leaf, _, _) = ca_and_leaf();
        for pw in ["", "key \u{1F511} and \u{00E9}"] {
            let secret = SecretString::from(pw.to_string());
            let der = build(&key, &leaf, &[], "x", &secret, PfxCompat::Modern).unwrap();
            let parsed = Pkcs12::from_der(&der).unwrap().parse2(pw).unwrap();
            assert!(parsed.pkey.unwrap().public_eq(key.pkey()), "{pw:?}");
            assert!(Pkcs12::from_der(&der).unwrap().parse2("other").is_err());
        }
    }

    #[test]
    fn modern_reader_opens_what_openssl_writes() {
        let (key, leaf, _, ca) = ca_and_leaf();
        let mut stack = Stack::new().unwrap();
        stack.push(ca.clone()).unwrap();
        let mut b = Pkcs12::builder();
        b.name("x").pkey(key.pkey()).cert(&leaf).ca(stack);
        let der = b.build2("pw").unwrap().to_der().unwrap();
        let c = modern::read(&der, "pw").unwrap();
        let k = openssl::pkey::PKey::private_key_from_pkcs8(&c.key_pkcs8.unwrap()).unwrap();
        assert!(k.public_eq(key.pkey()));
        assert_eq!(c.certs.len(), 2);
        let leaf_der = leaf.to_der().unwrap();
        let found = c.certs.iter().find(|f| f.der == leaf_der).unwrap();
        assert_eq!(found.local_key_id, c.key_local_id);
        assert!(matches!(
            modern::read(&der, "pW"),
            Err(PkiError::PfxPassword)
        ));
    }

    #[test]
    fn remembered_keys_serve_only_the_same_password_and_parameters() {
        let (key, leaf, _, ca) = ca_and_leaf();
        let pkcs8 = key.pkey().private_key_to_pkcs8().unwrap();
        let (cert, chain) = (leaf.to_der().unwrap(), vec![ca.to_der().unwrap()]);
        let mut d = modern::Derived::default();
        let der = modern::write(&pkcs8, &cert, &chain, "x", "right", &mut d).unwrap();
        // another password does not get the remembered keys
        assert!(matches!(
            modern::read_with(&der, "wrong", &mut d),
            Err(PkiError::PfxPassword)
        ));
        let c = modern::read_with(&der, "right", &mut d).unwrap();
        assert_eq!(c.key_pkcs8.unwrap().as_slice(), &pkcs8[..]);
        // a changed MAC salt misses the memory and fails the MAC; a changed byte of
        // ciphertext fails too
        for pos in [der.len() - 20, der.len() / 2] {
            let mut bad = der.clone();
            bad[pos] ^= 0x01;
            assert!(modern::read_with(&bad, "right", &mut d).is_err(), "{pos}");
        }
    }

    #[test]
    fn modern_reader_refuses_tampering_and_legacy_files() {
        let (key, leaf, _, _) = ca_and_leaf();
        let pw = SecretString::from("pw".to_string());
        let mut der = build(&key, &leaf, &[], "x", &pw, PfxCompat::Modern).unwrap();
        let mid = der.len() / 2;
        der[mid] ^= 1;
        assert!(modern::read(&der, "pw").is_err());
        let legacy = build(&key, &leaf, &[], "x", &pw, PfxCompat::Legacy).unwrap();
        assert!(modern::read(&legacy, "pw").is_err());
        assert!(modern::read(b"not a pfx", "pw").is_err());
    }
}
