//! Private keys: generation (OpenSSL, with a pairwise self-test), PKCS#8 encoding,
//! encryption at rest (RustCrypto `pkcs8`/`pkcs5`), and the hand-over to rcgen for signing.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use der::{Decode, Encode};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use pkcs5::pbes2;
use pkcs12::pbe_params::EncryptedPrivateKeyInfo;
use rcgen::{
    KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256,
};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::pbe::{self, Kdf, PKCS8_LIMITS, Scheme, asn1};
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
    /// PKCS#8 key (encrypted or not). Never lets OpenSSL prompt on the terminal. [`load`]
    /// also says how the file was protected.
    pub fn from_pem_or_der(data: &[u8], passphrase: Option<&SecretString>) -> Result<Self> {
        load(data, passphrase).map(|l| l.key)
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

    /// Encrypted PKCS#8 PEM (RustCrypto `pkcs8`/`pkcs5`): PBES2 with PBKDF2-HMAC-SHA-256 at
    /// [`KEY_ITERATIONS`] iterations and a 16-byte random salt, AES-256-CBC; what
    /// `openssl pkey` and every PKCS#8 reader open.
    pub fn to_encrypted_pkcs8_pem(&self, passphrase: &SecretString) -> Result<Vec<u8>> {
        let crypto = |e: pkcs5::Error| PkiError::Invalid(format!("key encryption: {e}"));
        let (mut salt, mut iv) = ([0u8; 16], [0u8; 16]);
        openssl::rand::rand_bytes(&mut salt)?;
        openssl::rand::rand_bytes(&mut iv)?;
        let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(KEY_ITERATIONS, &salt, iv)
            .map_err(crypto)?;
        let ciphertext = params
            .encrypt(passphrase.expose_secret(), self.pkcs8_der()?)
            .map_err(crypto)?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef {
            encryption_algorithm: params.into(),
            encrypted_data: der::asn1::OctetStringRef::new(&ciphertext).map_err(asn1)?,
        };
        let der = info.to_der().map_err(asn1)?;
        Ok(super::pem("ENCRYPTED PRIVATE KEY", &der).into_bytes())
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

/// PBKDF2 iterations of the encrypted PKCS#8 keys we write (OWASP's figure for
/// PBKDF2-HMAC-SHA-256). Keys read with fewer are reported as weaker (see [`Protection`]).
pub const KEY_ITERATIONS: u32 = 600_000;

/// How a key file was protected at rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protection {
    Plain,
    /// Encrypted PKCS#8, with its scheme as read from the file.
    Pkcs8(Scheme),
    /// OpenSSL's traditional PEM encryption (`Proc-Type: 4,ENCRYPTED`): one MD5 round.
    LegacyPem,
}

impl Protection {
    /// Whether the key is encrypted with less than [`to_encrypted_pkcs8_pem`] would use
    /// now: PBKDF2 under [`KEY_ITERATIONS`] iterations, PBES1, a PKCS#12 scheme or the
    /// traditional PEM encryption. scrypt counts as current. A plain key is not encrypted,
    /// so never weaker: encrypting it is a decision for its owner.
    ///
    /// [`to_encrypted_pkcs8_pem`]: PrivateKey::to_encrypted_pkcs8_pem
    pub fn weaker_than_current(&self) -> bool {
        match self {
            Protection::Plain => false,
            Protection::LegacyPem => true,
            Protection::Pkcs8(s) => match s.kdf {
                Kdf::Pbkdf2 { iterations, .. } => iterations < KEY_ITERATIONS,
                Kdf::Scrypt { .. } => false,
                Kdf::Legacy { .. } | Kdf::Unknown => true,
            },
        }
    }
}

/// A key read from a file, and how the file protected it.
#[derive(Debug)]
pub struct Loaded {
    pub key: PrivateKey,
    pub protection: Protection,
}

/// Reads a key as [`PrivateKey::from_pem_or_der`] does. An encrypted PKCS#8 key has its
/// PBES2 (or older) parameters read first and is refused above [`PKCS8_LIMITS`]; RustCrypto
/// decrypts PBES2 with PBKDF2-HMAC-SHA-2 or scrypt and AES-CBC, OpenSSL the rest.
pub fn load(data: &[u8], passphrase: Option<&SecretString>) -> Result<Loaded> {
    let loaded = |pkey, protection| {
        Ok(Loaded {
            key: PrivateKey::from_pkey(pkey)?,
            protection,
        })
    };
    if let Some((der, info)) = encrypted_pkcs8(data)? {
        let (pkey, scheme) = decrypt_pkcs8(&der, &info, passphrase)?;
        return loaded(pkey, Protection::Pkcs8(scheme));
    }
    if !data.trim_ascii_start().starts_with(b"-----") {
        let pkey =
            PKey::private_key_from_der(data).map_err(|e| PkiError::BadKey(short_ssl_error(&e)))?;
        return loaded(pkey, Protection::Plain);
    }
    let legacy = is_encrypted_pem(data);
    if legacy && passphrase.is_none() {
        return Err(PkiError::PassphraseNeeded);
    }
    // a plain PEM key still goes through the passphrase call, so OpenSSL never prompts
    let pass = passphrase
        .map(|p| p.expose_secret().as_bytes())
        .unwrap_or(b"");
    let pkey = PKey::private_key_from_pem_passphrase(data, pass).map_err(|e| {
        if legacy {
            PkiError::WrongPassphrase
        } else {
            PkiError::BadKey(short_ssl_error(&e))
        }
    })?;
    loaded(
        pkey,
        if legacy {
            Protection::LegacyPem
        } else {
            Protection::Plain
        },
    )
}

/// Decrypts an EncryptedPrivateKeyInfo (`der`, decoded as `info`) after bounding its cost.
fn decrypt_pkcs8(
    der: &[u8],
    info: &EncryptedPrivateKeyInfo,
    passphrase: Option<&SecretString>,
) -> Result<(PKey<Private>, Scheme)> {
    let Some(pass) = passphrase else {
        return Err(PkiError::PassphraseNeeded);
    };
    let scheme = pbe::scheme(&info.encryption_algorithm)?;
    PKCS8_LIMITS.check(scheme.kdf, "key derivation")?;
    let pkey = match &scheme.pbes2 {
        Some(params) => {
            let plain = Zeroizing::new(
                params
                    .decrypt(pass.expose_secret(), info.encrypted_data.as_bytes())
                    .map_err(|_| PkiError::WrongPassphrase)?,
            );
            // a wrong passphrase may still unpad (1 in 256): the DER then does not parse
            PKey::private_key_from_pkcs8(&plain).map_err(|_| PkiError::WrongPassphrase)?
        }
        None => PKey::private_key_from_pkcs8_passphrase(der, pass.expose_secret().as_bytes())
            .map_err(|_| PkiError::WrongPassphrase)?,
    };
    Ok((pkey, scheme))
}

/// An encrypted PKCS#8 key, PEM (`ENCRYPTED PRIVATE KEY`) or DER, as DER and decoded;
/// None for any other file. A PEM block of that label that does not decode is an error,
/// never something to hand to OpenSSL unbounded.
fn encrypted_pkcs8(data: &[u8]) -> Result<Option<(Vec<u8>, EncryptedPrivateKeyInfo)>> {
    const BEGIN: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
    if !data.trim_ascii_start().starts_with(b"-----") {
        let info = EncryptedPrivateKeyInfo::from_der(data).ok();
        return Ok(info.map(|i| (data.to_vec(), i)));
    }
    let Some(at) = data.windows(BEGIN.len()).position(|w| w == BEGIN) else {
        return Ok(None);
    };
    let bad = |e: String| PkiError::BadKey(format!("encrypted PKCS#8: {e}"));
    let text = std::str::from_utf8(&data[at..]).map_err(|_| bad("not PEM text".into()))?;
    let (_, der) = der::pem::decode_vec(text.trim().as_bytes()).map_err(|e| bad(e.to_string()))?;
    let info = EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| bad(e.to_string()))?;
    Ok(Some((der, info)))
}

/// How an encrypted PKCS#8 key (PEM or DER) is encrypted, read without its passphrase;
/// None for anything else.
pub fn encryption_of(data: &[u8]) -> Option<Scheme> {
    let (_, info) = encrypted_pkcs8(data).ok()??;
    pbe::scheme(&info.encryption_algorithm).ok()
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
        let scheme = encryption_of(&pem).unwrap();
        assert_eq!(
            scheme.description,
            "PBES2 PBKDF2-HMAC-SHA-256 600000 iterations AES-256-CBC"
        );
        // OpenSSL opens it too
        let o = PKey::private_key_from_pem_passphrase(&pem, b"correct horse").unwrap();
        assert!(o.public_eq(k.pkey()));
        assert!(matches!(
            PrivateKey::from_pem_or_der(&pem, None),
            Err(PkiError::PassphraseNeeded)
        ));
        let wrong = SecretString::from("nope".to_string());
        assert!(matches!(
            PrivateKey::from_pem_or_der(&pem, Some(&wrong)),
            Err(PkiError::WrongPassphrase)
        ));
        let back = load(&pem, Some(&pass)).unwrap();
        assert_eq!(
            back.key.public_key_der().unwrap(),
            k.public_key_der().unwrap()
        );
        assert!(!back.protection.weaker_than_current());
    }

    #[test]
    fn keys_openssl_encrypted_are_read_and_reported_weaker() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = SecretString::from("correct horse".to_string());
        // OpenSSL's writer: PBES2, PBKDF2-HMAC-SHA-256, 2048 iterations
        let pem = k
            .pkey()
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                b"correct horse",
            )
            .unwrap();
        let der = k
            .pkey()
            .private_key_to_pkcs8_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"correct horse")
            .unwrap();
        // the traditional PEM encryption
        let trad = k
            .pkey()
            .ec_key()
            .unwrap()
            .private_key_to_pem_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"correct horse")
            .unwrap();
        for data in [pem, der, trad] {
            let l = load(&data, Some(&pass)).unwrap();
            assert!(l.key.pkey().public_eq(k.pkey()));
            assert!(l.protection.weaker_than_current(), "{:?}", l.protection);
            let wrong = SecretString::from("horse correct".to_string());
            assert!(matches!(
                load(&data, Some(&wrong)),
                Err(PkiError::WrongPassphrase)
            ));
        }
        let plain = load(&k.to_pkcs8_pem().unwrap(), None).unwrap();
        assert_eq!(plain.protection, Protection::Plain);
        assert!(!plain.protection.weaker_than_current());
    }

    #[test]
    fn costly_keys_are_refused_before_any_derivation() {
        let k = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pass = SecretString::from("correct horse".to_string());
        let cases = [
            pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(20_000_000, &[7; 16], [1; 16]),
            pbes2::Parameters::generate_scrypt_aes256cbc(
                pkcs5::scrypt::Params::new(20, 16, 1).unwrap(),
                &[7; 16],
                [1; 16],
            ),
        ];
        for params in cases {
            // a few random bytes stand in for a ciphertext: nothing is ever derived
            let info = pkcs8::EncryptedPrivateKeyInfoRef {
                encryption_algorithm: params.unwrap().into(),
                encrypted_data: der::asn1::OctetStringRef::new(&[0u8; 48]).unwrap(),
            };
            let der = info.to_der().unwrap();
            let pem = crate::pem("ENCRYPTED PRIVATE KEY", &der);
            let t = std::time::Instant::now();
            for data in [der.as_slice(), pem.as_bytes()] {
                let e = load(data, Some(&pass)).unwrap_err();
                assert!(matches!(e, PkiError::CostLimit { .. }), "{e}");
                let text = e.to_string();
                assert!(
                    text.contains("encrypted key") && text.contains("limit"),
                    "{text}"
                );
            }
            assert!(t.elapsed() < std::time::Duration::from_secs(1));
        }
        drop(k);
    }

    #[test]
    fn passwords_are_long_and_distinct() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.expose_secret().len(), 24);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
