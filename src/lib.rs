//! mtlsctl: the lifecycle of the certificates behind mutual TLS.
//!
//! The library never prints, prompts or exits; `cli` is the only layer that talks to a
//! person. See DESIGN.md for how the modules fit.

pub mod cli;
pub mod net;
pub mod ops;
pub mod pki;
pub mod profile;
pub mod report;
pub mod workspace;
