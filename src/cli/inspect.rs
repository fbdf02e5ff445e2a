//! `inspect`: what a certificate, chain, CSR, CRL, key or PFX file says.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::secrets;
use super::{Ctx, Exit, Out, say};
use crate::pki::inspect::{CertInfo, Inspected, Item, inspect_bytes};
use crate::report::{rfc3339, sanitize};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file to describe (PEM or DER)
    pub file: PathBuf,
    /// For a PFX: file whose first line is its password (also MTLSCTL_PFX_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("inspect")?;
    let data =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let items = match inspect_bytes(&data, None).with_context(|| a.file.display().to_string())? {
        Inspected::Items(i) => i,
        Inspected::NeedsPfxPassword => {
            let pw = secrets::pfx_password(a.password_file.as_deref(), false, ctx.global.no_input)?;
            match inspect_bytes(&data, Some(&pw)).with_context(|| a.file.display().to_string())? {
                Inspected::Items(i) => i,
                Inspected::NeedsPfxPassword => unreachable!("password given"),
            }
        }
    };
    if ctx.json() {
        ctx.out.json(&serde_json::json!({
            "file": crate::workspace::absolute(&a.file),
            "items": items,
        }))?;
        return Ok(Exit::Ok);
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            say!(ctx.out, "");
        }
        match item {
            Item::Certificate(c) => print_cert(&ctx.out, c, "")?,
            Item::Csr(c) => {
                say!(ctx.out, "Certificate request");
                say!(ctx.out, "  subject:    {}", sanitize(&c.subject));
                say!(
                    ctx.out,
                    "  key:        {} ({} bits)",
                    c.key.algorithm,
                    c.key.bits
                );
                say!(
                    ctx.out,
                    "  signature:  {} ({})",
                    c.signature_algorithm,
                    if c.signature_valid {
                        "valid"
                    } else {
                        "INVALID"
                    }
                );
                if !c.san.is_empty() {
                    say!(ctx.out, "  SAN:        {}", sanitize(&c.san.joined()));
                }
                if c.requests_ca {
                    say!(
                        ctx.out,
                        "  requests:   CA:TRUE (mtlsctl sign never grants it)"
                    );
                }
            }
            Item::Crl(c) => {
                say!(ctx.out, "CRL");
                say!(ctx.out, "  issuer:      {}", sanitize(&c.issuer));
                say!(
                    ctx.out,
                    "  number:      {}",
                    c.crl_number.as_deref().unwrap_or("-")
                );
                say!(ctx.out, "  this update: {}", rfc3339(c.this_update));
                say!(
                    ctx.out,
                    "  next update: {}",
                    c.next_update.map(rfc3339).unwrap_or_else(|| "-".into())
                );
                say!(ctx.out, "  revoked:     {}", c.revoked.len());
                for r in &c.revoked {
                    say!(
                        ctx.out,
                        "    {} at {} ({})",
                        r.serial,
                        rfc3339(r.revoked_at),
                        r.reason.as_deref().unwrap_or("unspecified")
                    );
                }
            }
            Item::PrivateKey(k) => {
                say!(ctx.out, "Private key (contents not shown)");
                say!(ctx.out, "  format:     {}", k.format);
                say!(ctx.out, "  encrypted:  {}", k.encrypted);
                if let Some(a) = &k.algorithm {
                    say!(ctx.out, "  algorithm:  {a}");
                }
                if let Some(s) = &k.public_key_sha256 {
                    say!(ctx.out, "  public key sha256: {s}");
                }
            }
            Item::Pfx(p) => {
                say!(ctx.out, "PKCS#12 bundle");
                say!(
                    ctx.out,
                    "  private key:   {}",
                    if p.has_key {
                        "present (not shown)"
                    } else {
                        "none"
                    }
                );
                if let Some(m) = p.key_matches_cert {
                    say!(ctx.out, "  key matches:   {m}");
                }
                if let Some(n) = &p.friendly_name {
                    say!(ctx.out, "  friendly name: {}", sanitize(n));
                }
                if let Some(c) = &p.certificate {
                    say!(ctx.out, "");
                    print_cert(&ctx.out, c, "  ")?;
                }
                for c in &p.chain {
                    say!(ctx.out, "");
                    print_cert(&ctx.out, c, "  ")?;
                }
            }
        }
    }
    Ok(Exit::Ok)
}

fn print_cert(out: &Out, c: &CertInfo, ind: &str) -> std::io::Result<()> {
    say!(
        out,
        "{ind}Certificate{}",
        if c.is_ca { " (CA)" } else { "" }
    );
    say!(out, "{ind}  subject:     {}", sanitize(&c.subject));
    say!(out, "{ind}  issuer:      {}", sanitize(&c.issuer));
    say!(out, "{ind}  serial:      {}", c.serial);
    say!(out, "{ind}  not before:  {}", rfc3339(c.not_before));
    say!(out, "{ind}  not after:   {}", rfc3339(c.not_after));
    if !c.san.is_empty() {
        say!(out, "{ind}  SAN:         {}", sanitize(&c.san.joined()));
    }
    if !c.key_usage.is_empty() {
        say!(out, "{ind}  key usage:   {}", c.key_usage.join(", "));
    }
    if !c.extended_key_usage.is_empty() {
        say!(
            out,
            "{ind}  ext. usage:  {}",
            c.extended_key_usage.join(", ")
        );
    }
    say!(
        out,
        "{ind}  basic:       CA:{}{}",
        if c.is_ca { "TRUE" } else { "FALSE" },
        c.path_length
            .map(|p| format!(", pathlen:{p}"))
            .unwrap_or_default()
    );
    say!(
        out,
        "{ind}  key:         {} ({} bits)",
        c.key.algorithm,
        c.key.bits
    );
    say!(out, "{ind}  signature:   {}", c.signature_algorithm);
    say!(out, "{ind}  sha256:      {}", c.fingerprints.sha256);
    say!(out, "{ind}  sha1:        {}", c.fingerprints.sha1);
    Ok(())
}
