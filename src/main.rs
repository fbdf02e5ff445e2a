//! The `mtlsctl` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// only the binary talks to a person: it parses and renders, the core decides
mod cli;
mod report;

// the layers below, by the names the command modules use
use mtlsctl_core::types as pki;
use mtlsctl_core::{ops, profile, workspace};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            // a reader that went away is not an error of ours
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // escaped: an error may carry a name or path taken from a file or a flag
            eprintln!("error: {}", report::sanitize(&cli::render_error(&err)));
            cli::exit_code_for(&err).into()
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
