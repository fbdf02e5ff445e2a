//! Lifecycle operations: they compose `pki` (what to build) with `workspace` (where it
//! goes) and return plain outcomes for the CLI to render. No printing, no prompting.

pub mod audit;
pub mod ca;
pub mod csr;
pub mod doctor;
pub mod expiry;
pub mod export;
pub mod issue;
pub mod issue_all;
pub mod lifecycle;
pub mod pfx;
pub mod probe;
pub mod serve;
pub mod setup;
pub mod verify;

use std::path::PathBuf;

use thiserror::Error;

use crate::net::NetError;
use crate::pki::PkiError;
use crate::pki::verify::Finding;
use crate::profile::ProfileError;
use crate::workspace::WsError;

#[derive(Debug, Error)]
pub enum OpError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Workspace(#[from] WsError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// An environment without its CA: `ca init` makes it.
    #[error("environment '{env}' has no CA yet: run `mtlsctl ca init --env {env}`")]
    NoCa { env: String },
    /// An environment whose CA is someone else's (`ca.external: true`).
    #[error(
        "environment '{env}' uses an external CA (ca.external in its profile): make a request with `mtlsctl csr --tenant T --env {env}` and bring the certificate back with `mtlsctl import`"
    )]
    ExternalCa { env: String },
    /// The CA certificate is there, its key is not.
    #[error("the CA key {} is missing: restore it from backup (the certificate alone cannot sign)", path.display())]
    CaKeyMissing { path: PathBuf },
    /// `var` is the environment's own passphrase variable (`MTLSCTL_CA_PASSPHRASE_PROD`).
    #[error("the passphrase does not decrypt the CA key {}: check --ca-passphrase-file, {var} or MTLSCTL_CA_PASSPHRASE", path.display())]
    WrongCaPassphrase { path: PathBuf, var: String },
    #[error("the CA key {} is encrypted: give its passphrase with --ca-passphrase-file FILE, {var} or MTLSCTL_CA_PASSPHRASE", path.display())]
    CaPassphraseNeeded { path: PathBuf, var: String },
    /// A file given on the command line that could not be used, and why.
    #[error("{}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: Box<OpError>,
    },
    #[error(transparent)]
    Net(#[from] NetError),
    /// An output file that exists and was not to be replaced.
    #[error("{} exists; nothing was overwritten (use --force to replace it)", path.display())]
    OutputExists { path: PathBuf },
    /// A hand-off that would break a gateway's limits (each failed check named).
    #[error("the hand-off would not pass the gateway's limits, nothing was written: {}", failures.join("; "))]
    GatewayLimits { failures: Vec<String> },
    /// A key file that is not the certificate's key.
    #[error("the key {} does not belong to the certificate {}: pass the key the certificate was issued for", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{} is encrypted: give its passphrase with --key-passphrase-file FILE or MTLSCTL_KEY_PASSPHRASE", path.display())]
    KeyPassphraseNeeded { path: PathBuf },
    #[error("{0}")]
    Msg(String),
    /// `import` refused a certificate: `finding` is the first error verification found.
    #[error("{} was not imported: it fails verification [{}]", cert.display(), finding.code)]
    NotImported {
        cert: PathBuf,
        finding: Box<Finding>,
    },
}

impl OpError {
    /// `source`, as a problem of the input file `path`.
    pub fn input(path: &std::path::Path, source: impl Into<OpError>) -> OpError {
        OpError::Input {
            path: path.to_path_buf(),
            source: Box::new(source.into()),
        }
    }
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;
