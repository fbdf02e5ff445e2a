//! Huawei Cloud APIG: the PEM for the SSL certificate object's CA field.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;

pub struct HuaweiApig;

impl Gateway for HuaweiApig {
    about!("huawei-apig", "Huawei Cloud APIG");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![File::new(
            "trusted_root_ca.pem",
            "huawei-trusted-root-ca: the CA field (trusted_root_ca) of the SSL certificate object",
            m.chain_pem.clone(),
        )])
    }
}
