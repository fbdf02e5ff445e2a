//! `import`: bring back the certificate an external CA signed for a pending request and
//! complete the issuance like `issue` (PFX, inventory, audit).

use std::path::PathBuf;

use anyhow::Result;

use super::{Ctx, Exit};
use crate::pki::Kind;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The certificate must match the pending key made by `mtlsctl csr`, chain to the root given
(in --chain or after the certificate in --cert), carry the EKU of its kind and every name
the profile asks for. A customer root that breaks a strict rule (no keyUsage, as
`openssl req -x509` makes) is refused unless --accept-nonconforming-ca is given; a leaf
without the EKU of its kind never is. The pending folder is removed once the certificate
is stored; the stored chain is then the tenant's trust anchor (verify, export).")]
pub struct Args {
    /// Tenant of the pending request
    #[arg(long)]
    pub tenant: String,
    /// Environment of the pending request
    #[arg(long)]
    pub env: String,
    /// Client or server (default: the profile's kind)
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// The signed certificate (PEM or DER; may be followed by its chain)
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// The CA chain: intermediates and the root (PEM)
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
    /// Take a customer CA that breaks a strict RFC 5280 rule, such as a root without
    /// keyUsage (warned in the output and the audit line)
    #[arg(long)]
    pub accept_nonconforming_ca: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("import")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let imported = crate::ops::csr::import(
        &ws,
        &profiles,
        &a.tenant,
        &a.env,
        a.kind,
        &a.cert,
        a.chain.as_deref(),
        a.accept_nonconforming_ca,
        time::OffsetDateTime::now_utc(),
    )?;
    let mut rep = imported.report;
    rep.warnings = imported
        .warnings
        .iter()
        .map(|f| super::verify::explain::explain(f).message)
        .collect();
    for w in &rep.warnings {
        ctx.warn(w);
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Imported the {} certificate of {}/{}.",
            rep.kind, rep.tenant, rep.env
        ))?;
        super::issue::print_report(out, &rep)?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}
