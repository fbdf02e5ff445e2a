//! OCSP (RFC 6960): reading requests and signing responses, both by OpenSSL's OCSP code
//! (the `openssl` crate parses and wraps the objects; the builder functions it does not
//! bind are declared here and wrapped in safe functions). The delegated responder
//! certificate is built by rcgen. No ASN.1 of our own.

use std::ffi::{c_int, c_ulong, c_void};

use der::Encode;
use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::asn1::{Asn1IntegerRef, Asn1ObjectRef, Asn1StringRef, Asn1Time};
use openssl::hash::{MessageDigest, hash};
use openssl::nid::Nid;
use openssl::ocsp::{OcspBasicResponse, OcspRequest, OcspResponse, OcspResponseStatus};
use openssl::x509::X509;
use rcgen::{
    CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::cert::{Built, CLOCK_SKEW, Signer, whole_seconds};
use super::keys::PrivateKey;
use super::{PkiError, Result};

unsafe extern "C" {
    // libcrypto (ocsp.h), linked through openssl-sys, which does not bind these.
    fn OCSP_request_onereq_count(req: *mut openssl_sys::OCSP_REQUEST) -> c_int;
    fn OCSP_request_onereq_get0(
        req: *mut openssl_sys::OCSP_REQUEST,
        i: c_int,
    ) -> *mut openssl_sys::OCSP_ONEREQ;
    fn OCSP_onereq_get0_id(one: *mut openssl_sys::OCSP_ONEREQ) -> *mut openssl_sys::OCSP_CERTID;
    fn OCSP_id_get0_info(
        name_hash: *mut *mut openssl_sys::ASN1_STRING,
        md: *mut *mut openssl_sys::ASN1_OBJECT,
        key_hash: *mut *mut openssl_sys::ASN1_STRING,
        serial: *mut *mut openssl_sys::ASN1_INTEGER,
        cid: *mut openssl_sys::OCSP_CERTID,
    ) -> c_int;
    fn OCSP_basic_add1_status(
        rsp: *mut openssl_sys::OCSP_BASICRESP,
        cid: *mut openssl_sys::OCSP_CERTID,
        status: c_int,
        reason: c_int,
        revtime: *mut openssl_sys::ASN1_TIME,
        thisupd: *mut openssl_sys::ASN1_TIME,
        nextupd: *mut openssl_sys::ASN1_TIME,
    ) -> *mut c_void;
    fn OCSP_copy_nonce(
        resp: *mut openssl_sys::OCSP_BASICRESP,
        req: *mut openssl_sys::OCSP_REQUEST,
    ) -> c_int;
    fn OCSP_basic_sign(
        brsp: *mut openssl_sys::OCSP_BASICRESP,
        signer: *mut openssl_sys::X509,
        key: *mut openssl_sys::EVP_PKEY,
        dgst: *const openssl_sys::EVP_MD,
        certs: *mut openssl_sys::stack_st_X509,
        flags: c_ulong,
    ) -> c_int;
}

/// The most certificates one request may ask about (RFC 5019 clients ask about one).
pub const MAX_IDS: usize = 16;

/// One certificate a request asks about.
#[derive(Clone, Debug)]
pub struct CertId {
    /// Lowercase hex, sign byte stripped, as the workspace records serials.
    pub serial: String,
    hash: Nid,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

/// A parsed OCSP request.
pub struct Request {
    req: OcspRequest,
    pub ids: Vec<CertId>,
}

/// Why a request cannot be answered with statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not an OCSP request, or one asking about nothing or too much.
    Malformed,
    /// It asks about a CA this responder does not serve.
    Unauthorized,
    /// Something failed on our side.
    Internal,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformedRequest",
            Refusal::Unauthorized => "unauthorized",
            Refusal::Internal => "internalError",
        }
    }

    /// The unsigned error response (RFC 6960 4.2.1) for this refusal, DER.
    pub fn response(self) -> Vec<u8> {
        let status = match self {
            Refusal::Malformed => OcspResponseStatus::MALFORMED_REQUEST,
            Refusal::Unauthorized => OcspResponseStatus::UNAUTHORIZED,
            Refusal::Internal => OcspResponseStatus::INTERNAL_ERROR,
        };
        OcspResponse::create(status, None)
            .and_then(|r| r.to_der())
            .unwrap_or_default()
    }
}

/// Parses a DER OCSP request; None for anything that is not one, asks about no
/// certificate or about more than [`MAX_IDS`].
pub fn parse_request(der: &[u8]) -> Option<Request> {
    let req = OcspRequest::from_der(der).ok()?;
    let n = unsafe { OCSP_request_onereq_count(req.as_ptr()) };
    if n < 1 || n as usize > MAX_IDS {
        return None;
    }
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        // SAFETY: i < count; the pointers borrow from `req`, which outlives this loop
        let id = unsafe { OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.as_ptr(), i)) };
        if id.is_null() {
            return None;
        }
        let mut name = std::ptr::null_mut();
        let mut md = std::ptr::null_mut();
        let mut key = std::ptr::null_mut();
        let mut serial = std::ptr::null_mut();
        let ok = unsafe { OCSP_id_get0_info(&mut name, &mut md, &mut key, &mut serial, id) };
        if ok != 1 || name.is_null() || md.is_null() || key.is_null() || serial.is_null() {
            return None;
        }
        // SAFETY: non-null pointers into the request, valid while it lives
        let (name, md, key, serial) = unsafe {
            (
                Asn1StringRef::from_ptr(name),
                Asn1ObjectRef::from_ptr(md),
                Asn1StringRef::from_ptr(key),
                Asn1IntegerRef::from_ptr(serial),
            )
        };
        let bn = serial.to_bn().ok()?;
        let hex = bn.to_hex_str().ok()?.to_ascii_lowercase();
        ids.push(CertId {
            serial: hex.trim_start_matches('0').to_string(),
            hash: md.nid(),
            name_hash: name.as_slice().to_vec(),
            key_hash: key.as_slice().to_vec(),
        });
    }
    Some(Request { req, ids })
}

/// A CA as an OCSP request names it: the hashes of its subject and of its public key.
#[derive(Clone, Debug)]
pub struct IssuerHashes {
    name_der: Vec<u8>,
    key_bits: Vec<u8>,
    sha1: (Vec<u8>, Vec<u8>),
}

impl IssuerHashes {
    pub fn of(ca_der: &[u8]) -> Result<IssuerHashes> {
        let (_, c) = x509_parser::parse_x509_certificate(ca_der)
            .map_err(|e| PkiError::Parse(format!("CA certificate: {e}")))?;
        let name_der = c.subject().as_raw().to_vec();
        let key_bits = c.public_key().subject_public_key.data.to_vec();
        let sha1 = (
            hash(MessageDigest::sha1(), &name_der)?.to_vec(),
            hash(MessageDigest::sha1(), &key_bits)?.to_vec(),
        );
        Ok(IssuerHashes {
            name_der,
            key_bits,
            sha1,
        })
    }

    /// Whether `id` names this CA (SHA-1, as RFC 5019 asks, or SHA-256/384/512).
    pub fn matches(&self, id: &CertId) -> bool {
        if id.hash == Nid::SHA1 {
            return self.sha1.0 == id.name_hash && self.sha1.1 == id.key_hash;
        }
        let md = match id.hash {
            Nid::SHA256 => MessageDigest::sha256(),
            Nid::SHA384 => MessageDigest::sha384(),
            Nid::SHA512 => MessageDigest::sha512(),
            _ => return false,
        };
        let h = |d: &[u8]| hash(md, d).map(|x| x.to_vec()).unwrap_or_default();
        h(&self.name_der) == id.name_hash && h(&self.key_bits) == id.key_hash
    }
}

/// The status of one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    /// With the revocation time and the RFC 5280 reason code (None: unspecified, left
    /// out as RFC 5280 5.3.1 asks).
    Revoked {
        at: OffsetDateTime,
        reason: Option<u8>,
    },
    Unknown,
}

/// A delegated responder: its certificate (signed by the CA it answers for) and key.
pub struct Responder {
    pub cert: X509,
    pub key: PrivateKey,
    pub not_after: OffsetDateTime,
}

fn asn1_time(t: OffsetDateTime) -> Result<Asn1Time> {
    Ok(Asn1Time::from_unix(t.unix_timestamp())?)
}

/// Signs the response to `req`: one status per id (`statuses`, in order), thisUpdate
/// `this_update`, nextUpdate `next_update`, the request's nonce echoed, signed with
/// SHA-256 by `responder`, whose certificate travels in the response. DER.
pub fn respond(
    req: &Request,
    statuses: &[Status],
    responder: &Responder,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<Vec<u8>> {
    if statuses.len() != req.ids.len() {
        return Err(PkiError::Invalid(
            "one status per certificate asked about".into(),
        ));
    }
    // SAFETY: a fresh object, owned (and freed) by `bs`
    let bs = unsafe {
        let p = openssl_sys::OCSP_BASICRESP_new();
        if p.is_null() {
            return Err(openssl::error::ErrorStack::get().into());
        }
        OcspBasicResponse::from_ptr(p)
    };
    let thisupd = asn1_time(this_update)?;
    let nextupd = asn1_time(next_update)?;
    for (i, st) in statuses.iter().enumerate() {
        let (code, reason, mut rev) = match st {
            Status::Good => (0, -1, None),
            Status::Revoked { at, reason } => (
                1,
                reason.map(c_int::from).unwrap_or(-1),
                Some(asn1_time(*at)?),
            ),
            Status::Unknown => (2, -1, None),
        };
        let revp = rev
            .as_mut()
            .map(|t| t.as_ptr())
            .unwrap_or(std::ptr::null_mut());
        // SAFETY: the id borrows from the request (OpenSSL copies it); the times are
        // copied too
        let single = unsafe {
            let id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req.req.as_ptr(), i as c_int));
            OCSP_basic_add1_status(
                bs.as_ptr(),
                id,
                code,
                reason,
                revp,
                thisupd.as_ptr(),
                nextupd.as_ptr(),
            )
        };
        if single.is_null() {
            return Err(openssl::error::ErrorStack::get().into());
        }
    }
    // 1: copied, 2: the request had none; anything else is an error
    let n = unsafe { OCSP_copy_nonce(bs.as_ptr(), req.req.as_ptr()) };
    if n != 1 && n != 2 {
        return Err(openssl::error::ErrorStack::get().into());
    }
    // SAFETY: borrowed pointers; OpenSSL takes its own references
    let ok = unsafe {
        OCSP_basic_sign(
            bs.as_ptr(),
            responder.cert.as_ptr(),
            responder.key.pkey().as_ptr(),
            MessageDigest::sha256().as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    if ok != 1 {
        return Err(openssl::error::ErrorStack::get().into());
    }
    Ok(OcspResponse::create(OcspResponseStatus::SUCCESSFUL, Some(&bs))?.to_der()?)
}

/// Whether the request carries a nonce (so the response echoes it).
pub fn has_nonce(req: &Request) -> bool {
    // OCSP_check_nonce needs a response; a dry copy into a scratch response tells
    unsafe {
        let p = openssl_sys::OCSP_BASICRESP_new();
        if p.is_null() {
            return false;
        }
        let bs = OcspBasicResponse::from_ptr(p);
        OCSP_copy_nonce(bs.as_ptr(), req.req.as_ptr()) == 1
    }
}

/// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1), its value an ASN.1 NULL.
const NOCHECK_OID: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// A delegated OCSP responder certificate for `key`, signed by the CA `signer`: EKU
/// OCSPSigning, keyUsage digitalSignature, id-pkix-ocsp-nocheck (relying parties do not
/// check the responder's own revocation, so it must be short-lived), AKI and SKI,
/// valid for `validity` (clipped to the CA). Its subject is the CA's CN with
/// " OCSP Responder".
pub fn responder_cert(
    signer: &Signer,
    key: &PrivateKey,
    validity: Duration,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Built> {
    let now = whole_seconds(now);
    if signer.not_after <= now {
        return Err(PkiError::CaExpired {
            not_after: signer.not_after,
        });
    }
    let (_, ca) = x509_parser::parse_x509_certificate(&signer.cert_der)
        .map_err(|e| PkiError::Parse(format!("CA certificate: {e}")))?;
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("CA")
        .to_string();
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, format!("{cn} OCSP Responder"));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    let null = der::asn1::Null
        .to_der()
        .map_err(|e| PkiError::Invalid(format!("ocsp-nocheck: {e}")))?;
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&NOCHECK_OID, null));
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - CLOCK_SKEW;
    p.not_after = (now + validity).min(signer.not_after);
    p.serial_number = Some(SerialNumber::from_slice(serial));
    let cert = p.signed_by(&key.to_rcgen()?, &signer.issuer)?;
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

    #[test]
    fn garbage_is_no_request() {
        assert!(parse_request(b"not der").is_none());
        assert!(parse_request(&[0x30, 0x00]).is_none());
        let r = Refusal::Malformed.response();
        let back = OcspResponse::from_der(&r).unwrap();
        assert_eq!(back.status(), OcspResponseStatus::MALFORMED_REQUEST);
    }
}
