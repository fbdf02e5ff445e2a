//! mtlsctl: the lifecycle of the certificates behind mutual TLS.
//!
//! The library never prints, prompts or exits; `cli` is the only layer that talks to a
//! person. docs/architecture.md describes how the modules fit.
#![warn(clippy::print_stdout, clippy::print_stderr)]

// only the command line talks to a person
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub mod cli;
pub mod net;
pub mod ops;
pub mod pki;
pub mod profile;
pub mod report;
pub mod workspace;
