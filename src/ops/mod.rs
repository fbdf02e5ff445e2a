//! Lifecycle operations: they compose `pki` (what to build) with `workspace` (where it
//! goes) and return plain outcomes for the CLI to render. No printing, no prompting.

pub mod ca;
pub mod issue;
pub mod pfx;

use thiserror::Error;

use crate::pki::PkiError;
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
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;
