//! `audit`: list the audit trail, and `audit verify`: check its hash chain.

use anyhow::Result;
use clap::Subcommand;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Ctx, Exit, Out, say};
use crate::ops::audit::{self as opa, Query};
use crate::profile::Dur;
use crate::report::{self, sanitize, table};
use crate::workspace::audit::{Record, Verdict};

const AFTER: &str = "\
audit.log holds one JSON line per change to the workspace: seq, prev (the SHA-256 of the line
before), op_id, time, user, op, tenant, env, kind, serial, sha256, detail. audit.head anchors
the last line. `audit verify` exits 0 when the chain is intact, 1 naming the first broken
line. See docs/operations.md (\"Audit trail\").";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Option<AuditCmd>,
    /// Only this tenant's lines
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this environment's lines
    #[arg(long)]
    pub env: Option<String>,
    /// Only this operation: ca-init, issue, renew, import, csr, sign, revoke, crl,
    /// serve-cert, export, deliver, tenant-remove
    #[arg(long, value_name = "OP")]
    pub op: Option<String>,
    /// Only lines since this long ago (e.g. 7d) or this time (RFC 3339)
    #[arg(long, value_name = "DUR|RFC3339", value_parser = parse_since)]
    pub since: Option<Since>,
    /// Only the last N matching lines
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of audit.log and its anchor audit.head
    Verify,
}

/// `--since`: a duration back from now, or a point in time.
#[derive(Debug, Clone, Copy)]
pub enum Since {
    Ago(Dur),
    At(OffsetDateTime),
}

fn parse_since(s: &str) -> Result<Since, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Since::At(t));
    }
    s.parse::<Dur>().map(Since::Ago).map_err(|_| {
        format!("'{s}' is neither a duration (7d, 12h) nor an RFC 3339 time (2027-01-31T12:00:00Z)")
    })
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("audit")?;
    let ws = ctx.workspace()?;
    if let Some(AuditCmd::Verify) = a.cmd {
        return verify(ctx, &ws.audit_verify()?);
    }
    let since = a.since.map(|s| match s {
        Since::Ago(d) => OffsetDateTime::now_utc() - d.to_time(),
        Since::At(t) => t,
    });
    let listing = opa::list(
        &ws,
        &Query {
            tenant: a.tenant.as_deref(),
            env: a.env.as_deref(),
            op: a.op.as_deref(),
            since,
            limit: a.limit,
        },
    )?;
    for bad in &listing.unreadable {
        ctx.warn(format!(
            "audit.log line {} is {}: skipped (`mtlsctl audit verify` checks the whole log)",
            bad.line,
            sanitize(&bad.reason)
        ));
    }
    ctx.emit(&listing.records, |out| {
        if listing.records.is_empty() {
            ctx.note("No audit lines match.")?;
            return Ok(());
        }
        print_table(ctx, out, &listing.records)?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn print_table(ctx: &Ctx, out: &Out, records: &[Record]) -> std::io::Result<()> {
    let mut t = table::new(
        &["time", "user", "op", "tenant/env/kind", "serial"],
        ctx.stdout_tty,
    );
    for r in records {
        let what: Vec<&str> = [&r.tenant, &r.env, &r.kind]
            .into_iter()
            .filter_map(|v| v.as_deref())
            .collect();
        t.add_row(vec![
            report::rfc3339(r.time),
            sanitize(&r.user),
            sanitize(&r.op),
            sanitize(&what.join("/")),
            sanitize(r.serial.as_deref().unwrap_or("")),
        ]);
    }
    say!(out, "{t}");
    Ok(())
}

/// Prints the verdict; exit 1 when the chain is broken. The offending line is
/// untrusted text and is escaped, in JSON too.
fn verify(ctx: &Ctx, v: &Verdict) -> Result<Exit> {
    let mut v = v.clone();
    if let Some(p) = &mut v.problem {
        p.excerpt = p.excerpt.as_deref().map(sanitize);
    }
    if !v.ok {
        ctx.out.unquiet();
    }
    ctx.emit(&v, |out| {
        print_verdict(out, &v)?;
        Ok(())
    })?;
    Ok(if v.ok { Exit::Ok } else { Exit::Error })
}

fn print_verdict(out: &Out, v: &Verdict) -> std::io::Result<()> {
    if let Some(p) = &v.problem {
        say!(
            out,
            "audit.log is broken at line {} ({}): {}",
            p.line,
            p.kind.as_str(),
            p.message
        );
        if let Some(e) = &p.excerpt {
            say!(out, "  line {}: {e}", p.line);
        }
        if p.line > 1 {
            say!(out, "  lines 1 to {} chain as written.", p.line - 1);
        }
        say!(
            out,
            "  Restore audit.log and audit.head from a backup, or see docs/operations.md (\"Audit trail\")."
        );
        return Ok(());
    }
    say!(
        out,
        "audit.log is intact: {} lines checked ({} legacy, {} chained).",
        v.lines,
        v.legacy,
        v.chained
    );
    if let Some(h) = &v.head {
        say!(
            out,
            "  head:  seq {}, sha256 {} ({})",
            h.seq,
            h.sha256,
            v.head_file.display()
        );
    }
    if let Some(l) = &v.last {
        let seq = l.seq.map(|s| format!("seq {s}, ")).unwrap_or_default();
        say!(out, "  last:  line {}, {seq}sha256 {}", l.line, l.sha256);
        say!(
            out,
            "  Keep that hash outside the workspace (a ticket, a CI log): a log rewritten from the start would not reach it."
        );
    }
    if v.beyond_head > 0 {
        say!(
            out,
            "  {} line(s) beyond the head: a run stopped before moving it; the next change moves it.",
            v.beyond_head
        );
    }
    Ok(())
}
