//! Lifecycle operations: they compose `pki` (what to build) with `workspace` (where it
//! goes) and return plain outcomes for the CLI to render. No printing, no prompting.

pub mod ca;
pub mod csr;
pub mod expiry;
pub mod export;
pub mod issue;
pub mod lifecycle;
pub mod pfx;
pub mod probe;
pub mod serve;
pub mod verify;

use thiserror::Error;

use crate::net::NetError;
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
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("{0}")]
    Msg(String),
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;
