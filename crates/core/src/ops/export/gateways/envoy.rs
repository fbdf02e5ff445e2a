//! Envoy: the CA and CRL files and a `DownstreamTlsContext` with optional pins.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, render, template, yaml_quoted};

pub struct Envoy;

impl Gateway for Envoy {
    about!("envoy", "Envoy");

    fn vars(&self, m: &Material) -> Vars {
        let p = &m.client.entry.fingerprints;
        m.vars()
            .with("spki_quoted", yaml_quoted(&p.spki_sha256_base64))
            .with(
                "sha256_quoted",
                m.pinned()
                    .iter()
                    .map(|c| yaml_quoted(&c.entry.fingerprints.sha256_hex))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![
            File::new(
                "trusted_ca.pem",
                "envoy-trusted-ca: validation_context.trusted_ca",
                m.chain_pem.clone(),
            ),
            File::new(
                "crl.pem",
                "envoy-crl: validation_context.crl (one per CA in the chain)",
                m.crl_pem.clone(),
            ),
            File::new(
                "validation_context.yaml",
                "envoy-snippet: DownstreamTlsContext with the CA, the CRL and optional pins",
                render(template!("envoy/validation_context.yaml"), &self.vars(m)),
            ),
        ])
    }
}
