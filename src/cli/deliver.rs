//! `deliver`: the platform's own credential, key included, in its deployment's shape.

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, Exit, say};
use crate::ops::deliver::{self, Format};
use crate::pki::Kind;
use crate::report::sanitize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tenant whose current certificate to deliver
    #[arg(long)]
    pub tenant: String,
    /// Environment
    #[arg(long)]
    pub env: String,
    /// client or server
    #[arg(long, value_parser = crate::cli::kind_parser(), default_value = "client")]
    pub kind: Kind,
    /// pem-dir (a folder: key.pem 0600, cert.pem, chain.pem, fullchain.pem), pfx (the PFX
    /// and PATH.pass, both 0600) or k8s-tls-secret (a kubernetes.io/tls Secret, 0600)
    #[arg(long, value_name = "FORMAT", value_parser = format_parser())]
    pub format: Format,
    /// Where to write it, outside the workspace (a folder for pem-dir, else a file)
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Replace --out when it is an earlier delivery of the same format
    #[arg(long)]
    pub force: bool,
    /// k8s-tls-secret: the Secret's name (default TENANT-ENV-KIND-tls)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// k8s-tls-secret: the Secret's namespace (default: none, set by kubectl -n)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
}

fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Format::NAMES).try_map(|s| s.parse::<Format>())
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("deliver")?;
    if a.format != Format::K8sTlsSecret && (a.name.is_some() || a.namespace.is_some()) {
        anyhow::bail!("--name and --namespace apply to --format k8s-tls-secret only");
    }
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    profiles.check_env(&a.env)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let rep = deliver::deliver(
        &ws,
        &deliver::Request {
            tenant: &a.tenant,
            env: &a.env,
            kind: a.kind,
            format: a.format,
            out: &a.out,
            force: a.force,
            secret_name: a.name.as_deref(),
            namespace: a.namespace.as_deref(),
        },
    )?;
    ctx.emit(&rep, |out| {
        say!(
            out,
            "Delivered {}/{} {} {} as {} (with its private key; recorded in the audit trail):",
            sanitize(&rep.tenant),
            sanitize(&rep.env),
            rep.kind,
            rep.serial,
            rep.format
        );
        for f in &rep.files {
            say!(
                out,
                "  {} {}",
                f.mode,
                sanitize(&f.path.display().to_string())
            );
        }
        for n in &rep.next {
            say!(out, "Next: {}", sanitize(n));
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}
