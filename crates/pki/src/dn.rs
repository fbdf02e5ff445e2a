//! Distinguished names written the way operators write them: `CN=api,OU=acme,O=Example`.

use rcgen::{DistinguishedName, DnType};

/// One attribute of a subject, in the order written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rdn {
    pub attr: String,
    pub value: String,
}

/// A subject parsed from its string form (RFC 4514 style, most significant first
/// as written by people: `CN=...,O=...`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Subject(pub Vec<Rdn>);

const KNOWN: &[(&str, &[u64])] = &[
    ("CN", &[2, 5, 4, 3]),
    ("C", &[2, 5, 4, 6]),
    ("L", &[2, 5, 4, 7]),
    ("ST", &[2, 5, 4, 8]),
    ("O", &[2, 5, 4, 10]),
    ("OU", &[2, 5, 4, 11]),
    ("SERIALNUMBER", &[2, 5, 4, 5]),
    ("DC", &[0, 9, 2342, 19200300, 100, 1, 25]),
    ("UID", &[0, 9, 2342, 19200300, 100, 1, 1]),
];

impl Subject {
    /// Parses `CN=a,O=b` with `\,` and `\\` escapes. Attribute names are CN, C, L, ST, O,
    /// OU, SERIALNUMBER, DC, UID (any case).
    pub fn parse(s: &str) -> Result<Subject, String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut parts = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n) => {
                        cur.push('\\');
                        cur.push(n)
                    }
                    None => return Err("the subject ends with a lone backslash".into()),
                },
                ',' => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "empty attribute in subject '{s}': write it as CN=name,O=org"
                ));
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!(
                    "'{part}' in subject '{s}' has no '=': write it as CN=name,O=org"
                ));
            };
            let attr = k.trim().to_ascii_uppercase();
            if !KNOWN.iter().any(|(n, _)| *n == attr) {
                return Err(format!(
                    "unknown subject attribute '{}' in '{s}': use CN, O, OU, C, ST, L, DC, UID or SERIALNUMBER",
                    k.trim()
                ));
            }
            let value = unescape(v.trim());
            if value.is_empty() {
                return Err(format!("subject attribute {attr} is empty in '{s}'"));
            }
            if attr == "C" && value.len() != 2 {
                return Err(format!(
                    "country C={value} must be a two-letter code such as US or DE"
                ));
            }
            out.push(Rdn { attr, value });
        }
        Ok(Subject(out))
    }

    pub fn common_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.attr == "CN")
            .map(|r| r.value.as_str())
    }

    pub fn to_rcgen(&self) -> DistinguishedName {
        // RFC 4514 writes the most specific RDN first; the certificate stores it last.
        let mut dn = DistinguishedName::new();
        for r in self.0.iter().rev() {
            let ty = match r.attr.as_str() {
                "CN" => DnType::CommonName,
                "C" => DnType::CountryName,
                "L" => DnType::LocalityName,
                "ST" => DnType::StateOrProvinceName,
                "O" => DnType::OrganizationName,
                "OU" => DnType::OrganizationalUnitName,
                other => {
                    let oid = KNOWN.iter().find(|(n, _)| *n == other).unwrap().1;
                    DnType::CustomDnType(oid.to_vec())
                }
            };
            if r.attr == "C" {
                // countryName must be a PrintableString (RFC 5280 appendix A)
                match rcgen::string::PrintableString::try_from(r.value.as_str()) {
                    Ok(p) => dn.push(ty, rcgen::DnValue::PrintableString(p)),
                    Err(_) => dn.push(ty, r.value.as_str()),
                }
            } else {
                dn.push(ty, r.value.as_str());
            }
        }
        dn
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}={}", r.attr, escape(&r.value)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes a value for the string form of a DN (RFC 4514 section 2.4).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
        {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
        out.push_str("\\ ");
    }
    out
}

/// RFC 4514 string of an X.509 name: the last RDN of the sequence first, so a subject
/// made from `CN=a,O=b` prints back as `CN=a,O=b`.
pub fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut rdns: Vec<String> = Vec::new();
    for rdn in name.iter() {
        let mut atvs = Vec::new();
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let key = short_name(&oid.to_id_string()).unwrap_or_else(|| oid.to_id_string());
            let val = atv
                .as_str()
                .map(escape)
                .unwrap_or_else(|_| format!("#{}", super::serial::to_hex(atv.as_slice())));
            atvs.push(format!("{key}={val}"));
        }
        rdns.push(atvs.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

fn short_name(oid: &str) -> Option<String> {
    let n = match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    };
    Some(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let s = Subject::parse("CN=platform-prod, OU=acme, O=Acme\\, Inc.").unwrap();
        assert_eq!(s.0.len(), 3);
        assert_eq!(s.0[2].value, "Acme, Inc.");
        assert_eq!(s.common_name(), Some("platform-prod"));
        assert_eq!(s.to_string(), "CN=platform-prod,OU=acme,O=Acme\\, Inc.");
    }

    #[test]
    fn rejects_bad_subjects() {
        assert!(Subject::parse("CN").is_err());
        assert!(Subject::parse("XX=1").is_err());
        assert!(Subject::parse("C=USA").is_err());
        assert!(Subject::parse("CN=a,,O=b").is_err());
    }
}
