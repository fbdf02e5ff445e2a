//! `completions` and `man`, generated from the one clap definition.

use anyhow::Result;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn run_completions(a: CompletionsArgs) -> Result<u8> {
    let mut cmd = super::Cli::command();
    // generate into memory: clap_complete panics on a failed write (a closed pipe), while
    // an io::Error from our own write lets main treat a closed pipe as success
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "mtlsctl", &mut buf);
    write_stdout(&buf)
}

pub fn run_man(_a: ManArgs) -> Result<u8> {
    let cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    write_stdout(&buf)
}

fn write_stdout(bytes: &[u8]) -> Result<u8> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(0)
}
