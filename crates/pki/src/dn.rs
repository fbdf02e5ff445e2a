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
    /// Parses `CN=a,O=b` (RFC 4514: `\,` and `\2C` both escape a comma, a run of hex
    /// pairs is UTF-8). Attribute names are CN, C, L, ST, O, OU, SERIALNUMBER, DC, UID
    /// (any case); one attribute per RDN (`CN=a+OU=b` is refused); values are text, not
    /// `#hex`.
    pub fn parse(s: &str) -> Result<Subject, String> {
        let mut out = Vec::new();
        for rdn in split(s)? {
            let [ava] = rdn.as_slice() else {
                let written: Vec<String> = rdn.iter().map(|a| a.raw.clone()).collect();
                return Err(format!(
                    "'{}' in subject '{s}' is a multi-valued RDN, which subjects do not take: write one attribute per RDN (CN=a,OU=b), or escape the '+' as \\+",
                    written.join("+")
                ));
            };
            out.push(subject_attribute(s, ava)?);
        }
        Ok(Subject(out))
    }

    pub fn common_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.attr == "CN")
            .map(|r| r.value.as_str())
    }

    /// The same subject with `suffix` appended to its common name (a CN of `suffix`
    /// trimmed, first, when it has none).
    pub fn with_cn_suffix(&self, suffix: &str) -> Subject {
        let mut s = self.clone();
        match s.0.iter_mut().find(|r| r.attr == "CN") {
            Some(r) => r.value.push_str(suffix),
            None => s.0.insert(
                0,
                Rdn {
                    attr: "CN".into(),
                    value: suffix.trim().to_string(),
                },
            ),
        }
        s
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
            .map(|r| format!("{}={}", r.attr, escape_value(&r.value)))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One attribute of a profile subject, checked.
fn subject_attribute(s: &str, ava: &Token) -> Result<Rdn, String> {
    let part = ava.raw.trim();
    if part.is_empty() {
        return Err(format!(
            "empty attribute in subject '{s}': write it as CN=name,O=org"
        ));
    }
    let Some(value) = &ava.value else {
        return Err(format!(
            "'{part}' in subject '{s}' has no '=': write it as CN=name,O=org"
        ));
    };
    let attr = ava.attr.to_ascii_uppercase();
    if !KNOWN.iter().any(|(n, _)| *n == attr) {
        return Err(format!(
            "unknown subject attribute '{}' in '{s}': use CN, O, OU, C, ST, L, DC, UID or SERIALNUMBER",
            ava.attr
        ));
    }
    let value = match value {
        Value::Text(v) => v.clone(),
        Value::Ber(_) => {
            return Err(format!(
                "subject attribute {attr} in '{s}' is written as #hex (BER): write its value as text"
            ));
        }
    };
    if value.is_empty() {
        return Err(format!("subject attribute {attr} is empty in '{s}'"));
    }
    if attr == "C" && value.len() != 2 {
        return Err(format!(
            "country C={value} must be a two-letter code such as US or DE"
        ));
    }
    Ok(Rdn { attr, value })
}

/// One attribute type and value of a distinguished name, the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written: `CN`, `O`, `2.5.4.97`...
    pub attr: String,
    pub value: String,
}

/// A distinguished name read from its RFC 4514 string, such as those [`rfc4514`] writes:
/// its RDNs in the order written (the most specific first), each one or more attributes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Name(pub Vec<Vec<Ava>>);

impl Name {
    /// Parses an RFC 4514 string. Escapes are undone (`\,` and `\2C` are both a comma;
    /// hex pairs that spell UTF-8 are that text), `+` joins the attributes of a
    /// multi-valued RDN, and a `#hex` value is decoded when it is a BER string. Spaces
    /// around separators are ignored, as people write `CN=a, O=b`.
    pub fn parse(s: &str) -> Result<Name, String> {
        if s.trim().is_empty() {
            return Ok(Name::default());
        }
        let mut rdns = Vec::new();
        for rdn in split(s)? {
            let mut avas = Vec::new();
            for t in rdn {
                let attr = t.attr.trim().to_string();
                let value = match t.value {
                    _ if attr.is_empty() => None,
                    Some(Value::Text(v)) => Some(v),
                    Some(Value::Ber(b)) => Some(ber_string(&b).ok_or_else(|| {
                        format!("the value of {attr} in '{s}' is #hex but not a BER string")
                    })?),
                    None => None,
                };
                let Some(value) = value else {
                    return Err(format!(
                        "'{}' in '{s}' is not an attribute: write it as TYPE=value",
                        t.raw.trim()
                    ));
                };
                avas.push(Ava { attr, value });
            }
            rdns.push(avas);
        }
        Ok(Name(rdns))
    }

    /// Every attribute in the order written, multi-valued RDNs flattened.
    pub fn attributes(&self) -> impl Iterator<Item = &Ava> {
        self.0.iter().flatten()
    }

    /// The value of the first attribute of type `attr` (any case).
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.attributes()
            .find(|a| a.attr.eq_ignore_ascii_case(attr))
            .map(|a| a.value.as_str())
    }
}

/// An attribute as read: what was written, its type, and its value when there is an '='.
struct Token {
    raw: String,
    attr: String,
    value: Option<Value>,
}

enum Value {
    Text(String),
    /// `#hex`: the BER encoding of the value.
    Ber(Vec<u8>),
}

/// Splits an RFC 4514 string into RDNs of attributes, undoing escapes.
fn split(s: &str) -> Result<Vec<Vec<Token>>, String> {
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut rest = s;
    loop {
        let (token, sep, tail) = token(s, rest)?;
        rdn.push(token);
        match sep {
            Some('+') => {}
            Some(_) => rdns.push(std::mem::take(&mut rdn)),
            None => {
                rdns.push(rdn);
                return Ok(rdns);
            }
        }
        rest = tail;
    }
}

/// Reads one `type=value` from `rest` up to an unescaped ',' or '+': the attribute, the
/// separator that ended it, and what follows.
fn token<'a>(s: &str, rest: &'a str) -> Result<(Token, Option<char>, &'a str), String> {
    let end = separator_at(s, rest)?;
    let (raw, sep, tail) = match end {
        Some(i) => (&rest[..i], rest[i..].chars().next(), &rest[i + 1..]),
        None => (rest, None, ""),
    };
    let (attr, value) = match raw.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), Some(value(s, v)?)),
        None => (raw.trim().to_string(), None),
    };
    let token = Token {
        raw: raw.to_string(),
        attr,
        value,
    };
    Ok((token, sep, tail))
}

/// Where the first unescaped ',' or '+' of `rest` is.
fn separator_at(s: &str, rest: &str) -> Result<Option<usize>, String> {
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            // the guard steps over the escaped character, so it is never a separator
            '\\' if chars.next().is_none() => {
                return Err(format!("the name '{s}' ends with a lone backslash"));
            }
            ',' | '+' => return Ok(Some(i)),
            _ => {}
        }
    }
    Ok(None)
}

/// A value as written after '=': `#hex`, or text with its escapes undone. Unescaped
/// spaces at either end are dropped; escaped ones are kept.
fn value(s: &str, written: &str) -> Result<Value, String> {
    let v = written.trim_start();
    if let Some(hex) = v.strip_prefix('#') {
        return hex_bytes(hex.trim_end()).map(Value::Ber).ok_or_else(|| {
            format!(
                "'#{hex}' in '{s}' is neither hex (a BER value) nor text: escape a leading '#' as \\#"
            )
        });
    }
    let mut bytes = Vec::with_capacity(v.len());
    let mut kept = 0; // length up to the last character that is not an unescaped space
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            if !c.is_whitespace() {
                kept = bytes.len();
            }
            continue;
        }
        match chars.next() {
            Some(h) if h.is_ascii_hexdigit() => {
                let l = chars.next().filter(char::is_ascii_hexdigit).ok_or_else(|| {
                    format!("'\\{h}' in '{s}' is half a hex pair: write two hex digits, such as \\2C")
                })?;
                bytes.push(hex_pair(h, l));
            }
            Some(e @ ('"' | '+' | ',' | ';' | '<' | '>' | '\\' | ' ' | '#' | '=')) => {
                bytes.push(e as u8);
            }
            other => {
                return Err(format!(
                    "'\\{}' in '{s}' is not an RFC 4514 escape: escape only , + \" \\ < > ; # = and spaces, or write a hex pair such as \\2C",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        }
        kept = bytes.len();
    }
    bytes.truncate(kept);
    String::from_utf8(bytes)
        .map(Value::Text)
        .map_err(|_| format!("the hex pairs in '{s}' do not spell UTF-8 text"))
}

fn hex_pair(h: char, l: char) -> u8 {
    // both are hex digits, checked by the caller
    let d = |c: char| c.to_digit(16).unwrap_or_default() as u8;
    d(h) << 4 | d(l)
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let digits: Vec<char> = hex.chars().collect();
    if digits.is_empty()
        || !digits.len().is_multiple_of(2)
        || !digits.iter().all(char::is_ascii_hexdigit)
    {
        return None;
    }
    Some(digits.chunks(2).map(|p| hex_pair(p[0], p[1])).collect())
}

/// The text of a BER-encoded string value (UTF8String, PrintableString, T61String,
/// IA5String, VisibleString, BMPString, UniversalString).
fn ber_string(b: &[u8]) -> Option<String> {
    let (&tag, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, body) = match len {
        0..=0x7f => (len as usize, rest),
        0x81 => (*rest.first()? as usize, rest.get(1..)?),
        0x82 => (
            u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    let body = body.get(..len).filter(|_| body.len() == len)?;
    match tag {
        0x0c | 0x13 | 0x14 | 0x16 | 0x1a => String::from_utf8(body.to_vec()).ok(),
        0x1e if len.is_multiple_of(2) => {
            let units: Vec<u16> = body
                .chunks(2)
                .map(|u| u16::from_be_bytes([u[0], u[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        0x1c if len.is_multiple_of(4) => body
            .chunks(4)
            .map(|u| char::from_u32(u32::from_be_bytes([u[0], u[1], u[2], u[3]])))
            .collect(),
        _ => None,
    }
}

/// Escapes a value for the string form of a DN (RFC 4514 section 2.4): `,` `+` `"` `\`
/// `<` `>` `;` (and `=`), a leading `#`, a space at either end, and NUL as `\00`.
pub fn escape_value(s: &str) -> String {
    let last = s.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => out.push('\\'),
            '#' if i == 0 => out.push('\\'),
            ' ' if i == 0 || i == last => out.push('\\'),
            '\0' => {
                out.push_str("\\00");
                continue;
            }
            _ => {}
        }
        out.push(c);
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
                .map(escape_value)
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
        assert!(Subject::parse("").is_err());
        assert!(Subject::parse("CN=a\\").is_err());
    }

    #[test]
    fn hex_pairs_and_backslash_escapes_are_the_same_character() {
        let a = Subject::parse("CN=a\\2Cb").unwrap();
        let b = Subject::parse("CN=a\\,b").unwrap();
        assert_eq!(a.0[0].value, "a,b");
        assert_eq!(a, b);
        // hex pairs spell UTF-8: \C3\A9 is e-acute
        assert_eq!(
            Subject::parse("O=Caf\\C3\\A9").unwrap().0[0].value,
            "Caf\u{e9}"
        );
        assert_eq!(Subject::parse("CN=\\5c").unwrap().0[0].value, "\\");
    }

    #[test]
    fn bad_escapes_are_refused_with_the_reason() {
        let e = Subject::parse("CN=a\\2").unwrap_err();
        assert!(e.contains("half a hex pair"), "{e}");
        let e = Subject::parse("CN=a\\q").unwrap_err();
        assert!(e.contains("not an RFC 4514 escape"), "{e}");
        let e = Subject::parse("CN=\\FF\\FE").unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e = Subject::parse("CN=#1 team").unwrap_err();
        assert!(e.contains("escape a leading '#'"), "{e}");
        assert_eq!(
            Subject::parse("CN=\\#1 team").unwrap().0[0].value,
            "#1 team"
        );
    }

    #[test]
    fn multi_valued_rdns_are_refused_in_subjects() {
        let e = Subject::parse("CN=a+OU=b,O=c").unwrap_err();
        assert!(
            e.contains("'CN=a+OU=b'") && e.contains("multi-valued"),
            "{e}"
        );
        // an escaped '+' is part of the value
        assert_eq!(Subject::parse("CN=a\\+b").unwrap().0[0].value, "a+b");
        assert!(Subject::parse("CN=#0c0161").is_err());
    }

    #[test]
    fn spaces_around_separators_go_escaped_spaces_stay() {
        let s = Subject::parse(" CN = a , O=b ").unwrap();
        assert_eq!((s.0[0].value.as_str(), s.0[1].value.as_str()), ("a", "b"));
        let s = Subject::parse("CN=\\ a\\ ").unwrap();
        assert_eq!(s.0[0].value, " a ");
    }

    #[test]
    fn names_keep_multi_valued_rdns() {
        let n = Name::parse("CN=a+OU=b,O=c").unwrap();
        assert_eq!(n.0.len(), 2);
        assert_eq!(n.0[0].len(), 2);
        assert_eq!(n.first("ou"), Some("b"));
        let flat: Vec<(&str, &str)> = n
            .attributes()
            .map(|a| (a.attr.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(flat, [("CN", "a"), ("OU", "b"), ("O", "c")]);
        assert_eq!(Name::parse("").unwrap(), Name::default());
        assert!(Name::parse("CN=a,junk").is_err());
    }

    #[test]
    fn an_issuer_organisation_with_a_comma_is_read_whole() {
        // what the IIS many-to-one rule matches on: Issuer O, unescaped
        let n = Name::parse("CN=Example prod mTLS CA,O=Example\\, Inc.").unwrap();
        assert_eq!(n.first("O"), Some("Example, Inc."));
        let n = Name::parse("CN=x,O=Example\\2C Inc.").unwrap();
        assert_eq!(n.first("O"), Some("Example, Inc."));
    }

    #[test]
    fn ber_values_are_decoded_when_they_are_strings() {
        // UTF8String "ab", BMPString "ab"
        let n = Name::parse("CN=#0c026162,O=#1e0400610062").unwrap();
        assert_eq!(n.first("CN"), Some("ab"));
        assert_eq!(n.first("O"), Some("ab"));
        // an INTEGER is not a string
        assert!(Name::parse("CN=#020101").is_err());
        assert!(Name::parse("CN=#0c05").is_err());
    }

    #[test]
    fn escape_value_round_trips() {
        for v in [
            "Example, Inc.",
            "a+b",
            "#tag",
            " lead",
            "trail ",
            " ",
            "q\"uote",
            "back\\slash",
            "<>;=",
            "nul\0byte",
            "Caf\u{e9}",
        ] {
            let written = format!("O={}", escape_value(v));
            assert_eq!(
                Name::parse(&written).unwrap().first("O"),
                Some(v),
                "{written}"
            );
        }
        assert_eq!(escape_value(" "), "\\ ");
        assert_eq!(escape_value("a#b"), "a#b");
        assert_eq!(escape_value("x\0"), "x\\00");
    }

    #[test]
    fn the_string_form_of_a_certificate_name_parses_back() {
        let s = Subject::parse("CN=a\\+b,OU=x\\;y,O=Example\\, Inc.").unwrap();
        let der = {
            let mut p = rcgen::CertificateParams::default();
            p.distinguished_name = s.to_rcgen();
            let k = rcgen::KeyPair::generate().unwrap();
            p.self_signed(&k).unwrap().der().to_vec()
        };
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        let n = Name::parse(&rfc4514(c.subject())).unwrap();
        let got: Vec<&str> = n.attributes().map(|a| a.value.as_str()).collect();
        assert_eq!(got, ["a+b", "x;y", "Example, Inc."]);
    }
}
