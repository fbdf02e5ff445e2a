//! IIS / Windows: DER `.cer` files for the certificate stores, the client certificate as
//! one base64 line, SHA-1 thumbprints, and one-to-one / many-to-one mapping examples.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, render, template, xml_attr};
use crate::pki::dn::Name;
use crate::pki::fingerprint;

pub struct Iis;

impl Gateway for Iis {
    about!("iis", "IIS / Windows");

    fn vars(&self, m: &Material) -> Vars {
        let c = &m.client.entry;
        let ca_lines: String = m
            .cas
            .iter()
            .map(|ca| {
                let p = &ca.entry.fingerprints;
                format!(
                    "ca     {}  {}\n",
                    p.sha1_hex.to_uppercase(),
                    ca.entry.subject
                )
            })
            .collect();
        let issuer_o = attr(&m.cas[0].entry.subject, "O").unwrap_or_default();
        let subject_ou = attr(&c.subject, "OU").unwrap_or_else(|| m.tenant.clone());
        m.vars()
            .with("sha1_upper", c.fingerprints.sha1_hex.to_uppercase())
            .with("ca_thumbprints", ca_lines)
            .with("client_base64", fingerprint::base64(&m.client.der))
            .with(
                "one_to_one",
                m.pinned()
                    .iter()
                    .map(|c| {
                        format!(
                            "    <add enabled=\"true\" userName=\"DOMAIN\\svc-{}\" password=\"CHANGE-ME\"\n         certificate=\"{}\" />",
                            xml_attr(&m.tenant),
                            fingerprint::base64(&c.der)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
            .with("issuer_o", xml_attr(&issuer_o))
            .with("subject_ou", xml_attr(&subject_ou))
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let mut out: Vec<File> = m
            .cas
            .iter()
            .enumerate()
            .map(|(i, ca)| {
                File::new(
                    format!("ca-{}-{}.cer", i + 1, slug(&ca.entry.subject)),
                    if ca.entry.self_signed {
                        "iis-ca: DER certificate for LocalMachine\\Trusted Root Certification Authorities"
                    } else {
                        "iis-ca: DER certificate for LocalMachine\\Intermediate Certification Authorities"
                    },
                    ca.der.clone(),
                )
            })
            .collect();
        let v = self.vars(m);
        out.extend([
            File::new(
                "client.cer",
                "iis-client: the tenant's certificate in DER",
                m.client.der.clone(),
            ),
            File::new(
                "client-base64.txt",
                "iis-one-to-one: the certificate attribute of a oneToOneMappings entry",
                format!("{}\n", fingerprint::base64(&m.client.der)),
            ),
            File::new(
                "thumbprints.txt",
                "iis-thumbprints: SHA-1 thumbprints",
                render(template!("iis/thumbprints.txt"), &v),
            ),
            File::new(
                "web.config.xml",
                "iis-mapping: one-to-one and many-to-one mapping examples",
                render(template!("iis/web.config.xml"), &v),
            ),
        ]);
        if let Some(s) = &m.staged {
            out.push(File::new(
                "client-staged-base64.txt",
                "iis-one-to-one-staged: the staged successor's oneToOneMappings certificate attribute",
                format!("{}\n", fingerprint::base64(&s.der)),
            ));
        }
        Ok(out)
    }
}

/// The first value of attribute `name` in an RFC 4514 string; none when it has none or
/// does not parse.
fn attr(dn: &str, name: &str) -> Option<String> {
    Name::parse(dn).ok()?.first(name).map(str::to_string)
}

/// A file-name-safe short form of a CA's common name (the whole DN when it has none).
fn slug(dn: &str) -> String {
    let cn = Name::parse(dn)
        .ok()
        .and_then(|n| n.first("CN").map(str::to_string))
        .unwrap_or_else(|| dn.to_string());
    let mut out: String = cn
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_and_attributes_follow_the_dn_parser() {
        assert_eq!(
            slug("CN=Example prod mTLS CA,O=Example"),
            "example-prod-mtls-ca"
        );
        assert_eq!(slug("O=No CN"), "o-no-cn");
        let dn = "CN=globex-prod-client,OU=Globex\\, Intl \\<R&D\\>,O=Example";
        assert_eq!(attr(dn, "OU").as_deref(), Some("Globex, Intl <R&D>"));
        assert_eq!(attr(dn, "O").as_deref(), Some("Example"));
        assert_eq!(attr(dn, "L"), None);
    }

    #[test]
    fn mapping_values_come_from_the_rfc4514_parser() {
        let dn = r"CN=platform+OU=Ops,O=Example\, Inc.,C=DE";
        assert_eq!(attr(dn, "O").as_deref(), Some("Example, Inc."));
        assert_eq!(attr(dn, "OU").as_deref(), Some("Ops"));
        assert_eq!(attr(r"CN=a\2Cb", "CN").as_deref(), Some("a,b"));
        assert_eq!(attr(dn, "L"), None);
    }
}
