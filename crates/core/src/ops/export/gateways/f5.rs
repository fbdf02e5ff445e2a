//! F5 BIG-IP: the client SSL profile's trusted CA bundle and CRL, and a tmsh sketch.

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{render, template};

pub struct F5;

impl Gateway for F5 {
    about!("f5", "F5 BIG-IP");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![
            File::new(
                "trusted-ca-bundle.pem",
                "f5-trusted-ca: client SSL profile Trusted Certificate Authorities (and Advertised)",
                m.chain_pem.clone(),
            ),
            File::new(
                "crl.pem",
                "f5-crl: client SSL profile Certificate Revocation List",
                m.crl_pem.clone(),
            ),
            File::new(
                "tmsh.txt",
                "f5-commands: a tmsh sketch of the import and the profile settings",
                render(template!("f5/tmsh.txt"), &self.vars(m)),
            ),
        ])
    }
}
