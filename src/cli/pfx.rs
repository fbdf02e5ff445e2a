//! `pfx`: standalone PKCS#12 bundling.

use std::path::PathBuf;

use anyhow::Result;

use super::secrets;
use super::{Ctx, Exit};
use crate::ops;
use crate::pki::pkcs12::PfxCompat;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The certificate (PEM or DER; a full chain file is fine)
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Its private key (PEM or DER, encrypted or not)
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// CA certificates to include
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,
    /// Where to write the PFX (created 0600)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// File whose first line is the PFX password (also MTLSCTL_PFX_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// File whose first line is the key's passphrase, if it is encrypted (also MTLSCTL_KEY_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Who must open the PFX: modern (= openssl3), legacy (= windows2016, java8, macos)
    /// or pbmac1
    #[arg(long, value_name = "TARGET", value_parser = crate::cli::pfx_target_parser(), default_value = "modern")]
    pub pfx_target: PfxCompat,
    /// Same as --pfx-target legacy: PBE-SHA1-3DES, SHA-1 MAC, for Windows Server 2016/IIS,
    /// old macOS, Java 8
    #[arg(long)]
    pub legacy: bool,
    /// Friendly name (alias) of the key entry (default: the certificate's CN)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace --out if it exists
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("pfx")?;
    let password = secrets::pfx_password(a.password_file.as_deref(), true, ctx.global.no_input)?;
    let key_pass = secrets::key_passphrase(
        &a.key,
        a.key_passphrase_file.as_deref(),
        ctx.global.no_input,
    )?;
    let compat = if a.legacy {
        PfxCompat::Legacy
    } else {
        a.pfx_target
    };
    let out = ops::pfx::bundle(&ops::pfx::Request {
        cert: &a.cert,
        key: &a.key,
        chain: a.chain.as_deref(),
        out: &a.out,
        key_passphrase: key_pass.as_ref(),
        password: &password,
        compat,
        friendly_name: a.name.as_deref(),
        overwrite: a.force,
    })?;
    let path = crate::workspace::absolute(&a.out);
    let rep = serde_json::json!({
        "pfx": path,
        "compat": compat.as_str(),
        "friendly_name": out.friendly_name,
        "subject": out.subject,
        "chain_certificates": out.chain_len,
        "verified": true,
    });
    ctx.emit(&rep, |_| {
        ctx.note(format!(
            "Wrote {} ({} compat, key + certificate + {} chain certificate(s), friendly name '{}'); reopened with its password and checked.",
            path.display(),
            compat.as_str(),
            out.chain_len,
            out.friendly_name
        ))?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}
