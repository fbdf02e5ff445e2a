//! `inspect`: what a certificate, chain, CSR, CRL, key or PFX file given on the command
//! line says. The file is read by the workspace layer and described by pki; a PFX tells
//! its algorithms without its password and its contents with it.

use std::path::Path;

use secrecy::SecretString;

use super::{OpError, Result};
pub use crate::pki::inspect::{CertInfo, Inspected, Item, PfxInfo};
use crate::workspace::fsutil;

/// The bytes of the file at `path`, the error naming it.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    Ok(fsutil::read(path)?)
}

/// What `data` (the file at `path`) holds; a PFX without `password` comes back locked.
pub fn describe(path: &Path, data: &[u8], password: Option<&SecretString>) -> Result<Inspected> {
    crate::pki::inspect::inspect_bytes(data, password).map_err(|e| OpError::input(path, e))
}
