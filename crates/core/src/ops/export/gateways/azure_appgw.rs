//! Azure Application Gateway: one trusted client CA chain file, root included.

use super::{File, Findings, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;

/// Azure Application Gateway refuses a trusted client CA chain file above this size.
pub const AZURE_MAX_BYTES: usize = 25 * 1024;

pub struct AzureAppgw;

impl Gateway for AzureAppgw {
    about!("azure-appgw", "Azure Application Gateway");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![File::new(
            "trusted-client-ca-chain.pem",
            "azure-trusted-client-ca: the chain (root included) for the SSL profile's client authentication",
            m.chain_pem.clone(),
        )])
    }

    fn check_limits(&self, m: &Material, out: &mut Findings) {
        let size = m.chain_pem.len();
        out.check(
            "file size under 25 KB",
            size < AZURE_MAX_BYTES,
            format!("{size} bytes (limit {AZURE_MAX_BYTES})"),
        );
        let root = m.root_included();
        out.check(
            "chain includes the root CA",
            root,
            if root {
                "the last certificate is self-signed".into()
            } else {
                "the chain ends in a CA that is not self-signed: add its root".into()
            },
        );
    }
}
