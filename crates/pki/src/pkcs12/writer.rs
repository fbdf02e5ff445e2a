//! OpenSSL writes every PFX: `PKCS12_create` for the key and certificate bags (friendly
//! name and local key id on the key and on its certificate), then one MAC, either the
//! classic HMAC (`PKCS12_set_mac`, with a 16-byte salt) or the RFC 9579 PBMAC1
//! (`PKCS12_set_pbmac1_pbkdf2`, OpenSSL 3.4 or later). The `openssl` crate's builder would
//! compute the MAC twice (once in `PKCS12_create`, once more to set its digest), and a MAC
//! is a quarter of what a PFX costs; the two calls are made here directly instead.

use std::ffi::{CString, c_int};

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::StackRef;
use openssl::x509::{X509, X509Ref};

use super::{ITERATIONS, PfxCompat};
use crate::{PkiError, Result};

/// Length of every salt we ask OpenSSL for (the MAC's; the bags' are OpenSSL's default,
/// 16 bytes from OpenSSL 3.2 on, 8 before).
const SALT_LEN: c_int = 16;

#[cfg(ossl340)]
unsafe extern "C" {
    /// OpenSSL 3.4+ (`libcrypto.num`: `PKCS12_set_pbmac1_pbkdf2 ... 3_4_0`), not bound by
    /// openssl-sys. Replaces the PFX's MAC with PBMAC1: PBKDF2 with the PRF named
    /// `prf_md_name` derives the key of an HMAC with `md_type`. With `salt` NULL it draws
    /// `saltlen` random bytes; a `saltlen` of 0 makes it fail without an error on the stack.
    fn PKCS12_set_pbmac1_pbkdf2(
        p12: *mut openssl_sys::PKCS12,
        pass: *const std::ffi::c_char,
        passlen: c_int,
        salt: *mut std::ffi::c_uchar,
        saltlen: c_int,
        iter: c_int,
        md_type: *const openssl_sys::EVP_MD,
        prf_md_name: *const std::ffi::c_char,
    ) -> c_int;
}

/// OpenSSL's version as "3.0.19".
pub fn openssl_version() -> String {
    let n = openssl::version::number();
    format!(
        "{}.{}.{}",
        (n >> 28) & 0xf,
        (n >> 20) & 0xff,
        (n >> 4) & 0xff
    )
}

/// Refuses the pbmac1 profile when the linked OpenSSL predates PBMAC1 (3.4): checked at
/// run time, and at build time by the headers (build.rs), which decide whether the call
/// is compiled in at all.
pub fn pbmac1_available() -> Result<()> {
    if cfg!(ossl340) && openssl::version::number() >= 0x3040_0000 {
        return Ok(());
    }
    Err(PkiError::OpenSslTooOld {
        what: "pbmac1 PFX target",
        needs: "3.4",
        have: openssl_version(),
    })
}

fn check(rc: c_int) -> Result<()> {
    if rc == 1 {
        return Ok(());
    }
    let stack = openssl::error::ErrorStack::get();
    if stack.errors().is_empty() {
        return Err(PkiError::Invalid(
            "OpenSSL could not set the PFX's MAC".into(),
        ));
    }
    Err(stack.into())
}

/// Writes the PFX: `key`, `cert` and `chain` under `name`, encrypted and MACed as
/// `compat` says, [`ITERATIONS`] for every derivation.
pub fn write(
    key: &PKeyRef<Private>,
    cert: &X509Ref,
    chain: &StackRef<X509>,
    name: &str,
    password: &str,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    let invalid = |what: &str| PkiError::Invalid(format!("a PFX {what} cannot contain a NUL byte"));
    let pass = CString::new(password).map_err(|_| invalid("password"))?;
    let name = CString::new(name).map_err(|_| invalid("friendly name"))?;
    let passlen = c_int::try_from(password.len()).map_err(|_| invalid("password"))?;
    let (nid, md) = match compat {
        PfxCompat::Legacy => (
            Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC,
            openssl::hash::MessageDigest::sha1(),
        ),
        PfxCompat::Modern | PfxCompat::Pbmac1 => {
            (Nid::AES_256_CBC, openssl::hash::MessageDigest::sha256())
        }
    };
    let iter = ITERATIONS as c_int;
    // SAFETY: every pointer is valid for the call: the two C strings live to the end of
    // this function, key, cert and chain are borrowed OpenSSL objects that PKCS12_create
    // only reads (it takes its own references). A mac_iter of -1 asks for no MAC yet.
    let raw = unsafe {
        openssl_sys::PKCS12_create(
            pass.as_ptr(),
            name.as_ptr(),
            key.as_ptr(),
            cert.as_ptr(),
            chain.as_ptr(),
            nid.as_raw(),
            nid.as_raw(),
            iter,
            -1,
            0,
        )
    };
    if raw.is_null() {
        return Err(openssl::error::ErrorStack::get().into());
    }
    // SAFETY: PKCS12_create returned a new PKCS12 that nothing else owns; Pkcs12 frees it.
    let p12 = unsafe { Pkcs12::from_ptr(raw) };
    let rc = match compat {
        PfxCompat::Pbmac1 => set_pbmac1(&p12, &pass, passlen, iter, md)?,
        // SAFETY: p12 is a valid PKCS12 owned above; pass is a C string of passlen bytes;
        // a NULL salt makes OpenSSL draw SALT_LEN random bytes; md is a static digest.
        _ => unsafe {
            openssl_sys::PKCS12_set_mac(
                p12.as_ptr(),
                pass.as_ptr(),
                passlen,
                std::ptr::null_mut(),
                SALT_LEN,
                iter,
                md.as_ptr(),
            )
        },
    };
    check(rc)?;
    Ok(p12.to_der()?)
}

#[cfg(ossl340)]
fn set_pbmac1(
    p12: &Pkcs12,
    pass: &CString,
    passlen: c_int,
    iter: c_int,
    md: openssl::hash::MessageDigest,
) -> Result<c_int> {
    pbmac1_available()?;
    // SAFETY: as for PKCS12_set_mac: p12 is a valid PKCS12, pass a C string of passlen
    // bytes, the salt NULL with a non-zero length (OpenSSL draws it), md a static digest
    // and the PRF name a static C string; the symbol exists, since the headers are 3.4+
    // and the run-time version was checked above.
    Ok(unsafe {
        PKCS12_set_pbmac1_pbkdf2(
            p12.as_ptr(),
            pass.as_ptr(),
            passlen,
            std::ptr::null_mut(),
            SALT_LEN,
            iter,
            md.as_ptr(),
            c"sha256".as_ptr(),
        )
    })
}

#[cfg(not(ossl340))]
fn set_pbmac1(
    _: &Pkcs12,
    _: &CString,
    _: c_int,
    _: c_int,
    _: openssl::hash::MessageDigest,
) -> Result<c_int> {
    pbmac1_available().map(|()| 0)
}
