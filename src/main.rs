//! The `mtlsctl` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// only the binary talks to a person: it parses and renders, the core decides
mod cli;
mod report;

// the layers below, by the names the command modules use
use mtlsctl_core::{ops, pki, profile, workspace};

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            let code = cli::exit_code_for(&err);
            eprintln!("error: {}", cli::render_error(&err));
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `mtlsctl list | head -1`: once the reader is gone, `println!` panics with "Broken pipe".
/// That is not an error of ours; end quietly with success instead of a panic message.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
