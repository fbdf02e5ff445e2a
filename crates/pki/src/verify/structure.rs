//! The form of each certificate: its version and its extensions (unparseable, empty,
//! an AKI without keyIdentifier, a critical SAN beside a subject, name constraints).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{ParsedExtension, X509Extension};

use super::finding::{Detail, Finding};
use super::{Cert, Checks, Code, names};

/// Only X.509 v3 may carry the extensions a chain needs (trust anchors excepted).
pub(super) fn version(k: &Checks, c: &Cert, x: &X509Certificate<'_>) -> Option<Finding> {
    let v = x.version().0;
    (v != 2 && !k.is_anchor(c)).then(|| {
        Finding::new(
            Code::UnsupportedVersion,
            Some(c.r()),
            Detail::Version(v + 1),
        )
    })
}

/// Each extension's form, in the certificate's order.
pub(super) fn extensions(c: &Cert, x: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    for e in x.extensions() {
        if let ParsedExtension::NameConstraints(nc) = e.parsed_extension() {
            names::constraints_form(c, x, nc, out);
        } else if let Some((code, detail)) = extension_form(x, e) {
            out.push(Finding::new(code, Some(c.r()), detail));
        }
    }
}

fn extension_form(x: &X509Certificate<'_>, e: &X509Extension<'_>) -> Option<(Code, Detail)> {
    match e.parsed_extension() {
        ParsedExtension::ParseError { .. } => {
            let oid = e.oid.to_id_string();
            Some((Code::MalformedExtension, Detail::MalformedExtension { oid }))
        }
        ParsedExtension::AuthorityInfoAccess(a) if a.accessdescs.is_empty() => {
            Some((Code::MalformedExtension, Detail::EmptyAia))
        }
        ParsedExtension::AuthorityKeyIdentifier(a) if a.key_identifier.is_none() => {
            Some((Code::AkiWithoutKeyId, Detail::None))
        }
        ParsedExtension::SubjectAlternativeName(_) if e.critical && has_subject(x) => {
            Some((Code::SanCritical, Detail::None))
        }
        _ => None,
    }
}

fn has_subject(x: &X509Certificate<'_>) -> bool {
    !x.subject().as_raw().is_empty() && x.subject().iter().next().is_some()
}
