//! `completions` and `man`, generated from the one clap definition.

use anyhow::Result;
use clap::CommandFactory;

use super::{Ctx, Exit};

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn run_completions(ctx: &Ctx, a: CompletionsArgs) -> Result<Exit> {
    let mut cmd = super::Cli::command();
    // generate into memory: clap_complete panics on a failed write (a closed pipe)
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "mtlsctl", &mut buf);
    ctx.out.raw(&buf)?;
    Ok(Exit::Ok)
}

pub fn run_man(ctx: &Ctx, _a: ManArgs) -> Result<Exit> {
    let cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    ctx.out.raw(&buf)?;
    Ok(Exit::Ok)
}
