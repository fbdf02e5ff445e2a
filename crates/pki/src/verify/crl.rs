//! CRLs: reading them, and the rule OpenSSL skips (a CRL must carry a CRL number).

use openssl::x509::X509Crl;

use super::Code;
use super::finding::{Detail, Finding};
use crate::inspect;
use crate::{PkiError, Result};

/// Reads every CRL in a PEM or DER file as DER.
pub fn crls_from(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for b in inspect::blocks(data)? {
        match b.label.as_str() {
            "X509 CRL" => out.push(b.der),
            "DER" => {
                X509Crl::from_der(&b.der)
                    .map_err(|_| PkiError::Parse("not a CRL (PEM or DER)".into()))?;
                out.push(b.der)
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(PkiError::Parse("no CRL in this file".into()));
    }
    Ok(out)
}

/// RFC 5280 5.2.3: every CRL carries a CRL number.
pub(super) fn without_number(der: &[u8]) -> Option<Finding> {
    let c = inspect::crl_info(der).ok()?;
    c.crl_number.is_none().then(|| {
        let detail = Detail::CrlWithoutNumber { issuer: c.issuer };
        Finding::new(Code::CrlInvalid, None, detail)
    })
}
