//! Lifecycle operations: they compose `pki` (what to build) with `workspace` (where it
//! goes) and return plain outcomes for the CLI to render. No printing, no prompting.

pub mod ca;
pub mod csr;
pub mod expiry;
pub mod export;
pub mod issue;
pub mod lifecycle;
pub mod pfx;
pub mod verify;

use std::path::PathBuf;

use thiserror::Error;

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
    #[error("{0}")]
    Msg(String),
    /// `import` refused a certificate: `finding` is the first error verification found.
    #[error("{} was not imported: it fails verification [{}]", cert.display(), finding.code)]
    NotImported {
        cert: PathBuf,
        finding: Box<Finding>,
    },
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;
