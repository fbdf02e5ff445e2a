//! nginx: a server-block snippet (`ssl_client_certificate`, `ssl_crl`, `ssl_verify_depth`).

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{render, template};

pub struct Nginx;

impl Gateway for Nginx {
    about!("nginx", "nginx");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![File::new(
            "mtls.conf",
            "nginx-snippet: server-block directives for client certificate checks",
            render(template!("nginx/mtls.conf"), &self.vars(m)),
        )])
    }
}
