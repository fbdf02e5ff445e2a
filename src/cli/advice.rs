//! Library errors in words that name this program's commands and flags: the libraries
//! carry the data, the advice lives here where the command line is known.

use std::error::Error;

use super::verify::explain::explain;
use crate::ops::OpError;
use crate::pki::PkiError;

/// The words for one error of a chain: the library's own, with the advice the command
/// line offers where the library leaves it out.
pub fn describe(e: &(dyn Error + 'static)) -> String {
    let pki_error = match e.downcast_ref::<OpError>() {
        Some(OpError::Pki(p)) => Some(p),
        Some(OpError::NotImported { cert, finding }) => {
            let x = explain(finding);
            let ca = finding.code == crate::pki::verify::Code::Nonconforming
                && finding.depth().is_some_and(|d| d > 0);
            let fix = if ca {
                format!(
                    "{}, or take this customer CA as it is with --accept-nonconforming-ca",
                    x.fix
                )
            } else {
                x.fix
            };
            return format!(
                "{} was not imported: {} [{}]; {fix}",
                cert.display(),
                x.message,
                finding.code,
            );
        }
        _ => e.downcast_ref::<PkiError>(),
    };
    pki_error.and_then(pki).unwrap_or_else(|| e.to_string())
}

/// The advice for the PKI errors that call for a flag or a command.
fn pki(e: &PkiError) -> Option<String> {
    Some(match e {
        PkiError::NoTrustAnchor => format!("{e}: pass the CA with --ca FILE"),
        PkiError::HostnameAndIp => "give either --hostname or --ip, not both".into(),
        PkiError::ServerWithoutSan => {
            format!("{e}: give --dns NAME or --ip ADDR, or set san.dns in the profile")
        }
        PkiError::OutlivesCa { .. } => format!(
            "{e}: shorten --validity, renew the CA, or set `clip_to_ca: true` in the profile"
        ),
        // `ca init` leaves an existing CA alone and has no --force: a new CA needs the old
        // one moved out of the way first
        PkiError::CaExpired { .. } => format!(
            "{e}: it cannot sign any more. Create a new CA: move the environment's CA folder (pki/ENV/ca) aside, keeping it, run `mtlsctl ca init --env ENV`, then reissue the certificates and hand the new CA to the gateways (`mtlsctl export`)"
        ),
        PkiError::BadSerial { .. } => format!("{e}; `mtlsctl list` shows serials"),
        PkiError::UnknownPemBlock { label } => {
            format!("PEM block '{label}' is not something mtlsctl reads")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_errors_get_the_flags_to_use() {
        let e = OpError::Pki(PkiError::ServerWithoutSan);
        assert_eq!(
            describe(&e),
            "a server certificate needs at least one DNS or IP SAN (clients ignore the CN): give --dns NAME or --ip ADDR, or set san.dns in the profile"
        );
        let e = PkiError::BadSerial {
            given: "xyz".into(),
        };
        assert_eq!(
            describe(&e),
            "'xyz' is not a hex serial: give an even number of hex digits, e.g. 4f3a...; `mtlsctl list` shows serials"
        );
    }

    #[test]
    fn an_expired_ca_is_not_advised_a_flag_that_does_not_exist() {
        let e = PkiError::CaExpired {
            not_after: time::macros::datetime!(2026-01-01 0:00 UTC),
        };
        let s = describe(&e);
        assert!(
            s.starts_with("the CA has expired (2026-01-01T00:00:00Z)"),
            "{s}"
        );
        assert!(
            s.contains("`mtlsctl ca init --env ENV`") && !s.contains("--force"),
            "{s}"
        );
    }

    #[test]
    fn other_errors_keep_their_words() {
        let e = OpError::Msg("plain".into());
        assert_eq!(describe(&e), "plain");
        assert_eq!(
            describe(&PkiError::PfxPassword),
            PkiError::PfxPassword.to_string()
        );
    }
}
