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
        Ok(vec![File::new(
            "mtls.conf",
            "nginx-snippet: server-block directives for client certificate checks",
            text,
        )])
    }
}
