//! `renew`: not built yet (see the open issue).

use anyhow::{Result, bail};

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Ctx, _a: Args) -> Result<u8> {
    bail!("`mtlsctl renew` is not built yet")
}
