//! `inspect`: what a certificate, chain, CSR, CRL, key or PFX file says.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::secrets;
use super::{Ctx, print_json};
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

pub fn run(ctx: &Ctx, a: Args) -> Result<u8> {
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
        print_json(&serde_json::json!({
            "file": crate::workspace::absolute(&a.file),
            "items": items,
        }))?;
        return Ok(0);
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match item {
            Item::Certificate(c) => print_cert(c, ""),
            Item::Csr(c) => {
                println!("Certificate request");
                println!("  subject:    {}", sanitize(&c.subject));
                println!("  key:        {} ({} bits)", c.key.algorithm, c.key.bits);
                println!(
                    "  signature:  {} ({})",
                    c.signature_algorithm,
                    if c.signature_valid {
                        "valid"
                    } else {
                        "INVALID"
                    }
                );
                if !c.san.is_empty() {
                    println!("  SAN:        {}", sanitize(&c.san.joined()));
                }
                if c.requests_ca {
                    println!("  requests:   CA:TRUE (mtlsctl sign never grants it)");
                }
            }
            Item::Crl(c) => {
                println!("CRL");
                println!("  issuer:      {}", sanitize(&c.issuer));
                println!("  number:      {}", c.crl_number.as_deref().unwrap_or("-"));
                println!("  this update: {}", rfc3339(c.this_update));
                println!(
                    "  next update: {}",
                    c.next_update.map(rfc3339).unwrap_or_else(|| "-".into())
                );
                println!("  revoked:     {}", c.revoked.len());
                for r in &c.revoked {
                    println!(
                        "    {} at {} ({})",
                        r.serial,
                        rfc3339(r.revoked_at),
                        r.reason.as_deref().unwrap_or("unspecified")
                    );
                }
            }
            Item::PrivateKey(k) => {
                println!("Private key (contents not shown)");
                println!("  format:     {}", k.format);
                println!("  encrypted:  {}", k.encrypted);
                if let Some(a) = &k.algorithm {
                    println!("  algorithm:  {a}");
                }
                if let Some(s) = &k.public_key_sha256 {
                    println!("  public key sha256: {s}");
                }
            }
            Item::Pfx(p) => {
                println!("PKCS#12 bundle");
                println!(
                    "  private key:   {}",
                    if p.has_key {
                        "present (not shown)"
                    } else {
                        "none"
                    }
                );
                if let Some(m) = p.key_matches_cert {
                    println!("  key matches:   {m}");
                }
                if let Some(n) = &p.friendly_name {
                    println!("  friendly name: {}", sanitize(n));
                }
                if let Some(c) = &p.certificate {
                    println!();
                    print_cert(c, "  ");
                }
                for c in &p.chain {
                    println!();
                    print_cert(c, "  ");
                }
            }
        }
    }
    Ok(0)
}

fn print_cert(c: &CertInfo, ind: &str) {
    println!("{ind}Certificate{}", if c.is_ca { " (CA)" } else { "" });
    println!("{ind}  subject:     {}", sanitize(&c.subject));
    println!("{ind}  issuer:      {}", sanitize(&c.issuer));
    println!("{ind}  serial:      {}", c.serial);
    println!("{ind}  not before:  {}", rfc3339(c.not_before));
    println!("{ind}  not after:   {}", rfc3339(c.not_after));
    if !c.san.is_empty() {
        println!("{ind}  SAN:         {}", sanitize(&c.san.joined()));
    }
    if !c.key_usage.is_empty() {
        println!("{ind}  key usage:   {}", c.key_usage.join(", "));
    }
    if !c.extended_key_usage.is_empty() {
        println!("{ind}  ext. usage:  {}", c.extended_key_usage.join(", "));
    }
    println!(
        "{ind}  basic:       CA:{}{}",
        if c.is_ca { "TRUE" } else { "FALSE" },
        c.path_length
            .map(|p| format!(", pathlen:{p}"))
            .unwrap_or_default()
    );
    println!(
        "{ind}  key:         {} ({} bits)",
        c.key.algorithm, c.key.bits
    );
    println!("{ind}  signature:   {}", c.signature_algorithm);
    println!("{ind}  sha256:      {}", c.fingerprints.sha256);
    println!("{ind}  sha1:        {}", c.fingerprints.sha1);
}
