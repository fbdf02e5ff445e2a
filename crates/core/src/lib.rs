//! mtlsctl's core: the profile model, the workspace on disk and the lifecycle operations
//! that compose them with the certificate logic of `mtlsctl-pki`.
//!
//! This crate never prints, prompts or exits; the `mtlsctl` binary is the only part that
//! talks to a person. docs/architecture.md describes how the crates fit.

pub mod fault;
pub mod ops;
pub mod profile;
pub mod workspace;

pub use mtlsctl_pki as pki;
// the network side, for the operations only: the binary reaches it through `ops`
use mtlsctl_net as net;
