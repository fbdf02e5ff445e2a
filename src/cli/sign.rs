//! `sign`: sign a CSR from a partner or gateway operator with an environment's CA.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, say};
use crate::ops::csr::SignRequest;
use crate::pki::Kind;
use crate::profile::Dur;
use crate::report::{self, sanitize};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Only the request's public key is used as is. Its self-signature must verify and its key must
be ecdsa-p256, ecdsa-p384, ed25519 or RSA 2048/3072/4096. Key usage, EKU (from --kind),
basicConstraints (always CA:FALSE) and validity come from the profile and flags, never from
the request. Names: --dns/--ip, else the tenant profile's (with --tenant); the names the
request asks for are used only with --accept-csr-sans. Without --tenant the subject is the
request's and the certificate is recorded under the pseudo-tenant `_signed`; either way
`mtlsctl revoke --env E --serial HEX` finds it.")]
pub struct Args {
    /// The certificate signing request (PEM or DER)
    #[arg(long, value_name = "FILE")]
    pub csr: PathBuf,
    /// Environment whose CA signs
    #[arg(long)]
    pub env: String,
    /// server (default without --tenant) or client; with --tenant the profile's kind
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// DNS subject alternative name (repeat)
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// IP subject alternative name (repeat)
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// Validity, e.g. 90d, 1y (default: the profile's, or 365d without --tenant)
    #[arg(long, value_name = "DUR")]
    pub validity: Option<Dur>,
    /// Record the certificate as this tenant's, with its profile's subject and names
    #[arg(long)]
    pub tenant: Option<String>,
    /// Also grant the subject alternative names the request asks for
    #[arg(long)]
    pub accept_csr_sans: bool,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("sign")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let checked = crate::ops::csr::read_csr(&a.csr)?;
    let req = SignRequest {
        env: a.env.clone(),
        tenant: a.tenant.clone(),
        kind: a.kind,
        dns: a.dns,
        ip: a.ip,
        validity: a.validity,
        accept_csr_sans: a.accept_csr_sans,
    };
    let kind = crate::ops::csr::sign_kind(&profiles, &req, &checked)?;
    let tenant = a.tenant.as_deref();
    // no CA at all is an error before the lock; a first issuing CA is made under it
    match crate::ops::ca::open_for(&ws, &profiles, &a.env, tenant, kind) {
        Ok(_) | Err(crate::ops::OpError::NoIssuingCa { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let _lock = ctx.lock_for_write(&ws)?;
    let pass = a.pass.for_env(ctx, &ws, &a.env)?;
    let now = time::OffsetDateTime::now_utc();
    crate::ops::ca::ensure_issuing(&ws, &profiles, &a.env, tenant, kind, pass.as_ref(), now)?;
    let ca = crate::ops::ca::open_for(&ws, &profiles, &a.env, tenant, kind)?;
    let unlocked = ca.unlock(&ws, &profiles, pass.as_ref())?;
    let rep = crate::ops::csr::sign(&ws, &profiles, &req, &checked, &unlocked.with(), now)?;
    for w in &rep.warnings {
        ctx.warn(w);
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Signed a {} certificate with the {} CA.",
            rep.kind, rep.env
        ))?;
        if !ctx.global.quiet {
            say!(out, "  subject:   {}", sanitize(&rep.subject));
            say!(out, "  serial:    {}", rep.serial);
            say!(
                out,
                "  valid:     {} .. {}",
                report::rfc3339(rep.not_before),
                report::rfc3339(rep.not_after)
            );
            say!(out, "  cert:      {}", rep.cert.display());
            say!(out, "  fullchain: {}", rep.fullchain.display());
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}
