//! `expiry`: what runs out when, for people (table), scripts (JSON) and monitoring
//! (Prometheus), with an exit code CI can act on.

use std::path::PathBuf;

use anyhow::Result;
use comfy_table::{Cell, Color};

use super::{Ctx, Exit, Output, say};
use crate::ops::expiry::Target;
use crate::ops::expiry::{self, Finding, Options, Outcome, Status};
use crate::profile::Dur;
use crate::report::{self, sanitize, table};

const AFTER_HELP: &str = "\
Sources: with no PATH and no --remote, the whole workspace (every current leaf, every CA
certificate, every CRL). PATH: files, or folders walked recursively for *.pem *.crt *.cer
*.cert *.der *.crl (PEM or DER certificates, chains and CRLs). --remote: the chain a live
endpoint serves.

Exit codes: 0 nothing due; 3 something due for renewal; 4 something critical, expired,
revoked but still within its validity, or a CRL past its nextUpdate; 1 a source could not
be read (named on stderr; everything readable is still reported) or another error.
When several apply: 4 before 1 before 3.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Certificate, chain or CRL files, or folders of them (default: the workspace)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A live endpoint whose served chain to check: HOST:PORT or HOST:PORT/SNI (repeat)
    #[arg(long = "remote", value_name = "HOST:PORT[/SNI]")]
    pub remote: Vec<Target>,
    /// Due when less than this is left (default: the profile's renew_before for workspace
    /// leaves, 90d for workspace CAs, 30d for other certificates)
    #[arg(long, value_name = "DUR")]
    pub within: Option<Dur>,
    /// Critical when less than this is left
    #[arg(long, value_name = "DUR", default_value = "7d")]
    pub critical: Dur,
    /// Deadline for each --remote endpoint's whole exchange (connect and handshake)
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: Dur,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    let now = time::OffsetDateTime::now_utc();
    let opts = Options {
        within: a.within,
        critical: a.critical,
        timeout: std::time::Duration::from_secs(a.timeout.secs().max(1) as u64),
        ..Options::default()
    };
    let mut ws_root = None;
    let mut scan = if a.paths.is_empty() && a.remote.is_empty() {
        let ws = ctx.workspace()?;
        let profiles = ctx.profiles(&ws)?;
        ws_root = Some(ws.root().to_path_buf());
        expiry::scan_workspace(&ws, &profiles, &opts, now)?
    } else {
        let mut s = expiry::scan_paths(&a.paths, &opts, now);
        if !a.remote.is_empty() {
            s.findings
                .extend(expiry::scan_remote(&a.remote, &opts, now).findings);
        }
        s
    };
    expiry::sort(&mut scan.findings);
    for w in &scan.warnings {
        ctx.warn(w);
    }
    for f in scan
        .findings
        .iter()
        .filter(|f| f.status == Status::Unreadable)
    {
        eprintln!(
            "error: {}: {}",
            sanitize(&f.source),
            sanitize(f.error.as_deref().unwrap_or("unreadable"))
        );
    }
    let verdict = match Outcome::of(&scan.findings) {
        Outcome::Ok => Exit::Ok,
        Outcome::Due => Exit::Due,
        Outcome::Unreadable => Exit::Error,
        Outcome::Urgent => Exit::Critical,
    };
    if !verdict.is_ok() {
        ctx.out.unquiet();
    }
    match ctx.global.output {
        Output::Json => ctx.out.json(&scan.findings)?,
        Output::Prometheus => ctx
            .out
            .stream(|w| report::prometheus::write_expiry(&mut *w, &scan.findings, now))?,
        Output::Table => print_table(ctx, &scan.findings, ws_root.as_deref())?,
    }
    Ok(verdict)
}

/// Time left in the largest unit that keeps it readable: 45d, 30h, 12m, -3d.
fn left_text(secs: i64) -> String {
    let a = secs.unsigned_abs() as i64;
    // under a minute past is "0m", never "-0m"
    let sign = if secs <= -60 { "-" } else { "" };
    if a >= 2 * 86_400 {
        format!("{sign}{}d", a / 86_400)
    } else if a >= 2 * 3600 {
        format!("{sign}{}h", a / 3600)
    } else {
        format!("{sign}{}m", a / 60)
    }
}

fn colour(s: Status) -> Option<Color> {
    match s {
        Status::Ok => Some(Color::Green),
        Status::Due => Some(Color::Yellow),
        _ => Some(Color::Red),
    }
}

fn print_table(ctx: &Ctx, findings: &[Finding], ws_root: Option<&std::path::Path>) -> Result<()> {
    if findings.is_empty() {
        ctx.note("No certificates or CRLs found.")?;
        return Ok(());
    }
    let color = ctx.color();
    let mut t = table::new(
        &[
            "status",
            "left",
            "not after",
            "kind",
            "tenant/env",
            "subject",
            "serial",
            "source",
        ],
        ctx.stdout_tty,
    );
    if !ctx.stdout_tty {
        // no terminal width to fit: skip the layout pass, which is slow on large trees
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    }
    for f in findings {
        let mut status = Cell::new(f.status.as_str());
        if color && let Some(c) = colour(f.status) {
            status = status.fg(c);
        }
        let owner = match (&f.tenant, &f.env) {
            (Some(t), Some(e)) => sanitize(&format!("{t}/{e}")),
            (None, Some(e)) => sanitize(e),
            _ => "-".into(),
        };
        let source = match ws_root {
            Some(r) => std::path::Path::new(&f.source)
                .strip_prefix(r)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| f.source.clone()),
            None => f.source.clone(),
        };
        let subject = match (&f.subject, &f.error) {
            (Some(s), _) => sanitize(s),
            (None, Some(e)) => sanitize(e),
            _ => "-".into(),
        };
        t.add_row(vec![
            status,
            Cell::new(f.seconds_left.map(left_text).unwrap_or_else(|| "-".into())),
            Cell::new(f.not_after.map(report::date).unwrap_or_else(|| "-".into())),
            Cell::new(f.kind),
            Cell::new(owner),
            Cell::new(subject),
            Cell::new(
                f.serial
                    .as_deref()
                    .map(sanitize)
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(match &f.current {
                // the stable path a platform reads, then the file behind it
                Some(_) => sanitize(&format!("{source} (current)")),
                None => sanitize(&source),
            }),
        ]);
    }
    say!(ctx.out, "{t}");
    let counts = expiry::counts(findings);
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    ctx.note(parts.join(", "))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_text_units() {
        assert_eq!(left_text(45 * 86_400 + 5), "45d");
        assert_eq!(left_text(30 * 3600), "30h");
        assert_eq!(left_text(12 * 60 + 3), "12m");
        assert_eq!(left_text(-3 * 86_400), "-3d");
        assert_eq!(left_text(-59), "0m");
        assert_eq!(left_text(-61), "-1m");
    }
}
