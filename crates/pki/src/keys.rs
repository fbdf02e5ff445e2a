//! Private keys: generation (OpenSSL, with a pairwise self-test), PKCS#8 encoding,
//! encryption at rest, and the hand-over to rcgen for signing.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use openssl::symm::Cipher;
use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{PkiError, Result};

/// The key algorithms a profile may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }

    /// The signature algorithm this key signs with (SHA-384 for P-384, else SHA-256).
    fn rcgen_alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &PKCS_ED25519,
            _ => &PKCS_RSA_SHA256,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown key algorithm '{s}': use one of {}",
                    names.join(", ")
                )
            })
    }
}

impl serde::Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A private key held by OpenSSL, with the algorithm it was recognised as.
pub struct PrivateKey {
    pkey: PKey<Private>,
    alg: KeyAlgorithm,
    /// The PKCS#8 DER encoding, made once: the key file, the PFX and rcgen all need it.
    pkcs8: OnceLock<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, [REDACTED])", self.alg)
    }
}

impl PrivateKey {
    /// A fresh key of the given algorithm from OpenSSL's CSPRNG, which has signed a fixed
    /// message and verified the signature with its public half before it is handed out.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let pkey = match alg {
            KeyAlgorithm::EcdsaP256 => ec(Nid::X9_62_PRIME256V1)?,
            KeyAlgorithm::EcdsaP384 => ec(Nid::SECP384R1)?,
            KeyAlgorithm::Ed25519 => PKey::generate_ed25519()?,
            KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
            KeyAlgorithm::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?)?,
            KeyAlgorithm::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?)?,
        };
        pairwise_test(&pkey, &pkey, alg)?;
        Ok(PrivateKey {
            pkey,
            alg,
            pkcs8: OnceLock::new(),
        })
    }

    /// Wraps a key OpenSSL has loaded, refusing algorithms we cannot sign with.
    pub fn from_pkey(pkey: PKey<Private>) -> Result<Self> {
        let alg = algorithm_of(&pkey)?;
        Ok(PrivateKey {
            pkey,
            alg,
            pkcs8: OnceLock::new(),
        })
    }

    /// Reads a PEM private key (PKCS#8, SEC1 or PKCS#1, encrypted or not) or a DER
    /// PKCS#8 key. Never lets OpenSSL prompt on the terminal.
    pub fn from_pem_or_der(data: &[u8], passphrase: Option<&SecretString>) -> Result<Self> {
        let encrypted = is_encrypted_pem(data);
        if encrypted && passphrase.is_none() {
            return Err(PkiError::PassphraseNeeded);
        }
        let pass = passphrase
            .map(|p| p.expose_secret().as_bytes())
            .unwrap_or(b"");
        let pkey = if data.trim_ascii_start().starts_with(b"-----") {
            PKey::private_key_from_pem_passphrase(data, pass).map_err(|e| {
                if encrypted {
                    PkiError::WrongPassphrase
                } else {
                    PkiError::BadKey(short_ssl_error(&e))
                }
            })?
        } else if passphrase.is_some() {
            PKey::private_key_from_pkcs8_passphrase(data, pass)
                .or_else(|_| PKey::private_key_from_der(data))
                .map_err(|_| PkiError::WrongPassphrase)?
        } else {
            PKey::private_key_from_der(data).map_err(|e| PkiError::BadKey(short_ssl_error(&e)))?
        };
        Self::from_pkey(pkey)
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.alg
    }

    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }

    /// Unencrypted PKCS#8 DER, zeroised when the key is dropped.
    pub fn pkcs8_der(&self) -> Result<&[u8]> {
        if let Some(d) = self.pkcs8.get() {
            return Ok(d);
        }
        let d = Zeroizing::new(self.pkey.private_key_to_pkcs8()?);
        Ok(self.pkcs8.get_or_init(|| d))
    }

    /// Unencrypted PKCS#8 PEM (`BEGIN PRIVATE KEY`), zeroised on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(
            super::pem("PRIVATE KEY", self.pkcs8_der()?).into_bytes(),
        ))
    }

    /// Encrypted PKCS#8 PEM: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC.
    pub fn to_encrypted_pkcs8_pem(&self, passphrase: &SecretString) -> Result<Vec<u8>> {
        Ok(self.pkey.private_key_to_pem_pkcs8_passphrase(
            Cipher::aes_256_cbc(),
            passphrase.expose_secret().as_bytes(),
        )?)
    }

    /// The key as rcgen wants it for signing, with the signature algorithm we chose.
    pub fn to_rcgen(&self) -> Result<KeyPair> {
        let der = rustls_pki_der(self.pkcs8_der()?);
        Ok(KeyPair::from_pkcs8_der_and_sign_algo(
            &der,
            self.alg.rcgen_alg(),
        )?)
    }

    /// DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        Ok(self.pkey.public_key_to_der()?)
    }
}

fn rustls_pki_der(der: &[u8]) -> rustls_pki_types::PrivatePkcs8KeyDer<'_> {
    rustls_pki_types::PrivatePkcs8KeyDer::from(der)
}

/// The message every new key signs before it is used.
const SELF_TEST_MESSAGE: &[u8] = b"mtlsctl pairwise consistency test";

/// FIPS 140-style pairwise consistency test: `key` signs a fixed message and `public`
/// verifies the signature (with the digest the key will sign certificates with).
fn pairwise_test<T: HasPublic>(
    key: &PKey<Private>,
    public: &PKey<T>,
    alg: KeyAlgorithm,
) -> Result<()> {
    let fail = |reason: String| PkiError::KeySelfTest {
        alg: alg.as_str(),
        reason,
    };
    let ssl = |e: openssl::error::ErrorStack| fail(short_ssl_error(&e));
    let digest = match alg {
        KeyAlgorithm::Ed25519 => None,
        KeyAlgorithm::EcdsaP384 => Some(MessageDigest::sha384()),
        _ => Some(MessageDigest::sha256()),
    };
    let valid = match digest {
        None => {
            let sig = Signer::new_without_digest(key)
                .and_then(|mut s| s.sign_oneshot_to_vec(SELF_TEST_MESSAGE))
                .map_err(ssl)?;
            Verifier::new_without_digest(public)
                .and_then(|mut v| v.verify_oneshot(&sig, SELF_TEST_MESSAGE))
                .map_err(ssl)?
        }
        Some(md) => {
            let mut s = Signer::new(md, key).map_err(ssl)?;
            s.update(SELF_TEST_MESSAGE).map_err(ssl)?;
            let sig = s.sign_to_vec().map_err(ssl)?;
            let mut v = Verifier::new(md, public).map_err(ssl)?;
            v.update(SELF_TEST_MESSAGE).map_err(ssl)?;
            v.verify(&sig).map_err(ssl)?
        }
    };
    if !valid {
        return Err(fail("its public key does not verify its signature".into()));
    }
    Ok(())
}

fn ec(nid: Nid) -> Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(nid)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// Recognises the algorithm of an OpenSSL key.
pub fn algorithm_of<T: openssl::pkey::HasPublic>(pkey: &PKey<T>) -> Result<KeyAlgorithm> {
    match pkey.id() {
        Id::EC => {
            let ec = pkey.ec_key()?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => Ok(KeyAlgorithm::EcdsaP256),
                Some(Nid::SECP384R1) => Ok(KeyAlgorithm::EcdsaP384),
                other => Err(PkiError::UnsupportedKey(format!(
                    "EC key on curve {}",
                    other.and_then(|n| n.short_name().ok()).unwrap_or("unknown")
                ))),
            }
        }
        Id::ED25519 => Ok(KeyAlgorithm::Ed25519),
        Id::RSA => match pkey.bits() {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            b => Err(PkiError::UnsupportedKey(format!("RSA key of {b} bits"))),
        },
        other => Err(PkiError::UnsupportedKey(format!("key type {other:?}"))),
    }
}

/// Describes any public key for reports: "ecdsa-p256", "rsa-1024", "ed448"...
pub fn describe_public_key<T: openssl::pkey::HasPublic>(pkey: &PKey<T>) -> String {
    match algorithm_of(pkey) {
        Ok(a) => a.to_string(),
        Err(_) => match pkey.id() {
            Id::RSA => format!("rsa-{}", pkey.bits()),
            Id::EC => format!("ec-{}", pkey.bits()),
            Id::ED448 => "ed448".into(),
            Id::DSA => format!("dsa-{}", pkey.bits()),
            other => format!("{other:?}").to_lowercase(),
        },
    }
}

pub fn is_encrypted_pem(data: &[u8]) -> bool {
    let head = &data[..data.len().min(200)];
    contains(head, b"BEGIN ENCRYPTED PRIVATE KEY") || contains(data, b"Proc-Type: 4,ENCRYPTED")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The first reason in an OpenSSL error stack, without the library noise.
pub fn short_ssl_error(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
        .unwrap_or_else(|| e.to_string())
}

/// A strong random password for a PFX: 24 characters from an unambiguous alphabet
/// (about 140 bits), safe to paste into Windows dialogs.
pub fn generate_password() -> Result<SecretString> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut raw = Zeroizing::new([0u8; 48]);
    openssl::rand::rand_bytes(raw.as_mut())?;
    let mut out = String::with_capacity(24);
    for b in raw.iter() {
        // rejection sampling keeps the distribution uniform
        let limit = 256 - (256 % ALPHABET.len());
        if (*b as usize) < limit {
            out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
            if out.len() == 24 {
                break;
            }
        }
    }
    while out.len() < 24 {
        let mut b = [0u8; 1];
        openssl::rand::rand_bytes(&mut b)?;
        let limit = 256 - (256 % ALPHABET.len());
        if (b[0] as usize) < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(SecretString::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_and_passes_its_self_test() {
        for alg in KeyAlgorithm::ALL {
            let k = PrivateKey::generate(alg).unwrap();
            assert_eq!(k.algorithm(), alg);
            pairwise_test(k.pkey(), k.pkey(), alg).unwrap();
            k.to_rcgen().unwrap();
            if alg.is_rsa() {
                let rsa = k.pkey().rsa().unwrap();
                assert_eq!(rsa.e().to_dec_str().unwrap().to_string(), "65537");
                // OpenSSL's full check: p and q prime, n = pq, d e = 1 mod lcm, CRT values
                assert!(rsa.check_key().unwrap(), "{alg}");
            }
        }
    }

    #[test]
    fn the_self_test_fails_with_another_public_key() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let (a, b) = (
                PrivateKey::generate(alg).unwrap(),
                PrivateKey::generate(alg).unwrap(),
            );
            let e = pairwise_test(a.pkey(), b.pkey(), alg).unwrap_err();
            assert!(matches!(e, PkiError::KeySelfTest { .. }), "{e}");
            assert!(e.to_string().contains("self-test"), "{e}");
        }
    }

    #[test]
    fn encrypted_round_trip_and_wrong_passphrase() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = SecretString::from("correct horse".to_string());
        let pem = k.to_encrypted_pkcs8_pem(&pass).unwrap();
        assert!(is_encrypted_pem(&pem));
        assert!(matches!(
            PrivateKey::from_pem_or_der(&pem, None),
            Err(PkiError::PassphraseNeeded)
        ));
        let wrong = SecretString::from("nope".to_string());
        assert!(matches!(
            PrivateKey::from_pem_or_der(&pem, Some(&wrong)),
            Err(PkiError::WrongPassphrase)
        ));
        let back = PrivateKey::from_pem_or_der(&pem, Some(&pass)).unwrap();
        assert_eq!(back.public_key_der().unwrap(), k.public_key_der().unwrap());
    }

    #[test]
    fn passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose_secret().len(), 24);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
