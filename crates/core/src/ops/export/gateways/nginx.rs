//! nginx: a server-block snippet (`ssl_client_certificate`, `ssl_crl`, `ssl_verify_depth`).

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{render, template};

pub struct Nginx;

impl Gateway for Nginx {
    about!("nginx", "nginx");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let mut text = render(template!("nginx/mtls.conf"), &self.vars(m));
        if m.crls.is_empty() {
            // an external CA's hand-off carries no CRL: nginx refuses an empty ssl_crl file
            text = text
                .lines()
                .map(|l| {
                    if l.starts_with("ssl_crl") {
                        "# ssl_crl: the external CA publishes its own CRL; point ssl_crl at it"
                            .to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n";
        }
        let mut pins = format!(
            "# Only this tenant's certificates, by SHA-1 fingerprint: include inside http {{ }},\n# then inside server {{ }}: if ($mtls_pinned_{t} = 0) {{ return 403; }}\n# During a staged rollover both the current and the successor are listed.\nmap $ssl_client_fingerprint $mtls_pinned_{t} {{\n    default 0;\n",
            t = m.tenant.replace('-', "_")
        );
        for c in m.pinned() {
            pins.push_str(&format!(
                "    {} 1; # {}\n",
                c.entry.fingerprints.sha1_hex, c.entry.serial
            ));
        }
        pins.push_str("}\n");
        Ok(vec![
            File::new(
                "mtls.conf",
                "nginx-snippet: server-block directives for client certificate checks",
                text,
            ),
            File::new(
                "pinned-fingerprints.conf",
                "nginx-pins: a map $ssl_client_fingerprint allow-list of our certificates (http block)",
                pins,
            ),
        ])
    }
}
