//! The `modern` PKCS#12 profile, written and read here (RFC 7292, RFC 8018):
//! certificates and key each in a PBES2 envelope (PBKDF2-HMAC-SHA-256, AES-256-CBC), an
//! HMAC-SHA-256 MAC keyed by the PKCS#12 KDF, the same layout `openssl pkcs12 -export`
//! writes by default. OpenSSL 3.0 runs its password derivations through a generic
//! provider interface that costs several times the hash itself, and a PFX needs three
//! derivations to write and three to open again, which made the PFX most of the time
//! `issue` takes; here they run on the CPU's SHA instructions where it has them.
//! OpenSSL still encodes the key (PKCS#8) and the certificates, does the AES and the
//! random salts, and is the judge in the tests (every file written here must open in
//! OpenSSL and Java, and the reader must open OpenSSL's files). The `legacy` profile
//! and PFX files from elsewhere stay with OpenSSL's PKCS#12 code.

use hmac::{Hmac, Mac};
use openssl::symm::{Cipher, decrypt, encrypt};
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::ITERATIONS;
use super::der::{self, Reader};
use crate::{PkiError, Result};

/// Refused when reading: a file that asks for more would stall the reader.
const MAX_ITERATIONS: u32 = 10_000_000;
const SALT_LEN: usize = 16;

mod oids {
    pub const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    pub const ENCRYPTED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x06];
    pub const SHROUDED_KEY_BAG: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x0A, 0x01, 0x02,
    ];
    pub const CERT_BAG: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x0C, 0x0A, 0x01, 0x03,
    ];
    pub const X509_CERTIFICATE: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x16, 0x01];
    pub const FRIENDLY_NAME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x14];
    pub const LOCAL_KEY_ID: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x15];
    pub const PBES2: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0D];
    pub const PBKDF2: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x05, 0x0C];
    pub const HMAC_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x02, 0x09];
    pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
}

fn unsupported(what: &str) -> PkiError {
    PkiError::Parse(format!(
        "this PKCS#12 file uses {what}, which the modern reader does not handle"
    ))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b)?;
    Ok(b)
}

/// The SHA-256 initial state (FIPS 180-4, 5.3.3).
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn state_bytes(state: &[u32; 8], out: &mut [u8]) {
    for (i, w) in state.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
    }
}

/// SHA-256 of 32-byte messages that follow `prefix_blocks` 64-byte blocks already
/// absorbed into a state: one compression each, the padding written once. This is the
/// inner loop of both PBKDF2 and the PKCS#12 KDF, where a general hasher spends more
/// time on bookkeeping than on the hash. The buffers are wiped on drop.
struct Hash32 {
    state: [u32; 8],
    block: [u8; 64],
    scratch: [u32; 8],
}

impl Hash32 {
    fn new(state: &[u32; 8], prefix_blocks: u64) -> Self {
        let mut block = [0u8; 64];
        block[32] = 0x80;
        block[56..].copy_from_slice(&((prefix_blocks * 64 + 32) * 8).to_be_bytes());
        Hash32 {
            state: *state,
            block,
            scratch: [0; 8],
        }
    }

    fn run(&mut self, msg: &[u8; 32], out: &mut [u8; 32]) {
        self.block[..32].copy_from_slice(msg);
        self.scratch = self.state;
        sha2::compress256(
            &mut self.scratch,
            std::slice::from_ref(GenericArray::from_slice(&self.block[..])),
        );
        state_bytes(&self.scratch, out);
    }
}

impl Drop for Hash32 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.block.zeroize();
        self.scratch.zeroize();
    }
}

/// PBKDF2-HMAC-SHA-256 (RFC 8018 5.2) for one 32-byte block, over the password's UTF-8
/// bytes as PBES2 in PKCS#12 takes it. The HMAC pads are absorbed once; each iteration
/// is then two compressions.
fn pbkdf2_key(password: &str, salt: &[u8], iterations: u32) -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 64]);
    if password.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(password.as_bytes()));
    } else {
        k[..password.len()].copy_from_slice(password.as_bytes());
    }
    let pad = |x: u8| {
        let mut b = Zeroizing::new([0u8; 64]);
        for (d, s) in b.iter_mut().zip(k.iter()) {
            *d = s ^ x;
        }
        let mut st = Zeroizing::new(H0);
        sha2::compress256(
            &mut st,
            std::slice::from_ref(GenericArray::from_slice(&b[..])),
        );
        st
    };
    let (inner, outer) = (pad(0x36), pad(0x5c));
    // U1 = HMAC(P, S || INT(1)), with a general HMAC since the salt has any length
    let mut u = Zeroizing::new([0u8; 32]);
    {
        let mut m = Hmac::<Sha256>::new_from_slice(password.as_bytes()).expect("any key length");
        m.update(salt);
        m.update(&1u32.to_be_bytes());
        u.copy_from_slice(&m.finalize().into_bytes());
    }
    let mut t = Zeroizing::new(*u);
    let mut mid = Zeroizing::new([0u8; 32]);
    let (mut hi, mut ho) = (Hash32::new(&inner, 1), Hash32::new(&outer, 1));
    for _ in 1..iterations {
        hi.run(&u, &mut mid);
        ho.run(&mid, &mut u);
        for (x, y) in t.iter_mut().zip(u.iter()) {
            *x ^= y;
        }
    }
    t
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2) with SHA-256 (u = 32, v = 64),
/// `id` 1 for keys, 2 for IVs, 3 for MAC keys. The password enters as a BMPString with
/// its two-byte terminator.
fn pkcs12_kdf(
    password: &str,
    salt: &[u8],
    id: u8,
    iterations: u32,
    n: usize,
) -> Zeroizing<Vec<u8>> {
    const U: usize = 32;
    const V: usize = 64;
    let mut pass = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        pass.extend_from_slice(&unit.to_be_bytes());
    }
    pass.extend_from_slice(&[0, 0]);
    let stretch = |src: &[u8]| -> Zeroizing<Vec<u8>> {
        let len = src.len().div_ceil(V) * V;
        Zeroizing::new(src.iter().copied().cycle().take(len).collect())
    };
    let mut i = stretch(salt);
    i.extend_from_slice(&stretch(&pass));
    let d = [id; V];
    let mut out = Zeroizing::new(Vec::with_capacity(n.div_ceil(U) * U));
    loop {
        let mut h = Sha256::new();
        h.update(d);
        h.update(&*i);
        let mut a = Zeroizing::new([0u8; U]);
        h.finalize_into(GenericArray::from_mut_slice(&mut a[..]));
        let mut next = Zeroizing::new([0u8; U]);
        let mut h = Hash32::new(&H0, 0);
        for _ in 1..iterations {
            h.run(&a, &mut next);
            *a = *next;
        }
        out.extend_from_slice(&a[..]);
        if out.len() >= n {
            break;
        }
        // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I, B = A repeated.
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for block in i.chunks_mut(V) {
            let mut carry = 1u16;
            for k in (0..V).rev() {
                let s = block[k] as u16 + b[k] as u16 + carry;
                block[k] = s as u8;
                carry = s >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

/// Which derivation a remembered key came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kdf {
    Pbkdf2,
    Pkcs12Mac,
}

/// Keys derived while writing a file, kept so that the check which opens the same file
/// again with the same password does not derive them a second time. A derivation is a
/// pure function of (password, salt, iteration count); the reader takes salt and count
/// from the bytes it parses and gets a remembered key only when all three match, so
/// opening with a remembered key is the same computation as opening without one. What
/// the check proves about the file (it parses, its MAC holds, both envelopes decrypt to
/// exactly what went in) is unchanged; that our derivations agree with other
/// implementations is proven by the tests against OpenSSL and Java, which a second
/// run of the same code could not prove either. Wiped on drop.
#[derive(Default)]
pub struct Derived {
    password: Zeroizing<[u8; 32]>,
    keys: Vec<Remembered>,
}

struct Remembered {
    kdf: Kdf,
    salt: Vec<u8>,
    iterations: u32,
    key: Zeroizing<[u8; 32]>,
}

impl Derived {
    /// The key for these inputs: remembered, or derived by `f` and remembered.
    fn key(
        &mut self,
        password: &str,
        kdf: Kdf,
        salt: &[u8],
        iterations: u32,
        f: impl FnOnce() -> Zeroizing<[u8; 32]>,
    ) -> Zeroizing<[u8; 32]> {
        let mut tag = Zeroizing::new([0u8; 32]);
        tag.copy_from_slice(&Sha256::digest(password.as_bytes()));
        if self.keys.is_empty() {
            self.password = tag.clone();
        } else if !openssl::memcmp::eq(&self.password[..], &tag[..]) {
            // another password: nothing remembered applies
            return f();
        }
        if let Some(r) = self
            .keys
            .iter()
            .find(|r| r.kdf == kdf && r.salt == salt && r.iterations == iterations)
        {
            return r.key.clone();
        }
        let key = f();
        self.keys.push(Remembered {
            kdf,
            salt: salt.to_vec(),
            iterations,
            key: key.clone(),
        });
        key
    }
}

fn mac(
    password: &str,
    salt: &[u8],
    iterations: u32,
    data: &[u8],
    derived: &mut Derived,
) -> Result<[u8; 32]> {
    let key = derived.key(password, Kdf::Pkcs12Mac, salt, iterations, || {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&pkcs12_kdf(password, salt, 3, iterations, 32));
        k
    });
    let mut m = Hmac::<Sha256>::new_from_slice(&key[..])
        .map_err(|_| PkiError::Invalid("HMAC key".into()))?;
    m.update(data);
    Ok(m.finalize().into_bytes().into())
}

/// Encrypts under PBES2; returns the AlgorithmIdentifier and the ciphertext.
fn pbes2_encrypt(
    password: &str,
    plaintext: &[u8],
    derived: &mut Derived,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let salt: [u8; SALT_LEN] = random()?;
    let iv: [u8; 16] = random()?;
    let key = derived.key(password, Kdf::Pbkdf2, &salt, ITERATIONS, || {
        pbkdf2_key(password, &salt, ITERATIONS)
    });
    let ct = encrypt(Cipher::aes_256_cbc(), key.as_ref(), Some(&iv), plaintext)?;
    let prf = der::seq(&[&der::oid(oids::HMAC_SHA256), &der::null()]);
    let kdf_params = der::seq(&[&der::octets(&salt), &der::uint(ITERATIONS), &prf]);
    let kdf = der::seq(&[&der::oid(oids::PBKDF2), &kdf_params]);
    let scheme = der::seq(&[&der::oid(oids::AES256_CBC), &der::octets(&iv)]);
    let alg = der::seq(&[&der::oid(oids::PBES2), &der::seq(&[&kdf, &scheme])]);
    Ok((alg, ct))
}

/// Decrypts a PBES2 envelope whose AlgorithmIdentifier is read from `alg`.
fn pbes2_decrypt(
    password: &str,
    alg: &[u8],
    ct: &[u8],
    derived: &mut Derived,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut alg = Reader::new(alg);
    if alg.oid("an encryption algorithm")? != oids::PBES2 {
        return Err(unsupported("an encryption scheme other than PBES2"));
    }
    let mut params = alg.sequence("PBES2 parameters")?;
    let mut kdf = params.sequence("a key derivation function")?;
    if kdf.oid("a key derivation function")? != oids::PBKDF2 {
        return Err(unsupported("a key derivation other than PBKDF2"));
    }
    let mut kp = kdf.sequence("PBKDF2 parameters")?;
    let salt = kp.expect(der::OCTET_STRING, "a PBKDF2 salt")?;
    let iterations = kp.uint("a PBKDF2 iteration count")?;
    if kp.peek_tag() == Some(der::INTEGER) && kp.uint("a PBKDF2 key length")? != 32 {
        return Err(unsupported("a key length other than 32 bytes"));
    }
    // The PRF defaults to HMAC-SHA-1 when absent.
    if kp.is_empty() {
        return Err(unsupported("HMAC-SHA-1"));
    }
    let mut prf = kp.sequence("a PBKDF2 PRF")?;
    if prf.oid("a PBKDF2 PRF")? != oids::HMAC_SHA256 {
        return Err(unsupported("a PBKDF2 PRF other than HMAC-SHA-256"));
    }
    let mut scheme = params.sequence("an encryption scheme")?;
    if scheme.oid("an encryption scheme")? != oids::AES256_CBC {
        return Err(unsupported("a cipher other than AES-256-CBC"));
    }
    let iv = scheme.expect(der::OCTET_STRING, "an IV")?;
    if iv.len() != 16 || iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(unsupported("out-of-range PBES2 parameters"));
    }
    let key = derived.key(password, Kdf::Pbkdf2, salt, iterations, || {
        pbkdf2_key(password, salt, iterations)
    });
    // A wrong key shows as bad padding: the MAC already vouched for the password.
    decrypt(Cipher::aes_256_cbc(), key.as_ref(), Some(iv), ct)
        .map(Zeroizing::new)
        .map_err(|_| PkiError::PfxPassword)
}

fn attributes(friendly_name: &str, local_key_id: &[u8]) -> Vec<u8> {
    let attr = |id: &[u8], value: Vec<u8>| der::seq(&[&der::oid(id), &der::set_of(vec![value])]);
    der::set_of(vec![
        attr(oids::FRIENDLY_NAME, der::bmp(friendly_name)),
        attr(oids::LOCAL_KEY_ID, der::octets(local_key_id)),
    ])
}

fn cert_bag(cert_der: &[u8], attrs: Option<&[u8]>) -> Vec<u8> {
    let value = der::seq(&[
        &der::oid(oids::X509_CERTIFICATE),
        &der::explicit0(&der::octets(cert_der)),
    ]);
    let body = der::explicit0(&value);
    match attrs {
        Some(a) => der::seq(&[&der::oid(oids::CERT_BAG), &body, a]),
        None => der::seq(&[&der::oid(oids::CERT_BAG), &body]),
    }
}

/// Writes a PFX holding a private key (PKCS#8 DER), its certificate (both named
/// `friendly_name` and tied by a local key id, the SHA-1 of the certificate as OpenSSL
/// does) and the chain (DER, in order).
pub fn write(
    pkcs8: &[u8],
    cert_der: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
    derived: &mut Derived,
) -> Result<Vec<u8>> {
    let local_key_id = openssl::sha::sha1(cert_der);
    let attrs = attributes(friendly_name, &local_key_id);

    let mut bags = vec![cert_bag(cert_der, Some(&attrs))];
    for c in chain {
        bags.push(cert_bag(c, None));
    }
    let certs = der::tlv(der::SEQUENCE, &bags.concat());
    let (alg, ct) = pbes2_encrypt(password, &certs, derived)?;
    let enc_content_info =
        der::seq(&[&der::oid(oids::DATA), &alg, &der::tlv(der::IMPLICIT_0, &ct)]);
    let encrypted_data = der::seq(&[&der::uint(0), &enc_content_info]);
    let certs_ci = der::seq(&[
        &der::oid(oids::ENCRYPTED_DATA),
        &der::explicit0(&encrypted_data),
    ]);

    let (alg, ct) = pbes2_encrypt(password, pkcs8, derived)?;
    let epki = der::seq(&[&alg, &der::octets(&ct)]);
    let key_bag = der::seq(&[
        &der::oid(oids::SHROUDED_KEY_BAG),
        &der::explicit0(&epki),
        &attrs,
    ]);
    let keys = der::seq(&[&key_bag]);
    let key_ci = der::seq(&[&der::oid(oids::DATA), &der::explicit0(&der::octets(&keys))]);

    let auth_safe = der::seq(&[&certs_ci, &key_ci]);
    let mac_salt: [u8; SALT_LEN] = random()?;
    let digest = mac(password, &mac_salt, ITERATIONS, &auth_safe, derived)?;
    let mac_data = der::seq(&[
        &der::seq(&[
            &der::seq(&[&der::oid(oids::SHA256), &der::null()]),
            &der::octets(&digest),
        ]),
        &der::octets(&mac_salt),
        &der::uint(ITERATIONS),
    ]);
    let auth_ci = der::seq(&[
        &der::oid(oids::DATA),
        &der::explicit0(&der::octets(&auth_safe)),
    ]);
    Ok(der::seq(&[&der::uint(3), &auth_ci, &mac_data]))
}

/// A certificate found in a PFX, with its local key id when it has one.
pub struct FoundCert {
    pub der: Vec<u8>,
    pub local_key_id: Option<Vec<u8>>,
}

/// What [`read`] found.
pub struct Contents {
    /// The private key as PKCS#8 DER, decrypted.
    pub key_pkcs8: Option<Zeroizing<Vec<u8>>>,
    pub key_local_id: Option<Vec<u8>>,
    pub certs: Vec<FoundCert>,
}

/// Opens a PFX in the modern profile: checks the MAC with `password` and decrypts the
/// bags. The key and certificates come back as DER, unparsed.
pub fn read(pfx: &[u8], password: &str) -> Result<Contents> {
    read_with(pfx, password, &mut Derived::default())
}

/// [`read`], taking keys already derived for this password, salt and count from
/// `derived` (see [`Derived`]).
pub fn read_with(pfx: &[u8], password: &str, derived: &mut Derived) -> Result<Contents> {
    let mut top = Reader::new(pfx);
    let mut p = top.sequence("a PFX")?;
    top.end("the PFX")?;
    if p.uint("the PFX version")? != 3 {
        return Err(unsupported("a PFX version other than 3"));
    }
    let mut ci = p.sequence("the authenticated safe")?;
    if ci.oid("the authenticated safe")? != oids::DATA {
        return Err(unsupported("public-key integrity mode"));
    }
    let mut wrapped = Reader::new(ci.expect(der::EXPLICIT_0, "the authenticated safe")?);
    let auth_safe = wrapped.expect(der::OCTET_STRING, "the authenticated safe")?;

    let mut md = p.sequence("MAC data").map_err(|_| unsupported("no MAC"))?;
    let mut digest_info = md.sequence("the MAC")?;
    let mut alg = digest_info.sequence("the MAC algorithm")?;
    if alg.oid("the MAC algorithm")? != oids::SHA256 {
        return Err(unsupported("a MAC other than HMAC-SHA-256"));
    }
    let expected = digest_info.expect(der::OCTET_STRING, "the MAC")?;
    let salt = md.expect(der::OCTET_STRING, "the MAC salt")?;
    let iterations = if md.is_empty() {
        1
    } else {
        md.uint("the MAC iteration count")?
    };
    if iterations == 0 || iterations > MAX_ITERATIONS {
        return Err(unsupported("an out-of-range MAC iteration count"));
    }
    let actual = mac(password, salt, iterations, auth_safe, derived)?;
    if expected.len() != actual.len() || !openssl::memcmp::eq(expected, &actual) {
        return Err(PkiError::PfxPassword);
    }

    let mut out = Contents {
        key_pkcs8: None,
        key_local_id: None,
        certs: Vec::new(),
    };
    let mut safes = Reader::new(auth_safe).sequence("the authenticated safe")?;
    while !safes.is_empty() {
        let mut ci = safes.sequence("a content info")?;
        let kind = ci.oid("a content type")?;
        let mut body = Reader::new(ci.expect(der::EXPLICIT_0, "content")?);
        if kind == oids::DATA {
            let contents = body.expect(der::OCTET_STRING, "safe contents")?;
            read_bags(contents, password, &mut out, derived)?;
        } else if kind == oids::ENCRYPTED_DATA {
            let mut ed = body.sequence("encrypted data")?;
            ed.uint("the encrypted data version")?;
            let mut eci = ed.sequence("encrypted content")?;
            if eci.oid("the encrypted content type")? != oids::DATA {
                return Err(unsupported("encrypted content that is not data"));
            }
            let alg = eci.expect(der::SEQUENCE, "an encryption algorithm")?;
            let ct = eci.expect(der::IMPLICIT_0, "the encrypted content")?;
            let contents = pbes2_decrypt(password, alg, ct, derived)?;
            read_bags(&contents, password, &mut out, derived)?;
        } else {
            return Err(unsupported("enveloped (public-key) privacy mode"));
        }
    }
    Ok(out)
}

fn read_bags(
    contents: &[u8],
    password: &str,
    out: &mut Contents,
    derived: &mut Derived,
) -> Result<()> {
    let mut bags = Reader::new(contents).sequence("safe contents")?;
    while !bags.is_empty() {
        let mut bag = bags.sequence("a safe bag")?;
        let id = bag.oid("a bag type")?;
        let mut value = Reader::new(bag.expect(der::EXPLICIT_0, "a bag value")?);
        let mut local_key_id = None;
        if let Some(set) = bag.optional(der::SET)? {
            let mut attrs = Reader::new(set);
            while !attrs.is_empty() {
                let mut a = attrs.sequence("a bag attribute")?;
                if a.oid("an attribute type")? == oids::LOCAL_KEY_ID {
                    let mut values = Reader::new(a.expect(der::SET, "attribute values")?);
                    local_key_id =
                        Some(values.expect(der::OCTET_STRING, "a local key id")?.to_vec());
                }
            }
        }
        if id == oids::CERT_BAG {
            let mut cb = value.sequence("a certificate bag")?;
            if cb.oid("a certificate type")? != oids::X509_CERTIFICATE {
                return Err(unsupported("a certificate that is not X.509"));
            }
            let mut v = Reader::new(cb.expect(der::EXPLICIT_0, "a certificate")?);
            let der = v.expect(der::OCTET_STRING, "a certificate")?.to_vec();
            out.certs.push(FoundCert { der, local_key_id });
        } else if id == oids::SHROUDED_KEY_BAG {
            if out.key_pkcs8.is_some() {
                return Err(unsupported("more than one private key"));
            }
            let mut epki = value.sequence("an encrypted private key")?;
            let alg = epki.expect(der::SEQUENCE, "an encryption algorithm")?;
            let ct = epki.expect(der::OCTET_STRING, "an encrypted private key")?;
            out.key_pkcs8 = Some(pbes2_decrypt(password, alg, ct, derived)?);
            out.key_local_id = local_key_id;
        } else {
            return Err(unsupported(
                "a bag type other than certificate or shrouded key",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs12_kdf_matches_known_answers() {
        // Values computed by OpenSSL's PKCS12_key_gen_utf8 with SHA-256.
        let salt = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let k = pkcs12_kdf("ge@äheim", &salt, 1, 100, 32);
        assert_eq!(
            hex(&k),
            "fae4d4957a3cc781e1180b9d4fb79c1e0c8579b746a3177e5b0768a3118bf863"
        );
        let m = pkcs12_kdf("ge@äheim", &salt, 3, 100, 32);
        assert_eq!(
            hex(&m),
            "136355ed9434516682534f46d63956db5ff06b844702c2c1f3b46321e2524a4d"
        );
        // Longer than one hash: the second block exercises the I-update step.
        let long = pkcs12_kdf("ge@äheim", &salt, 1, 100, 100);
        assert_eq!(&long[..32], &k[..]);
        assert_eq!(long.len(), 100);
    }

    unsafe extern "C" {
        fn PKCS12_key_gen_utf8(
            pass: *const std::ffi::c_char,
            passlen: std::ffi::c_int,
            salt: *mut u8,
            saltlen: std::ffi::c_int,
            id: std::ffi::c_int,
            iter: std::ffi::c_int,
            n: std::ffi::c_int,
            out: *mut u8,
            md_type: *const openssl_sys::EVP_MD,
        ) -> std::ffi::c_int;
    }

    /// OpenSSL's own PKCS#12 KDF, as the judge of ours.
    fn openssl_kdf(pass: &str, salt: &[u8], id: u8, iter: u32, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut salt = salt.to_vec();
        // SAFETY: the pointers and lengths describe live buffers for the whole call;
        // EVP_sha256 returns a static digest. OpenSSL writes exactly `n` bytes.
        let ok = unsafe {
            PKCS12_key_gen_utf8(
                pass.as_ptr().cast(),
                pass.len() as _,
                salt.as_mut_ptr(),
                salt.len() as _,
                id as _,
                iter as _,
                n as _,
                out.as_mut_ptr(),
                openssl_sys::EVP_sha256(),
            )
        };
        assert_eq!(ok, 1);
        out
    }

    #[test]
    fn pbkdf2_agrees_with_openssl() {
        let long = "p".repeat(100);
        for (pass, salt, iter) in [
            ("pw", &[1u8; 16][..], 2048u32),
            ("", &[2u8; 8][..], 1),
            (
                "exactly-sixty-four-bytes-long-password-0123456789-abcdefghijklm",
                &[3u8; 70][..],
                3,
            ),
            (long.as_str(), &[][..], 5),
            ("ünïcödé", &[4u8; 16][..], 2),
        ] {
            let mut theirs = [0u8; 32];
            openssl::pkcs5::pbkdf2_hmac(
                pass.as_bytes(),
                salt,
                iter as usize,
                openssl::hash::MessageDigest::sha256(),
                &mut theirs,
            )
            .unwrap();
            assert_eq!(*pbkdf2_key(pass, salt, iter), theirs, "{pass:?} {iter}");
        }
    }

    #[test]
    fn pkcs12_kdf_agrees_with_openssl() {
        for (pass, salt, id, iter, n) in [
            ("pw", &[9u8; 8][..], 3u8, 2048u32, 32usize),
            ("", &[1u8; 16][..], 1, 1, 32),
            (
                "a much longer password that spans more than one block",
                &[3u8; 20][..],
                1,
                7,
                100,
            ),
            ("ünïcödé", &[5u8; 64][..], 2, 3, 16),
        ] {
            assert_eq!(
                &pkcs12_kdf(pass, salt, id, iter, n)[..],
                &openssl_kdf(pass, salt, id, iter, n)[..],
                "{pass:?} {n}"
            );
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
