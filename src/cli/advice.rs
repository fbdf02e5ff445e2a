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
            return format!(
                "{} was not imported: {} [{}]; {}",
                cert.display(),
                x.message,
                finding.code,
                x.fix
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
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_errors_get_the_flags_to_use() {
        let e = OpError::Pki(PkiError::NoTrustAnchor);
        assert_eq!(
            describe(&e),
            "no trusted CA certificate given: pass the CA with --ca FILE"
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
