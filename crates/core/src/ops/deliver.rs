//! `deliver`: the platform's own credential (key included) in the shape its deployment
//! consumes, written outside the workspace: a PEM folder, a PFX with its password file,
//! or a Kubernetes `kubernetes.io/tls` Secret. Apart from `export`, which hands the
//! customer's gateway public files only and never a key.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CertNeed, OpError, Result};
use crate::ops::issue::FULLCHAIN;
use crate::pki::{Kind, fingerprint};
use crate::workspace::Workspace;
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::inventory::{CHAIN, LeafRecord};

/// The shapes `deliver` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A folder: key.pem (0600), cert.pem, chain.pem, fullchain.pem.
    PemDir,
    /// The PFX (0600) and, beside it, `<out>.pass` (0600) with its password.
    Pfx,
    /// A `kubernetes.io/tls` Secret manifest (0600): tls.crt, tls.key, ca.crt.
    K8sTlsSecret,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["pem-dir", "pfx", "k8s-tls-secret"];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::PemDir => "pem-dir",
            Format::Pfx => "pfx",
            Format::K8sTlsSecret => "k8s-tls-secret",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pem-dir" => Ok(Format::PemDir),
            "pfx" => Ok(Format::Pfx),
            "k8s-tls-secret" => Ok(Format::K8sTlsSecret),
            _ => Err(format!(
                "--format '{s}' is not one of {}",
                Format::NAMES.join(", ")
            )),
        }
    }
}

pub struct Request<'a> {
    pub tenant: &'a str,
    pub env: &'a str,
    pub kind: Kind,
    pub format: Format,
    pub out: &'a Path,
    /// Replace `out` when it is an earlier delivery of the same format.
    pub force: bool,
    /// The Secret's metadata.name (default `<tenant>-<env>-<kind>-tls`).
    pub secret_name: Option<&'a str>,
    /// The Secret's metadata.namespace (none: the one `kubectl apply -n` gives).
    pub namespace: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct DeliveredFile {
    pub path: PathBuf,
    /// Octal, as `ls -l` would show it: "0600" for a file holding the key.
    pub mode: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct DeliverReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub serial: String,
    pub sha256: String,
    pub format: &'static str,
    pub out: PathBuf,
    pub files: Vec<DeliveredFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    pub next: Vec<String>,
}

/// Files of an earlier `pem-dir` delivery: the only ones `--force` replaces.
const PEM_DIR_FILES: [&str; 4] = ["key.pem", "cert.pem", "chain.pem", FULLCHAIN];

/// Bytes wiped when dropped (a key, a PFX, its password).
type Secret = zeroize::Zeroizing<Vec<u8>>;

fn read(rec: &LeafRecord, name: &str) -> Result<Secret> {
    Ok(zeroize::Zeroizing::new(fsutil::read_nofollow(
        &rec.dir.join(name),
    )?))
}

fn refuse(msg: String) -> OpError {
    OpError::Msg(msg)
}

/// Writes the current certificate of tenant/env/kind with its key in `r.format` to
/// `r.out`, after one audit line (`"op":"deliver"`). The caller holds the lock.
pub fn deliver(ws: &Workspace, r: &Request<'_>) -> Result<DeliverReport> {
    let rec = ws
        .current_leaf(r.tenant, r.env, r.kind)?
        .ok_or_else(|| OpError::NoCurrentCert {
            tenant: r.tenant.to_string(),
            env: r.env.to_string(),
            kind: Some(r.kind),
            need: CertNeed::Handoff,
        })?;
    if !rec.key_path().is_file() {
        return Err(refuse(format!(
            "{}/{} {} {}: its private key is not in the workspace (signed from a partner's CSR, whose key the partner holds): nothing to deliver; `mtlsctl export` hands over its public files",
            r.tenant, r.env, r.kind, rec.meta.serial
        )));
    }
    let out = crate::workspace::absolute(r.out);
    // compared as the file system resolves them: `..` or a linked folder cannot hide
    // that --out lies in the workspace
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let out_parent = out.parent().map(real).unwrap_or_else(|| out.clone());
    if out.starts_with(ws.root()) || out_parent.starts_with(real(ws.root())) {
        return Err(refuse(format!(
            "--out {} lies inside the workspace: deliver to the platform's own place (the workspace keeps the key already, at {})",
            out.display(),
            ws.current_path(r.env, r.tenant, r.kind).display()
        )));
    }
    let cert = read(&rec, crate::workspace::inventory::CERT)?;
    let chain = read(&rec, CHAIN)?;
    let full = read(&rec, FULLCHAIN)?;
    let key = read(&rec, crate::workspace::inventory::KEY)?;
    let mut secret_name = None;
    // what is written: (path, bytes, mode)
    let files: Vec<(PathBuf, Secret, u32)> = match r.format {
        Format::PemDir => {
            may_replace(&out, r.force, |p| {
                p.is_dir()
                    && std::fs::read_dir(p).is_ok_and(|rd| {
                        rd.flatten().all(|e| {
                            PEM_DIR_FILES.contains(&e.file_name().to_string_lossy().as_ref())
                        })
                    })
            })?;
            vec![
                (out.join("key.pem"), key, SECRET),
                (out.join("cert.pem"), cert, PUBLIC),
                (out.join("chain.pem"), chain, PUBLIC),
                (out.join(FULLCHAIN), full, PUBLIC),
            ]
        }
        Format::Pfx => {
            let (der, pass) = pfx_of(&rec, &key, &cert, &chain)?;
            let pass_path = PathBuf::from(format!("{}.pass", out.display()));
            let is_pfx = |p: &Path| fsutil::read(p).is_ok_and(|b| b.first() == Some(&0x30));
            may_replace(&out, r.force, is_pfx)?;
            may_replace(&pass_path, r.force, |p| p.is_file())?;
            vec![(out.clone(), der, SECRET), (pass_path, pass, SECRET)]
        }
        Format::K8sTlsSecret => {
            let name = match r.secret_name {
                Some(n) => n.to_string(),
                None => format!("{}-{}-{}-tls", r.tenant, r.env, r.kind).replace('_', "-"),
            };
            check_dns_label("--name", &name, 253)?;
            if let Some(ns) = r.namespace {
                check_dns_label("--namespace", ns, 63)?;
            }
            let is_secret = |p: &Path| {
                fsutil::read(p)
                    .is_ok_and(|b| String::from_utf8_lossy(&b).contains("type: kubernetes.io/tls"))
            };
            may_replace(&out, r.force, is_secret)?;
            let yaml = k8s_secret(&name, r.namespace, &full, &key, &chain, &rec);
            secret_name = Some(name);
            vec![(
                out.clone(),
                zeroize::Zeroizing::new(yaml.into_bytes()),
                SECRET,
            )]
        }
    };
    let names: Vec<String> = files
        .iter()
        .map(|(p, _, _)| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    // the line comes first: a key never leaves the workspace unrecorded (a write that then
    // fails leaves a line for a delivery that did not happen, and the run says so)
    let mut ev = Event::new("deliver");
    ev.tenant = Some(r.tenant);
    ev.env = Some(r.env);
    ev.kind = Some(r.kind.as_str());
    ev.serial = Some(&rec.meta.serial);
    ev.sha256 = Some(&rec.meta.sha256);
    ev.detail = Some(format!(
        "format {}, with its private key: {}",
        r.format.as_str(),
        names.join(", ")
    ));
    ws.audit(&ev)?;
    match r.format {
        Format::PemDir => {
            let nf: Vec<NewFile<'_>> = files
                .iter()
                .zip(&names)
                .map(|((_, b, m), n)| NewFile {
                    name: n,
                    bytes: b,
                    mode: *m,
                })
                .collect();
            if out.exists() {
                fsutil::replace_public_dir(&out, &nf)?;
            } else {
                fsutil::write_dir_atomic(&out, &nf)?;
            }
            // the folder holds a key: only its owner lists it
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| crate::workspace::io_err(&out, "set the mode of", e))?;
        }
        _ => {
            for (p, b, m) in &files {
                fsutil::write_atomic(p, b, *m)?;
            }
        }
    }
    let next = match r.format {
        Format::PemDir => vec![format!(
            "point the platform at {} (key.pem, fullchain.pem) and reload it; deliver again after each renewal",
            out.display()
        )],
        Format::Pfx => vec![format!(
            "import {} with the password in {} on the platform, then delete both copies there",
            out.display(),
            names[1]
        )],
        Format::K8sTlsSecret => vec![format!(
            "kubectl apply -f {}{}, then remove the file: it holds the private key",
            out.display(),
            r.namespace
                .map(|_| String::new())
                .unwrap_or_else(|| " -n NAMESPACE".into())
        )],
    };
    Ok(DeliverReport {
        tenant: r.tenant.to_string(),
        env: r.env.to_string(),
        kind: r.kind,
        serial: rec.meta.serial.clone(),
        sha256: rec.meta.sha256.clone(),
        format: r.format.as_str(),
        out,
        files: files
            .iter()
            .map(|(p, b, m)| DeliveredFile {
                path: p.clone(),
                mode: format!("{m:04o}"),
                sha256: fingerprint::hex(&fingerprint::sha256(b)),
            })
            .collect(),
        secret_name,
        next,
    })
}

/// An existing `p` is replaced only with `force`, and only when `earlier` says it is an
/// earlier delivery of the same shape.
fn may_replace(p: &Path, force: bool, earlier: impl Fn(&Path) -> bool) -> Result<()> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    if !force {
        return Err(OpError::OutputExists {
            path: p.to_path_buf(),
        });
    }
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) || !earlier(p) {
        return Err(refuse(format!(
            "{} exists and is not an earlier delivery of this format: nothing was overwritten; choose another --out or remove it",
            p.display()
        )));
    }
    Ok(())
}

/// The leaf's own PFX and password when it has them, else one made now (modern, a new
/// password).
fn pfx_of(rec: &LeafRecord, key: &[u8], cert: &[u8], chain: &[u8]) -> Result<(Secret, Secret)> {
    if rec.pfx_path().is_file() && rec.pfx_pass_path().is_file() {
        return Ok((
            read(rec, crate::workspace::inventory::PFX)?,
            read(rec, crate::workspace::inventory::PFX_PASS)?,
        ));
    }
    use crate::pki::keys::{PrivateKey, generate_password};
    use secrecy::ExposeSecret;
    let k = PrivateKey::from_pem_or_der(key, None)?;
    let cert_der = crate::pki::inspect::certificates(cert)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            refuse(format!(
                "{}: no certificate in it",
                rec.cert_path().display()
            ))
        })?;
    let chain_der = crate::pki::inspect::certificates(chain)?;
    let pw = generate_password()?;
    let name = format!("{}-{}-{}", rec.meta.tenant, rec.meta.env, rec.meta.kind);
    let der = crate::pki::pkcs12::build_der(
        &k,
        &cert_der,
        &chain_der,
        &name,
        &pw,
        crate::pki::pkcs12::PfxCompat::Modern,
    )?;
    let mut line = zeroize::Zeroizing::new(pw.expose_secret().as_bytes().to_vec());
    line.push(b'\n');
    Ok((zeroize::Zeroizing::new(der), line))
}

/// A Kubernetes name: lowercase letters, digits and '-' (and '.' for a Secret's name),
/// starting and ending with a letter or digit.
fn check_dns_label(flag: &str, s: &str, max: usize) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && max > 63)
        })
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(refuse(format!(
            "{flag} '{}' is not a Kubernetes name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most {max} characters",
            crate::pki::text::sanitize(s)
        )))
    }
}

/// The Secret manifest: tls.crt the certificate and its chain, tls.key the key, ca.crt
/// the CA chain that issued it (base64, as `data` wants).
fn k8s_secret(
    name: &str,
    namespace: Option<&str>,
    full: &[u8],
    key: &[u8],
    chain: &[u8],
    rec: &LeafRecord,
) -> String {
    let b = fingerprint::base64;
    let ns = namespace
        .map(|n| format!("  namespace: {n}\n"))
        .unwrap_or_default();
    format!(
        "# written by mtlsctl deliver: {tenant}/{env} {kind} {serial}; it holds a private key\n\
apiVersion: v1\n\
kind: Secret\n\
type: kubernetes.io/tls\n\
metadata:\n  name: {name}\n{ns}  labels:\n    app.kubernetes.io/managed-by: mtlsctl\n  annotations:\n    mtlsctl.dev/tenant: \"{tenant}\"\n    mtlsctl.dev/env: \"{env}\"\n    mtlsctl.dev/serial: \"{serial}\"\n\
data:\n  tls.crt: {crt}\n  tls.key: {tkey}\n  ca.crt: {ca}\n",
        tenant = rec.meta.tenant,
        env = rec.meta.env,
        kind = rec.meta.kind,
        serial = rec.meta.serial,
        crt = b(full),
        tkey = b(key),
        ca = b(chain),
    )
}
