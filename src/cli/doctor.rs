//! `doctor`: check that the workspace agrees with itself; `--repair` fixes what needs no
//! passphrase.

use anyhow::Result;

use super::{Ctx, Exit, say};
use crate::ops::doctor::{self, DoctorReport, Options, Problem, Severity};
use crate::report::sanitize;

const AFTER_HELP: &str = "\
Checks, without the CA passphrase: each CA certificate carries the key recorded when the
CA was made (pki/ENV/ca/ca.json); every current certificate is signed by its CA; the
revocations of the meta.json files, state.json and the CRL agree, and the CRL is not older
than the last one signed; no staging leftovers under pki/; no symbolic link leads out of
the workspace; names are valid.

--repair records a missing ca.json, rebuilds state.json's revocations from the meta.json
files and the CRL, and keeps the highest CRL number in both places; what needs the
passphrase (re-signing the CRL) it names.

Exit codes: 0 no error (warnings may remain); 1 a problem remains.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Fix what is safe without the CA passphrase, then check again
    #[arg(long)]
    pub repair: bool,
    /// Only this environment (and its folder under pki/)
    #[arg(long)]
    pub env: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("doctor")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    // a consistent view: no other run is half-way through a change
    let _lock = ws.lock()?;
    let rep = doctor::run(
        &ws,
        &profiles,
        &Options {
            env: a.env.as_deref(),
            repair: a.repair,
        },
    )?;
    if !rep.healthy {
        ctx.out.unquiet();
    }
    ctx.emit(&rep, |_| print_human(ctx, &rep, ws.root()))?;
    Ok(if rep.healthy { Exit::Ok } else { Exit::Error })
}

fn rel(p: &std::path::Path, root: &std::path::Path) -> String {
    sanitize(&p.strip_prefix(root).unwrap_or(p).display().to_string())
}

fn print_problem(ctx: &Ctx, p: &Problem, root: &std::path::Path) -> Result<()> {
    let sev = match p.severity {
        Severity::Error => "ERROR",
        Severity::Warning => "warning",
    };
    say!(ctx.out, "{sev:<8}{} [{}]", rel(&p.path, root), p.check);
    say!(ctx.out, "        {}", sanitize(&p.problem));
    if let (Some(e), Some(f)) = (&p.expected, &p.found) {
        say!(ctx.out, "        expected: {}", sanitize(e));
        say!(ctx.out, "        found:    {}", sanitize(f));
    }
    let how = if p.repairable {
        " (doctor --repair)"
    } else if p.needs_passphrase {
        " (needs the CA passphrase)"
    } else {
        ""
    };
    say!(ctx.out, "        fix{how}: {}", sanitize(&p.fix));
    Ok(())
}

fn print_human(ctx: &Ctx, rep: &DoctorReport, root: &std::path::Path) -> Result<()> {
    for r in &rep.repaired {
        say!(
            ctx.out,
            "repaired {}: {}",
            rel(&r.path, root),
            sanitize(&r.action)
        );
    }
    for p in &rep.problems {
        print_problem(ctx, p, root)?;
    }
    let envs = rep.envs.join(", ");
    if rep.problems.is_empty() {
        say!(
            ctx.out,
            "Healthy: no problems ({envs}; {} current certificates checked).",
            rep.leaves_checked
        );
    } else {
        say!(
            ctx.out,
            "{} error(s), {} warning(s) ({envs}; {} current certificates checked){}.",
            rep.errors,
            rep.warnings,
            rep.leaves_checked,
            if rep.healthy { "; healthy" } else { "" }
        );
    }
    Ok(())
}
