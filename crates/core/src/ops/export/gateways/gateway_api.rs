//! Kubernetes Gateway API: a ConfigMap with `ca.crt` and the `caCertificateRefs` snippet.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, indent, render, template};

pub struct GatewayApi;

impl Gateway for GatewayApi {
    about!("gateway-api", "Kubernetes Gateway API");

    fn vars(&self, m: &Material) -> Vars {
        m.vars().with("chain_indented", indent(&m.chain_pem, 4))
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let v = self.vars(m);
        Ok(vec![
            File::new(
                "configmap.yaml",
                "kubernetes-configmap: ca.crt for Gateway frontend validation",
                render(template!("gateway-api/configmap.yaml"), &v),
            ),
            File::new(
                "gateway-tls.yaml",
                "gateway-api-snippet: where the Gateway references the ConfigMap",
                render(template!("gateway-api/gateway-tls.yaml"), &v),
            ),
        ])
    }
}
