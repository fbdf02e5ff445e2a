//! Private keys: generation (OpenSSL), PKCS#8 encoding, encryption at rest, and the
//! hand-over to rcgen for signing.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
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
    /// A fresh key of the given algorithm from OpenSSL's CSPRNG.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let pkey = match alg {
            KeyAlgorithm::EcdsaP256 => ec(Nid::X9_62_PRIME256V1)?,
            KeyAlgorithm::EcdsaP384 => ec(Nid::SECP384R1)?,
            KeyAlgorithm::Ed25519 => PKey::generate_ed25519()?,
            KeyAlgorithm::Rsa2048 => PKey::from_rsa(rsa_key(2048)?)?,
            KeyAlgorithm::Rsa3072 => PKey::from_rsa(rsa_key(3072)?)?,
            KeyAlgorithm::Rsa4096 => PKey::from_rsa(rsa_key(4096)?)?,
        };
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

/// An RSA key with public exponent 65537 from two primes that OpenSSL generates and
/// tests (`BN_generate_prime_ex`: private DRBG, top two bits set so that n has exactly
/// `bits` bits, Miller-Rabin with OpenSSL's own round count). The rest is the textbook
/// arithmetic of FIPS 186-5 / SP 800-56B: gcd(e, p-1) = gcd(e, q-1) = 1,
/// |p - q| > 2^(bits/2 - 100), d = e^-1 mod lcm(p-1, q-1) with d > 2^(bits/2), and the
/// CRT values, computed with OpenSSL's constant-time flag on every secret.
///
/// This is what OpenSSL's classic RSA key generation does; OpenSSL 3.0's default
/// (SP 800-56B with auxiliary primes) is about three times slower for the same
/// strength, which dominates issuing RSA certificates in bulk.
fn rsa_key(bits: u32) -> Result<Rsa<Private>> {
    use openssl::bn::{BigNum, BigNumContext};
    let half = (bits / 2) as i32;
    let mut ctx = BigNumContext::new_secure()?;
    let e = BigNum::from_u32(65537)?;
    let one = BigNum::from_u32(1)?;
    loop {
        let p = rsa_prime(half, &e, &mut ctx)?;
        let q = rsa_prime(half, &e, &mut ctx)?;
        let mut diff = BigNum::new()?;
        diff.checked_sub(&p, &q)?;
        diff.set_negative(false);
        if diff.num_bits() <= half - 100 {
            continue;
        }
        let mut n = BigNum::new()?;
        n.checked_mul(&p, &q, &mut ctx)?;
        if n.num_bits() != bits as i32 {
            continue;
        }
        let (mut p1, mut q1) = (secret_bn()?, secret_bn()?);
        p1.checked_sub(&p, &one)?;
        q1.checked_sub(&q, &one)?;
        let (mut g, mut phi, mut lcm) = (secret_bn()?, secret_bn()?, secret_bn()?);
        g.gcd(&p1, &q1, &mut ctx)?;
        phi.checked_mul(&p1, &q1, &mut ctx)?;
        lcm.checked_div(&phi, &g, &mut ctx)?;
        const_time(&mut lcm);
        let mut d = secret_bn()?;
        d.mod_inverse(&e, &lcm, &mut ctx)?;
        if d.num_bits() <= half {
            continue;
        }
        let (mut dmp1, mut dmq1, mut iqmp) = (secret_bn()?, secret_bn()?, secret_bn()?);
        dmp1.nnmod(&d, &p1, &mut ctx)?;
        dmq1.nnmod(&d, &q1, &mut ctx)?;
        iqmp.mod_inverse(&q, &p, &mut ctx)?;
        let e = BigNum::from_u32(65537)?;
        return Ok(Rsa::from_private_components(
            n, e, d, p, q, dmp1, dmq1, iqmp,
        )?);
    }
}

/// A prime of `bits` bits with gcd(e, p - 1) = 1, flagged constant-time.
fn rsa_prime(
    bits: i32,
    e: &openssl::bn::BigNumRef,
    ctx: &mut openssl::bn::BigNumContextRef,
) -> Result<openssl::bn::BigNum> {
    let one = openssl::bn::BigNum::from_u32(1)?;
    loop {
        let mut p = secret_bn()?;
        p.generate_prime(bits, false, None, None)?;
        const_time(&mut p);
        let mut p1 = secret_bn()?;
        p1.checked_sub(&p, &one)?;
        let mut g = openssl::bn::BigNum::new()?;
        g.gcd(&p1, e, ctx)?;
        if g == one {
            return Ok(p);
        }
    }
}

/// A fresh BIGNUM flagged for constant-time operations (it will hold a secret).
fn secret_bn() -> Result<openssl::bn::BigNum> {
    let mut b = openssl::bn::BigNum::new()?;
    const_time(&mut b);
    Ok(b)
}

fn const_time(b: &mut openssl::bn::BigNumRef) {
    use foreign_types::ForeignTypeRef;
    // SAFETY: the pointer is a valid BIGNUM owned by `b` for the duration of the call;
    // BN_set_flags only sets a bit in it.
    unsafe { openssl_sys::BN_set_flags(b.as_ptr(), openssl_sys::BN_FLG_CONSTTIME) }
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
    fn every_algorithm_generates_and_signs() {
        for alg in KeyAlgorithm::ALL {
            if matches!(alg, KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096) {
                continue; // slow; covered by integration tests
            }
            let k = PrivateKey::generate(alg).unwrap();
            assert_eq!(k.algorithm(), alg);
            k.to_rcgen().unwrap();
        }
    }

    #[test]
    fn rsa_keys_are_valid_and_of_the_right_size() {
        use openssl::hash::MessageDigest;
        use openssl::sign::{Signer, Verifier};
        for _ in 0..3 {
            let k = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
            let rsa = k.pkey().rsa().unwrap();
            assert_eq!(rsa.n().num_bits(), 2048);
            assert_eq!(rsa.e().to_dec_str().unwrap().to_string(), "65537");
            // OpenSSL's full check: p and q prime, n = pq, d e = 1 mod lcm, CRT values
            assert!(rsa.check_key().unwrap());
            let mut s = Signer::new(MessageDigest::sha256(), k.pkey()).unwrap();
            s.update(b"m").unwrap();
            let sig = s.sign_to_vec().unwrap();
            let mut v = Verifier::new(MessageDigest::sha256(), k.pkey()).unwrap();
            v.update(b"m").unwrap();
            assert!(v.verify(&sig).unwrap());
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
