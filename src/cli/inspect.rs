//! `inspect`: what a certificate, chain, CSR, CRL, key or PFX file says.

use std::path::PathBuf;

use anyhow::Result;

use super::secrets;
use super::{Ctx, Exit, Out, say};
use crate::ops::inspect::{self as opi, CertInfo, Inspected, Item, PfxInfo};
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
    let data = opi::read(&a.file)?;
    let mut locked = false;
    let items = match opi::describe(&a.file, &data, None)? {
        Inspected::Items(i) => i,
        Inspected::PfxLocked(info) => {
            match secrets::pfx_password_if_any(a.password_file.as_deref(), ctx.global.no_input)? {
                Some(pw) => match opi::describe(&a.file, &data, Some(&pw))? {
                    Inspected::Items(i) => i,
                    Inspected::PfxLocked(_) => unreachable!("password given"),
                },
                None => {
                    locked = true;
                    vec![Item::Pfx(info)]
                }
            }
        }
    };
    ctx.emit(&serde_json::json!({
            "file": crate::workspace::absolute(&a.file),
            "items": items,
        }), |out| {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                say!(out, "");
            }
            print_item(out, item)?;
        }
        if locked {
            ctx.note(
                "Its contents need the PFX password: give --password-file FILE or set MTLSCTL_PFX_PASSWORD.",
            )?;
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn print_item(out: &Out, item: &Item) -> std::io::Result<()> {
    match item {
        Item::Certificate(c) => print_cert(out, c, "")?,
        Item::Csr(c) => {
            say!(out, "Certificate request");
            say!(out, "  subject:    {}", sanitize(&c.subject));
            say!(
                out,
                "  key:        {} ({} bits)",
                c.key.algorithm,
                c.key.bits
            );
            say!(
                out,
                "  signature:  {} ({})",
                c.signature_algorithm,
                if c.signature_valid {
                    "valid"
                } else {
                    "INVALID"
                }
            );
            if !c.san.is_empty() {
                say!(out, "  SAN:        {}", sanitize(&c.san.joined()));
            }
            if c.requests_ca {
                say!(out, "  requests:   CA:TRUE (mtlsctl sign never grants it)");
            }
        }
        Item::Crl(c) => {
            say!(out, "CRL");
            say!(out, "  issuer:      {}", sanitize(&c.issuer));
            say!(
                out,
                "  number:      {}",
                c.crl_number.as_deref().unwrap_or("-")
            );
            say!(out, "  this update: {}", rfc3339(c.this_update));
            say!(
                out,
                "  next update: {}",
                c.next_update.map(rfc3339).unwrap_or_else(|| "-".into())
            );
            say!(out, "  revoked:     {}", c.revoked.len());
            for r in &c.revoked {
                say!(
                    out,
                    "    {} at {} ({})",
                    r.serial,
                    rfc3339(r.revoked_at),
                    r.reason.as_deref().unwrap_or("unspecified")
                );
            }
        }
        Item::PrivateKey(k) => {
            say!(out, "Private key (contents not shown)");
            say!(out, "  format:     {}", k.format);
            say!(out, "  encrypted:  {}", k.encrypted);
            if let Some(e) = &k.encryption {
                say!(out, "  encryption: {e}");
            }
            if let Some(a) = &k.algorithm {
                say!(out, "  algorithm:  {a}");
            }
            if let Some(s) = &k.public_key_sha256 {
                say!(out, "  public key sha256: {s}");
            }
        }
        Item::Pfx(p) => print_pfx(out, p)?,
    }
    Ok(())
}

fn print_pfx(out: &Out, p: &PfxInfo) -> std::io::Result<()> {
    say!(
        out,
        "PKCS#12 bundle{}",
        if p.opened {
            ""
        } else {
            " (contents not read: no password)"
        }
    );
    match &p.mac {
        Some(m) => say!(out, "  MAC:           {}", m.description),
        None => say!(out, "  MAC:           none (integrity not protected)"),
    }
    for (i, b) in p.encryption.iter().enumerate() {
        let bag = match b.bag {
            "encrypted_data" => "encrypted data",
            "shrouded_key" => "shrouded key",
            other => other,
        };
        let label = if i == 0 { "encryption:" } else { "" };
        say!(out, "  {label:<15}{bag}: {}", b.encryption);
    }
    if !p.opened {
        return Ok(());
    }
    say!(
        out,
        "  private key:   {}",
        if p.has_key == Some(true) {
            "present (not shown)"
        } else {
            "none"
        }
    );
    if let Some(m) = p.key_matches_cert {
        say!(out, "  key matches:   {m}");
    }
    if let Some(n) = &p.friendly_name {
        say!(out, "  friendly name: {}", sanitize(n));
    }
    for c in p.certificate.iter().chain(&p.chain) {
        say!(out, "");
        print_cert(out, c, "  ")?;
    }
    Ok(())
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
    if let Some(u) = &c.revocation.crl {
        say!(out, "{ind}  CRL DP:      {}", sanitize(u));
    }
    if let Some(u) = &c.revocation.ocsp {
        say!(out, "{ind}  OCSP:        {}", sanitize(u));
    }
    if let Some(u) = &c.revocation.issuer {
        say!(out, "{ind}  CA issuers:  {}", sanitize(u));
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
