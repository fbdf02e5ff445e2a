//! `csr`: a key (kept in the workspace) and a PKCS#10 request from a tenant's profile,
//! for a CA that someone else runs.

use anyhow::Result;

use super::{Ctx, Exit, say};
use crate::pki::Kind;
use crate::report::sanitize;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The key stays in the workspace (pki/ENV/TENANT/KIND/pending/key.pem, mode 0600); send only
the request. When the CA sends the certificate back, complete the issuance with
`mtlsctl import --tenant T --env E --cert FILE --chain CA-CHAIN`.")]
pub struct Args {
    /// Tenant whose profile gives the subject and names
    #[arg(long)]
    pub tenant: String,
    /// Environment
    #[arg(long)]
    pub env: String,
    /// Client or server certificate (default: the profile's kind)
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// Replace a request that is already pending (its key is deleted)
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("csr")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let rep = crate::ops::csr::csr(
        &ws,
        &profiles,
        &a.tenant,
        &a.env,
        a.kind,
        a.force,
        time::OffsetDateTime::now_utc(),
    )?;
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Made a {} key and request for {}/{}.",
            rep.key_algorithm, rep.tenant, rep.env
        ))?;
        if !ctx.global.quiet {
            say!(out, "  subject:  {}", sanitize(&rep.subject));
            let mut names: Vec<String> = rep.san.dns.iter().map(|d| format!("DNS:{d}")).collect();
            names.extend(rep.san.ip.iter().map(|i| format!("IP:{i}")));
            names.extend(rep.san.email.iter().map(|e| format!("email:{e}")));
            names.extend(rep.san.uri.iter().map(|u| format!("URI:{u}")));
            if !names.is_empty() {
                say!(out, "  names:    {}", sanitize(&names.join(", ")));
            }
            say!(out, "  request:  {}", rep.csr.display());
            say!(
                out,
                "  key:      {} (0600, never leaves the workspace)",
                rep.key.display()
            );
            say!(
                out,
                "Send the request to the CA, then: mtlsctl import --tenant {} --env {} --kind {} --cert SIGNED.pem --chain CA-CHAIN.pem",
                rep.tenant,
                rep.env,
                rep.kind
            );
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}
