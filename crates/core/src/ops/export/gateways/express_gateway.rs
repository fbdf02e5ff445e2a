//! Express Gateway: `gateway.config.yml` fragments for its TLS client authentication, on
//! every path (Node refuses in the handshake) or on some paths only (a `terminate` policy
//! on the `tlsClientAuthenticated` condition). Node takes the CRL as PEM text, so the
//! fragments carry it inline.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, indent, render, template};

pub struct ExpressGateway;

impl Gateway for ExpressGateway {
    about!("express-gateway", "Express Gateway");

    fn vars(&self, m: &Material) -> Vars {
        m.vars().with("crl_indented", indent(&m.crl_pem, 6))
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let v = self.vars(m);
        Ok(vec![
            File::new(
                "gateway.config.yml",
                "express-gateway-config: https section requiring our certificate on every path",
                render(template!("express-gateway/gateway.config.yml"), &v),
            ),
            File::new(
                "gateway.config.optional.yml",
                "express-gateway-config: certificate on some paths only (403 from a terminate policy)",
                render(template!("express-gateway/gateway.config.optional.yml"), &v),
            ),
        ])
    }
}
