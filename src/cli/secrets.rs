//! Secrets from files, environment variables or a prompt, in that order; never argv.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use secrecy::SecretString;

/// Whether a person is at a terminal to answer prompts.
pub fn interactive(no_input: bool) -> bool {
    !no_input
        && std::env::var_os("CI").is_none()
        && std::io::stdin().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Reads a secret file: the first line, without its line ending.
pub fn read_secret_file(path: &Path) -> Result<SecretString> {
    let raw = zeroize::Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("cannot read secret file {}", path.display()))?,
    );
    let text = std::str::from_utf8(&raw)
        .with_context(|| format!("secret file {} is not UTF-8 text", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!(
            "secret file {} is empty: put the secret on its first line",
            path.display()
        );
    }
    Ok(SecretString::from(line.to_string()))
}

/// Where a secret may come from.
pub struct SecretSpec<'a> {
    pub what: &'a str,
    pub file: Option<&'a Path>,
    pub file_flag: &'a str,
    /// Environment variables, the first one set wins.
    pub env_vars: &'a [&'a str],
    /// Ask twice when setting a new secret.
    pub confirm: bool,
}

/// Sources a secret: file flag, then the env vars in order, then a prompt when a person
/// is there, else an error naming the flag and the variables.
pub fn get(spec: &SecretSpec<'_>, no_input: bool) -> Result<SecretString> {
    if let Some(s) = find(spec, no_input)? {
        return Ok(s);
    }
    // the invocation lacks an input it needs: a usage error (exit 2), like a missing flag
    Err(super::UsageError(format!(
        "the {} is needed and no one is at a terminal to type it: give {} FILE or set {}",
        spec.what,
        spec.file_flag,
        spec.env_vars.join(" or ")
    ))
    .into())
}

/// [`get`], but None instead of the error when no source is available.
pub fn find(spec: &SecretSpec<'_>, no_input: bool) -> Result<Option<SecretString>> {
    if let Some(f) = spec.file {
        return read_secret_file(f).map(Some);
    }
    for var in spec.env_vars {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return Ok(Some(SecretString::from(v)));
        }
    }
    if interactive(no_input) {
        let mut p = dialoguer::Password::new().with_prompt(spec.what);
        if spec.confirm {
            p = p.with_confirmation("Repeat it", "The two entries differ; try again");
        }
        let s = p
            .interact()
            .with_context(|| format!("could not read the {}", spec.what))?;
        if s.is_empty() {
            bail!("the {} is empty", spec.what);
        }
        return Ok(Some(SecretString::from(s)));
    }
    Ok(None)
}

fn pfx_spec(file: Option<&Path>, confirm: bool) -> SecretSpec<'_> {
    SecretSpec {
        what: "PFX password",
        file,
        file_flag: "--password-file",
        env_vars: &["MTLSCTL_PFX_PASSWORD"],
        confirm,
    }
}

/// A PFX password: `--password-file`, then MTLSCTL_PFX_PASSWORD, then a prompt (asked
/// twice when `confirm`, i.e. when setting one).
pub fn pfx_password(file: Option<&Path>, confirm: bool, no_input: bool) -> Result<SecretString> {
    get(&pfx_spec(file, confirm), no_input)
}

/// A PFX password if one is given or a person can type it; None otherwise.
pub fn pfx_password_if_any(file: Option<&Path>, no_input: bool) -> Result<Option<SecretString>> {
    find(&pfx_spec(file, false), no_input)
}

/// The passphrase of the private key file `key`, when it is encrypted or a passphrase
/// file was given: `--key-passphrase-file`, then MTLSCTL_KEY_PASSPHRASE, then a prompt.
pub fn key_passphrase(
    key: &Path,
    file: Option<&Path>,
    no_input: bool,
) -> Result<Option<SecretString>> {
    let encrypted = crate::ops::pfx::key_is_encrypted(key);
    if !encrypted && file.is_none() {
        return Ok(None);
    }
    get(
        &SecretSpec {
            what: "key passphrase",
            file,
            file_flag: "--key-passphrase-file",
            env_vars: &["MTLSCTL_KEY_PASSPHRASE"],
            confirm: false,
        },
        no_input,
    )
    .map(Some)
}
