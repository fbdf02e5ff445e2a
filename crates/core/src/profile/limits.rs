//! Size limits of what a profile puts in a certificate: the subject's attributes by the
//! upper bounds of RFC 5280 Appendix A (ub-*), and the number and length of subject
//! alternative names. A certificate beyond them is refused by strict parsers, so the
//! profile is refused first, naming the setting. Pure functions; the caller adds where
//! the value came from.

use crate::pki::dn::Subject;

/// Most characters in each subject attribute, from RFC 5280 Appendix A (ub-common-name
/// and friends; emailAddress is ub-emailaddress-length), with the two it does not bound:
/// DC is a DNS label (RFC 1035, 63) and UID is ub-user-identifier of RFC 1274 (256).
const SUBJECT_BOUNDS: &[(&str, usize)] = &[
    ("CN", 64),
    ("O", 64),
    ("OU", 64),
    ("L", 128),
    ("ST", 128),
    ("SERIALNUMBER", 64),
    ("EMAILADDRESS", 255),
    ("E", 255),
    ("TITLE", 64),
    ("DC", 63),
    ("UID", 256),
];

/// Most subject alternative names in one certificate, all types together. Gateways and
/// TLS libraries slow down or refuse on long SAN lists well before the DER limit.
pub const MAX_SANS: usize = 100;
/// Most characters in a dNSName (RFC 1035: 253 in text form).
pub const MAX_DNS_LEN: usize = 253;
/// Most characters in an rfc822Name (ub-emailaddress-length).
pub const MAX_EMAIL_LEN: usize = 255;
/// Most characters in a URI, which no RFC bounds: ours, generous for SPIFFE IDs.
pub const MAX_URI_LEN: usize = 2048;

/// The first attribute of `subject` beyond its bound, as a message. Country must be
/// exactly two letters (ub-country-name-alpha-length).
pub fn subject(subject: &Subject) -> Result<(), String> {
    for rdn in &subject.0 {
        let len = rdn.value.chars().count();
        if rdn.attr == "C" && len != 2 {
            return Err(format!(
                "the subject's C (country) must be a two-letter code such as US or DE, not {len} characters"
            ));
        }
        if let Some((_, max)) = SUBJECT_BOUNDS.iter().find(|(a, _)| *a == rdn.attr)
            && len > *max
        {
            return Err(format!(
                "the subject's {} is {len} characters; RFC 5280 allows at most {max}: shorten it",
                rdn.attr
            ));
        }
    }
    Ok(())
}

/// The first name of `names` (the setting `key`, e.g. `san.dns`) longer than `max`.
pub fn san_lengths(key: &str, names: &[String], max: usize) -> Result<(), String> {
    match names.iter().find(|n| n.chars().count() > max) {
        Some(n) => Err(format!(
            "{key}: a name of {} characters ('{}...'); at most {max} are allowed",
            n.chars().count(),
            crate::pki::text::sanitize(&n.chars().take(32).collect::<String>())
        )),
        None => Ok(()),
    }
}

/// The number of SANs, `counts` being (setting, how many) per type.
pub fn san_count(counts: &[(&str, usize)]) -> Result<(), String> {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    if total <= MAX_SANS {
        return Ok(());
    }
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    Err(format!(
        "{total} subject alternative names ({}); a certificate may carry at most {MAX_SANS}: split them over several certificates",
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_bounds_are_rfc_5280s() {
        let cn = |n: usize| Subject::parse(&format!("CN={},O=x", "a".repeat(n))).unwrap();
        assert!(subject(&cn(64)).is_ok());
        let e = subject(&cn(65)).unwrap_err();
        assert!(e.contains("CN is 65 characters") && e.contains("64"), "{e}");
        let l = Subject::parse(&format!("CN=x,L={}", "é".repeat(128))).unwrap();
        assert!(subject(&l).is_ok(), "characters, not bytes");
        let st = Subject::parse(&format!("CN=x,ST={}", "s".repeat(129))).unwrap();
        assert!(subject(&st).unwrap_err().contains("ST is 129"));
        let ou = Subject::parse(&format!("CN=x,OU={}", "o".repeat(65))).unwrap();
        assert!(subject(&ou).is_err());
        let sn = Subject::parse(&format!("CN=x,SERIALNUMBER={}", "1".repeat(65))).unwrap();
        assert!(subject(&sn).is_err());
    }

    #[test]
    fn san_limits() {
        assert!(san_count(&[("san.dns", 60), ("san.uri", 40)]).is_ok());
        let e = san_count(&[("san.dns", 60), ("san.ip", 0), ("san.uri", 41)]).unwrap_err();
        assert!(
            e.starts_with("101 subject alternative names (san.dns 60, san.uri 41)"),
            "{e}"
        );
        let long = vec!["a".repeat(254)];
        let e = san_lengths("san.dns", &long, MAX_DNS_LEN).unwrap_err();
        assert!(
            e.contains("254 characters") && e.contains("at most 253"),
            "{e}"
        );
        assert!(san_lengths("san.dns", &["a".repeat(253)], MAX_DNS_LEN).is_ok());
    }
}
