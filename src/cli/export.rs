//! `export`: the hand-off folder (or zip) for a gateway operator. Never a private key.

use std::path::PathBuf;

use anyhow::Result;
use clap::builder::{PossibleValue, TypedValueParser};

use super::{Ctx, Exit, say};
use crate::ops::export::{self, Format};
use crate::report::sanitize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tenant whose gateway receives the hand-off
    #[arg(long)]
    pub tenant: String,
    /// Environment (its CA, CRL and the tenant's current client certificate)
    #[arg(long)]
    pub env: String,
    /// Gateway format, or all (repeat or separate with commas)
    #[arg(
        long,
        value_name = "FORMAT",
        value_delimiter = ',',
        default_value = "pem",
        value_parser = FormatParser
    )]
    pub format: Vec<Selection>,
    /// Folder to write (with --zip: the zip file)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Write one zip file instead of a folder (fixed timestamps: same state, same bytes)
    #[arg(long)]
    pub zip: bool,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
    /// Tyk organisation ID to prefix Tyk certificate IDs with
    #[arg(long, value_name = "ID", default_value = "")]
    pub tyk_org_id: String,
    /// Also say what changed since the last hand-off to this tenant (new CA, new pins,
    /// new CRL)
    #[arg(long)]
    pub since_last: bool,
}

/// One `--format` value: a format of the registry, or all of them.
#[derive(Clone, Copy, Debug)]
pub enum Selection {
    All,
    One(Format),
}

/// Parses `--format` values against the export registry, which also gives `--help` and
/// the shell completions their list.
#[derive(Clone)]
struct FormatParser;

impl TypedValueParser for FormatParser {
    type Value = Selection;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<Selection, clap::Error> {
        let name = value.to_string_lossy();
        match name.trim() {
            "all" => Ok(Selection::All),
            n => n.parse().map(Selection::One).map_err(|e: String| {
                clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n"))
                    .with_cmd(cmd)
            }),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let names = Format::all().map(Format::as_str).chain(["all"]);
        Some(Box::new(names.map(PossibleValue::new)))
    }
}

fn formats(selected: &[Selection]) -> Vec<Format> {
    selected
        .iter()
        .flat_map(|s| match *s {
            Selection::All => Format::all().collect(),
            Selection::One(f) => vec![f],
        })
        .collect()
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("export")?;
    let formats = formats(&a.format);
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    // every hand-off is an audit line
    let _lock = ctx.lock_for_write(&ws)?;
    let rep = export::export(
        &ws,
        &profiles,
        &export::Request {
            tenant: &a.tenant,
            env: &a.env,
            formats: &formats,
            tyk_org_id: &a.tyk_org_id,
            now: time::OffsetDateTime::now_utc(),
            since_last: a.since_last,
        },
        &a.out,
        a.zip,
        a.force,
    )?;
    for w in &rep.warnings {
        ctx.warn(w);
    }
    ctx.emit(&rep, |out| {
        let names: Vec<&str> = rep.formats.iter().map(|f| f.as_str()).collect();
        ctx.note(format!(
            "Wrote the {}/{} hand-off ({}) to {}{}.",
            rep.tenant,
            rep.env,
            names.join(", "),
            rep.out.display(),
            if rep.zip { " (zip)" } else { "" }
        ))?;
        say!(out, "  client:       {}", sanitize(&rep.client_subject));
        say!(out, "  serial:       {}", rep.client_serial);
        say!(out, "  verify depth: {}", rep.verify_depth);
        if let Some(sl) = &rep.since_last {
            say!(
                out,
                "  since last:   {}{}",
                sanitize(&sl.summary),
                sl.previous_at
                    .map(|t| format!(" (last hand-off {})", crate::report::rfc3339(t)))
                    .unwrap_or_default()
            );
        }
        for c in &rep.checks {
            say!(
                out,
                "  check:        {} {}: {} ({})",
                if c.ok { "ok  " } else { "FAIL" },
                c.format.as_str(),
                c.check,
                c.detail
            );
        }
        for f in &rep.files {
            say!(
                out,
                "  {:<40} {}",
                f.path,
                f.role.split(':').next().unwrap_or("")
            );
        }
        say!(
            out,
            "  README.txt tells the operator what to install where; no private key is included."
        );
        Ok(())
    })?;
    Ok(Exit::Ok)
}
