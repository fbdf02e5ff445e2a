//! The registry of export formats: one module per gateway, each a [`Gateway`], and
//! [`REGISTRY`], the only list of them. `--format` parsing, its help and completions, the
//! manifest's names and the README's sections all come from here.
//!
//! Adding a gateway: a module here implementing [`Gateway`] (its texts as templates under
//! `templates/export/<name>/`), declared below and listed in [`REGISTRY`].

use super::template::{Vars, render};
use super::{Check, Format, Material};
use crate::ops::Result;

/// The `name`, `title` and `steps` of a [`Gateway`] impl: `about!("name", "Title")`. The
/// steps are the template `templates/export/<name>/steps.txt`.
macro_rules! about {
    ($name:literal, $title:literal) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn title(&self) -> &'static str {
            $title
        }

        fn steps(&self) -> &'static str {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/templates/export/",
                $name,
                "/steps.txt"
            ))
        }
    };
}

mod aws_apigw;
mod azure_appgw;
mod envoy;
mod express_gateway;
mod f5;
mod gateway_api;
mod huawei_apig;
mod iis;
mod ingress_nginx;
mod nginx;
mod pem;
mod rfc8705;
mod tyk;

pub use aws_apigw::AWS_MAX_CHAIN;
pub use azure_appgw::AZURE_MAX_BYTES;

/// Every format, in the order of the manifest, the README and `--help`.
pub static REGISTRY: &[&dyn Gateway] = &[
    &pem::Pem,
    &nginx::Nginx,
    &ingress_nginx::IngressNginx,
    &gateway_api::GatewayApi,
    &envoy::Envoy,
    &f5::F5,
    &iis::Iis,
    &azure_appgw::AzureAppgw,
    &aws_apigw::AwsApigw,
    &tyk::Tyk,
    &huawei_apig::HuaweiApig,
    &express_gateway::ExpressGateway,
    &rfc8705::Rfc8705,
];

/// One gateway (or plain PEM) a hand-off can be shaped for. An implementation is a unit
/// struct: everything it writes is a function of the [`Material`].
pub trait Gateway: Sync {
    /// The `--format` value, the folder its files go in, its name in the manifest.
    fn name(&self) -> &'static str;

    /// The heading of its section of README.txt.
    fn title(&self) -> &'static str;

    /// Its README steps: the template `templates/export/<name>/steps.txt`.
    fn steps(&self) -> &'static str;

    /// The values of its templates' placeholders: the common ones plus its own.
    fn vars(&self, m: &Material) -> Vars {
        m.vars()
    }

    /// Its files, with paths relative to its folder. Public material only.
    fn files(&self, _m: &Material) -> Result<Vec<File>> {
        Ok(Vec::new())
    }

    /// Checks the material against the gateway's documented limits before anything is
    /// written; a failed check refuses the export.
    fn check_limits(&self, _m: &Material, _out: &mut Findings) {}

    /// Its README steps, rendered.
    fn readme_steps(&self, m: &Material) -> String {
        render(self.steps(), &self.vars(m))
    }
}

/// A file a gateway adds to the hand-off.
pub struct File {
    /// Relative to the gateway's folder, `/`-separated.
    pub path: String,
    /// `tag: what it is for`, as the manifest lists it.
    pub role: &'static str,
    pub bytes: Vec<u8>,
}

impl File {
    pub fn new(path: impl Into<String>, role: &'static str, bytes: impl Into<Vec<u8>>) -> File {
        File {
            path: path.into(),
            role,
            bytes: bytes.into(),
        }
    }
}

/// What one gateway's limit checks found.
pub struct Findings {
    format: Format,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
}

impl Findings {
    pub fn new(format: Format) -> Findings {
        Findings {
            format,
            checks: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records a limit: `ok` false refuses the export with `what` and `detail`.
    pub fn check(&mut self, what: &str, ok: bool, detail: String) {
        self.checks.push(Check {
            format: self.format,
            check: what.to_string(),
            ok,
            detail,
        });
    }

    /// Records something the operator should know that does not refuse the export.
    pub fn warn(&mut self, warning: String) {
        self.warnings
            .push(format!("{}: {warning}", self.format.as_str()));
    }
}
