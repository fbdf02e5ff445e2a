//! Kubernetes ingress-nginx: the `auth-tls-secret` Secret (`ca.crt`, `ca.crl`) and the
//! Ingress annotations.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, render, template};
use crate::pki::fingerprint;

pub struct IngressNginx;

impl Gateway for IngressNginx {
    about!("ingress-nginx", "Kubernetes ingress-nginx");

    fn vars(&self, m: &Material) -> Vars {
        m.vars()
            .with("chain_base64", fingerprint::base64(m.chain_pem.as_bytes()))
            .with("crl_base64", fingerprint::base64(m.crl_pem.as_bytes()))
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let v = self.vars(m);
        Ok(vec![
            File::new(
                "secret.yaml",
                "kubernetes-secret: auth-tls-secret with ca.crt and ca.crl",
                render(template!("ingress-nginx/secret.yaml"), &v),
            ),
            File::new(
                "ingress-annotations.yaml",
                "kubernetes-annotations: the Ingress annotations that turn on client certificate checks",
                render(template!("ingress-nginx/ingress-annotations.yaml"), &v),
            ),
        ])
    }
}
