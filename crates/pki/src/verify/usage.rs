//! What the leaf may be used for: its extendedKeyUsage against the purpose, and whether
//! it is an end-entity certificate at all.

use x509_parser::certificate::X509Certificate;

use super::finding::{Detail, Finding};
use super::{Cert, Checks, Code, Purpose};

/// The leaf's EKU lacks the purpose (OpenSSL's verdict and our own check both use it).
pub(super) fn wrong_eku(leaf: &Cert, purpose: Purpose) -> Finding {
    let detail = Detail::WrongEku {
        has: leaf.info.extended_key_usage.clone(),
        purpose,
    };
    Finding::new(Code::WrongEku, Some(leaf.r()), detail)
}

/// A client or server must present an end-entity certificate.
pub(super) fn leaf_is_ca(k: &Checks, x: &X509Certificate<'_>) -> Option<Finding> {
    let p = k.inp.purpose;
    (p != Purpose::Any && x.is_ca())
        .then(|| Finding::new(Code::LeafIsCa, Some(k.chain[0].r()), Detail::Purpose(p)))
}

/// The EKU, checked here too so that it is reported beside other errors; a leaf without
/// one is a warning.
pub(super) fn eku(k: &Checks, x: &X509Certificate<'_>) -> Option<Finding> {
    let p = k.inp.purpose;
    if p == Purpose::Any {
        return None;
    }
    let leaf = &k.chain[0];
    match x.extended_key_usage() {
        Ok(Some(eku)) => {
            let e = eku.value;
            let allowed = e.any
                || match p {
                    Purpose::Client => e.client_auth,
                    Purpose::Server => e.server_auth,
                    Purpose::Any => true,
                };
            (!allowed).then(|| wrong_eku(leaf, p))
        }
        _ if !x.is_ca() => Some(Finding::new(
            Code::NoEku,
            Some(leaf.r()),
            Detail::Purpose(p),
        )),
        _ => None,
    }
}
