//! Gateway hand-off: the public trust material a gateway operator installs, in the form
//! each gateway takes it, checked against that gateway's limits. Never a private key.
//!
//! The output is a pure function of the workspace state (CA chain, the env CRL, the
//! tenant's current client certificate): the same state gives byte-identical files, and
//! the zip form uses fixed timestamps, fixed modes and sorted entries.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use openssl::x509::{X509, X509Crl};
use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::pki::inspect::{self, CertInfo, SanInfo};
use crate::pki::pem;
use crate::pki::text::rfc3339;
use crate::pki::{Kind, PkiError, fingerprint};
use crate::profile::Profiles;
use crate::workspace::{Workspace, WsError, fsutil};

/// Azure Application Gateway refuses a trusted client CA chain file above this size.
pub const AZURE_MAX_BYTES: usize = 25 * 1024;
/// AWS API Gateway accepts truststore chains of at most this many certificates.
pub const AWS_MAX_CHAIN: usize = 4;

/// The gateways (and plain PEM) an export can be shaped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Pem,
    Nginx,
    IngressNginx,
    GatewayApi,
    Envoy,
    F5,
    Iis,
    AzureAppgw,
    AwsApigw,
    Tyk,
    HuaweiApig,
    Rfc8705,
}

impl Format {
    pub const ALL: [Format; 12] = [
        Format::Pem,
        Format::Nginx,
        Format::IngressNginx,
        Format::GatewayApi,
        Format::Envoy,
        Format::F5,
        Format::Iis,
        Format::AzureAppgw,
        Format::AwsApigw,
        Format::Tyk,
        Format::HuaweiApig,
        Format::Rfc8705,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pem => "pem",
            Format::Nginx => "nginx",
            Format::IngressNginx => "ingress-nginx",
            Format::GatewayApi => "gateway-api",
            Format::Envoy => "envoy",
            Format::F5 => "f5",
            Format::Iis => "iis",
            Format::AzureAppgw => "azure-appgw",
            Format::AwsApigw => "aws-apigw",
            Format::Tyk => "tyk",
            Format::HuaweiApig => "huawei-apig",
            Format::Rfc8705 => "rfc8705",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Format::Pem => "Plain PEM",
            Format::Nginx => "nginx",
            Format::IngressNginx => "Kubernetes ingress-nginx",
            Format::GatewayApi => "Kubernetes Gateway API",
            Format::Envoy => "Envoy",
            Format::F5 => "F5 BIG-IP",
            Format::Iis => "IIS / Windows",
            Format::AzureAppgw => "Azure Application Gateway",
            Format::AwsApigw => "AWS API Gateway",
            Format::Tyk => "Tyk",
            Format::HuaweiApig => "Huawei Cloud APIG",
            Format::Rfc8705 => "OAuth 2.0 mutual TLS (RFC 8705)",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown export format '{s}': use one of {}, or all",
                    names.join(", ")
                )
            })
    }
}

/// What to export.
pub struct Request<'a> {
    pub tenant: &'a str,
    pub env: &'a str,
    pub formats: &'a [Format],
    /// Tyk organisation ID, prefixed to Tyk certificate IDs (empty: the bare hash).
    pub tyk_org_id: &'a str,
    pub now: OffsetDateTime,
}

/// Fingerprints of one certificate in the forms gateways ask for.
#[derive(Clone, Debug, Serialize)]
pub struct Prints {
    pub sha256_hex: String,
    pub sha256_colon: String,
    pub sha1_hex: String,
    pub sha1_colon: String,
    /// RFC 8705 `x5t#S256`: base64url (no padding) of the SHA-256 of the DER.
    pub x5t_s256: String,
    /// Envoy `verify_certificate_spki`: base64 of the SHA-256 of the SubjectPublicKeyInfo.
    pub spki_sha256_base64: String,
}

/// One certificate as the manifest describes it.
#[derive(Clone, Debug, Serialize)]
pub struct CertEntry {
    /// RFC 4514 string (the form `tls_client_auth_subject_dn` takes).
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub key: String,
    pub signature_algorithm: String,
    pub self_signed: bool,
    #[serde(skip_serializing_if = "SanInfo::is_empty")]
    pub san: SanInfo,
    pub fingerprints: Prints,
}

/// The tenant's certificate, with the identifiers gateways key on.
#[derive(Clone, Debug, Serialize)]
pub struct ClientEntry {
    #[serde(flatten)]
    pub cert: CertEntry,
    /// Tyk certificate ID: the org ID followed by the lowercase hex SHA-256 of the DER.
    pub tyk_certificate_id: String,
}

/// One CRL as the manifest describes it.
#[derive(Clone, Debug, Serialize)]
pub struct CrlEntry {
    pub issuer: String,
    pub crl_number: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    pub revoked: usize,
}

/// One file of the hand-off.
#[derive(Clone, Debug, Serialize)]
pub struct FileEntry {
    /// Relative to the hand-off folder, with `/` separators.
    pub path: String,
    pub role: String,
    pub sha256: String,
    pub bytes: usize,
}

/// A gateway limit checked before anything was written.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub format: Format,
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

/// manifest.json.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub tenant: String,
    pub env: String,
    pub formats: Vec<Format>,
    /// `ssl_verify_depth` / `auth-tls-verify-depth` / `max_verify_depth` to configure.
    pub verify_depth: usize,
    pub client: ClientEntry,
    pub ca_chain: Vec<CertEntry>,
    pub crls: Vec<CrlEntry>,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
    /// Every file except manifest.json itself.
    pub files: Vec<FileEntry>,
}

/// The hand-off, built in memory: file path -> (role, bytes), sorted by path.
pub struct Handoff {
    pub files: BTreeMap<String, (String, Vec<u8>)>,
    pub manifest: Manifest,
}

/// What `export` reports.
#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub tenant: String,
    pub env: String,
    pub formats: Vec<Format>,
    pub out: PathBuf,
    pub zip: bool,
    pub client_serial: String,
    pub client_subject: String,
    pub verify_depth: usize,
    pub files: Vec<FileEntry>,
    pub checks: Vec<Check>,
    pub warnings: Vec<String>,
}

fn pki(e: openssl::error::ErrorStack) -> OpError {
    PkiError::from(e).into()
}

fn prints(x: &X509, der: &[u8]) -> Result<Prints> {
    let s256 = fingerprint::sha256(der);
    let s1 = fingerprint::sha1(der)?;
    let spki = x
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(pki)?;
    Ok(Prints {
        sha256_hex: fingerprint::hex(&s256),
        sha256_colon: fingerprint::colon_hex(&s256),
        sha1_hex: fingerprint::hex(&s1),
        sha1_colon: fingerprint::colon_hex(&s1),
        x5t_s256: fingerprint::base64url(&s256),
        spki_sha256_base64: fingerprint::base64(&fingerprint::sha256(&spki)),
    })
}

fn entry(x: &X509) -> Result<(CertEntry, CertInfo, Vec<u8>)> {
    let der = x.to_der().map_err(pki)?;
    let info = inspect::cert_info(&der)?;
    Ok((
        CertEntry {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial: info.serial.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            key: info.key.algorithm.clone(),
            signature_algorithm: info.signature_algorithm.clone(),
            self_signed: info.self_signed,
            san: info.san.clone(),
            fingerprints: prints(x, &der)?,
        },
        info,
        der,
    ))
}

/// A file-name-safe short form of a CA's common name.
fn slug(s: &str) -> String {
    let cn = s
        .split(',')
        .find_map(|p| p.strip_prefix("CN="))
        .unwrap_or(s);
    let mut out: String = cn
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches('-').chars().take(48).collect()
}

/// YAML double-quoted scalar.
fn yq(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Indents every line of `text` by `n` spaces (a YAML block scalar body).
fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// Builds the hand-off in memory after checking every selected gateway's limits.
pub fn build(ws: &Workspace, profiles: &Profiles, req: &Request<'_>) -> Result<Handoff> {
    let (tenant, env) = (req.tenant, req.env);
    profiles.check_env(env)?;
    profiles.tenant(tenant)?;
    let mut formats: Vec<Format> = req.formats.to_vec();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        formats.push(Format::Pem);
    }

    // --- the material
    let chain = super::ca::chain(ws, profiles, env)?;
    if chain.is_empty() {
        return Err(OpError::Msg(format!(
            "environment '{env}' has no CA certificate: run `mtlsctl ca init --env {env}`"
        )));
    }
    let rec = ws.current_leaf(tenant, env, Kind::Client)?.ok_or_else(|| {
        OpError::Msg(format!(
            "{tenant}/{env} has no current client certificate to hand off: run `mtlsctl issue --tenant {tenant} --env {env}`"
        ))
    })?;
    let client_pem_disk = fsutil::read_nofollow(&rec.cert_path())?;
    let client_der = inspect::certificates(&client_pem_disk)
        .map_err(|e| OpError::Msg(format!("{}: {e}", rec.cert_path().display())))?
        .into_iter()
        .next()
        .expect("at least one");
    let client_x = X509::from_der(&client_der).map_err(pki)?;
    let (client_entry, client_info, _) = entry(&client_x)?;

    let crl_path = ws.crl(env);
    if !crl_path.is_file() {
        return Err(OpError::Msg(format!(
            "the CRL {} is missing: sign one with `mtlsctl crl --env {env}`",
            crl_path.display()
        )));
    }
    let crl_bytes = ws.read(&crl_path)?;
    let crl_ders: Vec<Vec<u8>> = inspect::blocks(&crl_bytes)
        .map_err(|e| OpError::Msg(format!("{}: {e}", crl_path.display())))?
        .into_iter()
        .filter(|b| b.label == "X509 CRL" || b.label == "DER")
        .map(|b| b.der)
        .collect();

    let mut warnings = Vec::new();
    let mut ca_entries = Vec::new();
    let mut ca_infos = Vec::new();
    let mut ca_ders = Vec::new();
    let mut crl_out = String::new();
    let mut crl_entries = Vec::new();
    for ca in &chain {
        let (e, info, der) = entry(ca)?;
        // one current CRL signed by this CA
        let mut found = None;
        for d in &crl_ders {
            let Ok(crl) = X509Crl::from_der(d) else {
                continue;
            };
            let same_issuer = crl
                .issuer_name()
                .try_cmp(ca.subject_name())
                .map(|o| o.is_eq())
                .unwrap_or(false);
            let key = ca.public_key().map_err(pki)?;
            if same_issuer && crl.verify(&key).unwrap_or(false) {
                found = Some(d.clone());
                break;
            }
        }
        let Some(crl_der) = found else {
            return Err(OpError::Msg(format!(
                "{} holds no CRL signed by the CA '{}': gateways that check CRLs would refuse every client; sign one with `mtlsctl crl --env {env}`",
                crl_path.display(),
                e.subject
            )));
        };
        let ci = inspect::crl_info(&crl_der)?;
        match ci.next_update {
            Some(nu) if nu <= req.now => {
                return Err(OpError::Msg(format!(
                    "the CRL of '{}' passed its nextUpdate on {}: gateways would refuse every client; re-sign it with `mtlsctl crl --env {env}` and export again",
                    e.subject,
                    rfc3339(nu)
                )));
            }
            Some(nu) if nu - req.now < time::Duration::days(2) => warnings.push(format!(
                "the CRL of '{}' expires on {}: re-sign it soon with `mtlsctl crl --env {env}` and send it again",
                e.subject,
                rfc3339(nu)
            )),
            _ => {}
        }
        if ci.revoked.iter().any(|r| r.serial == client_entry.serial)
            && e.subject == client_entry.issuer
        {
            warnings.push(format!(
                "the tenant's current certificate {} is listed in the CRL: issue a new one before handing off",
                client_entry.serial
            ));
        }
        crl_out.push_str(&pem("X509 CRL", &crl_der));
        crl_entries.push(CrlEntry {
            issuer: ci.issuer,
            crl_number: ci.crl_number,
            this_update: ci.this_update,
            next_update: ci.next_update,
            revoked: ci.revoked.len(),
        });
        if info.not_after <= req.now {
            warnings.push(format!("the CA '{}' has expired", e.subject));
        }
        ca_entries.push(e);
        ca_infos.push(info);
        ca_ders.push(der);
    }
    if client_info.not_after <= req.now {
        warnings.push(format!(
            "the tenant's certificate {} expired on {}: renew it",
            client_entry.serial,
            rfc3339(client_info.not_after)
        ));
    }
    if client_entry.issuer != ca_entries[0].subject {
        warnings.push(format!(
            "the tenant's certificate is issued by '{}', not by the environment CA '{}'",
            client_entry.issuer, ca_entries[0].subject
        ));
    }

    let chain_pem: String = ca_ders.iter().map(|d| pem("CERTIFICATE", d)).collect();
    let client_pem = pem("CERTIFICATE", &client_der);
    // leaf + every CA: OpenSSL counts the CAs above the leaf
    let verify_depth = (chain.len() + 1).max(2);
    let tyk_id = format!("{}{}", req.tyk_org_id, client_entry.fingerprints.sha256_hex);
    let client = ClientEntry {
        cert: client_entry,
        tyk_certificate_id: tyk_id,
    };
    let root_included = ca_entries.last().is_some_and(|c| c.self_signed);

    // --- gateway limits
    let mut checks = Vec::new();
    let mut failures = Vec::new();
    let mut check = |f: Format, what: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{}: {what}: {detail}", f.as_str()));
        }
        checks.push(Check {
            format: f,
            check: what.to_string(),
            ok,
            detail,
        });
    };
    for &f in &formats {
        match f {
            Format::AzureAppgw => {
                check(
                    f,
                    "file size under 25 KB",
                    chain_pem.len() < AZURE_MAX_BYTES,
                    format!("{} bytes (limit {AZURE_MAX_BYTES})", chain_pem.len()),
                );
                check(
                    f,
                    "chain includes the root CA",
                    root_included,
                    if root_included {
                        "the last certificate is self-signed".into()
                    } else {
                        "the chain ends in a CA that is not self-signed: add its root".into()
                    },
                );
            }
            Format::AwsApigw => {
                let n = chain.len() + 1;
                check(
                    f,
                    "chain length at most 4",
                    n <= AWS_MAX_CHAIN,
                    format!("{n} certificates from the client certificate to the root"),
                );
                let expired: Vec<&str> = ca_entries
                    .iter()
                    .filter(|c| c.not_after <= req.now)
                    .map(|c| c.subject.as_str())
                    .collect();
                check(
                    f,
                    "no expired certificate in the truststore",
                    expired.is_empty(),
                    if expired.is_empty() {
                        "every CA certificate is within its validity".into()
                    } else {
                        format!("expired: {}", expired.join("; "))
                    },
                );
                let weak: Vec<String> = ca_infos
                    .iter()
                    .chain(std::iter::once(&client_info))
                    .filter(|i| {
                        let k = &i.key.algorithm;
                        !(k.starts_with("ecdsa-") || (k.starts_with("rsa-") && i.key.bits >= 2048))
                            || i.signature_algorithm.to_ascii_lowercase().contains("sha1")
                            || i.signature_algorithm.to_ascii_lowercase().contains("md5")
                    })
                    .map(|i| {
                        format!(
                            "{} ({}, {})",
                            i.subject, i.key.algorithm, i.signature_algorithm
                        )
                    })
                    .collect();
                if !weak.is_empty() {
                    warnings.push(format!(
                        "aws-apigw: API Gateway documents SHA-256 or stronger with RSA-2048+ or ECDSA-256+ keys; these may raise truststoreWarnings: {}",
                        weak.join("; ")
                    ));
                }
            }
            Format::Tyk => {
                check(
                    f,
                    "client certificate not expired (Tyk refuses expired uploads)",
                    client_info.not_after > req.now,
                    format!("notAfter {}", rfc3339(client_info.not_after)),
                );
            }
            _ => {}
        }
    }
    if !failures.is_empty() {
        return Err(OpError::Msg(format!(
            "the hand-off would not pass the gateway's limits, nothing was written: {}",
            failures.join("; ")
        )));
    }

    // --- files
    let mut files: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    let mut put = |path: &str, role: &str, bytes: Vec<u8>| {
        files.insert(path.to_string(), (role.to_string(), bytes));
    };
    put(
        "ca-chain.pem",
        "trust-bundle: every CA certificate the gateway must trust for this environment",
        chain_pem.clone().into_bytes(),
    );
    put(
        "client.pem",
        "client-certificate: the tenant's current public certificate (for pinning or mapping)",
        client_pem.clone().into_bytes(),
    );
    put(
        "crl.pem",
        "crl: one current CRL for every CA in ca-chain.pem",
        crl_out.clone().into_bytes(),
    );
    let g = Gen {
        tenant,
        env,
        chain_pem: &chain_pem,
        crl_pem: &crl_out,
        client: &client,
        cas: &ca_entries,
        ca_ders: &ca_ders,
        client_der: &client_der,
        crls: &crl_entries,
        depth: verify_depth,
        tyk_org_id: req.tyk_org_id,
    };
    for &f in &formats {
        for (p, role, bytes) in g.files(f) {
            put(&p, &role, bytes);
        }
    }
    put(
        "README.txt",
        "readme: what to install where, step by step",
        g.readme(&formats, &warnings).into_bytes(),
    );
    // defence in depth: nothing secret may leave
    for (p, (_, b)) in &files {
        if b.windows(11).any(|w| w == b"PRIVATE KEY") {
            return Err(OpError::Msg(format!(
                "internal check failed: the hand-off file {p} would hold private key material; nothing was written"
            )));
        }
    }
    let entries = files
        .iter()
        .map(|(p, (role, b))| FileEntry {
            path: p.clone(),
            role: role.clone(),
            sha256: fingerprint::hex(&fingerprint::sha256(b)),
            bytes: b.len(),
        })
        .collect();
    let manifest = Manifest {
        manifest_version: 1,
        tenant: tenant.to_string(),
        env: env.to_string(),
        formats,
        verify_depth,
        client,
        ca_chain: ca_entries,
        crls: crl_entries,
        checks,
        warnings,
        files: entries,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    json.push(b'\n');
    files.insert(
        "manifest.json".into(),
        (
            "manifest: roles, SHA-256 of each file, certificate identifiers".into(),
            json,
        ),
    );
    Ok(Handoff { files, manifest })
}

/// Builds and writes the hand-off to `out` (a folder, or a zip file with `zip`).
/// An existing `out` is replaced only with `force`; the new one appears whole or not at
/// all.
pub fn export(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    out: &Path,
    zip: bool,
    force: bool,
) -> Result<ExportReport> {
    let h = build(ws, profiles, req)?;
    let out = crate::workspace::absolute(out);
    if out.exists() && !force {
        return Err(OpError::Msg(format!(
            "{} exists; nothing was overwritten (use --force to replace it)",
            out.display()
        )));
    }
    if out.exists() {
        // --force replaces an earlier hand-off, never an unrelated folder or file
        let earlier = if out.is_dir() {
            out.join("manifest.json").is_file()
                || fs::read_dir(&out).is_ok_and(|mut d| d.next().is_none())
        } else {
            zip && fs::read(&out).is_ok_and(|b| b.starts_with(b"PK\x03\x04"))
        };
        if !earlier {
            return Err(OpError::Msg(format!(
                "{} exists and is not an earlier hand-off ({}); nothing was overwritten: choose another --out",
                out.display(),
                if zip {
                    "not a zip file"
                } else {
                    "no manifest.json in it"
                }
            )));
        }
    }
    if zip {
        if out.is_dir() {
            return Err(OpError::Msg(format!(
                "{} is a folder: with --zip, --out names the zip file to write",
                out.display()
            )));
        }
        let bytes = zip_bytes(&h.files)?;
        fsutil::write_atomic(&out, &bytes, fsutil::PUBLIC)?;
    } else {
        write_folder(&out, &h.files)?;
    }
    let mut files: Vec<FileEntry> = h.manifest.files.clone();
    let m = &h.files["manifest.json"];
    files.push(FileEntry {
        path: "manifest.json".into(),
        role: m.0.clone(),
        sha256: fingerprint::hex(&fingerprint::sha256(&m.1)),
        bytes: m.1.len(),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ExportReport {
        tenant: h.manifest.tenant.clone(),
        env: h.manifest.env.clone(),
        formats: h.manifest.formats.clone(),
        out,
        zip,
        client_serial: h.manifest.client.cert.serial.clone(),
        client_subject: h.manifest.client.cert.subject.clone(),
        verify_depth: h.manifest.verify_depth,
        files,
        checks: h.manifest.checks.clone(),
        warnings: h.manifest.warnings.clone(),
    })
}

/// A zip with entries in path order, each dated 1980-01-01 with mode 0644.
pub fn zip_bytes(files: &BTreeMap<String, (String, Vec<u8>)>) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let zerr = |e: zip::result::ZipError| OpError::Msg(format!("cannot build the zip: {e}"));
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (p, (_, b)) in files {
        w.start_file(p.as_str(), opts).map_err(zerr)?;
        w.write_all(b)
            .map_err(|e| OpError::Msg(format!("cannot build the zip: {e}")))?;
    }
    Ok(w.finish().map_err(zerr)?.into_inner())
}

fn io(path: &Path, action: &'static str, e: std::io::Error) -> OpError {
    WsError::Io {
        path: path.to_path_buf(),
        action,
        source: e,
    }
    .into()
}

/// Writes the files into a hidden sibling folder, then renames it over `out`.
fn write_folder(out: &Path, files: &BTreeMap<String, (String, Vec<u8>)>) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&parent)
        .map_err(|e| io(&parent, "create folder", e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-export-")
        .tempdir_in(&parent)
        .map_err(|e| io(&parent, "create a temporary folder in", e))?;
    for (rel, (_, bytes)) in files {
        let p = tmp.path().join(rel);
        if let Some(d) = p.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(d)
                .map_err(|e| io(d, "create folder", e))?;
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&p)
            .map_err(|e| io(&p, "create", e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| io(&p, "write", e))?;
    }
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(|e| io(tmp.path(), "set the mode of", e))?;
    let tmp_path = tmp.keep();
    let old = if out.exists() {
        let o = parent.join(format!(
            ".old-export-{}",
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let _ = fs::remove_dir_all(&o);
        let _ = fs::remove_file(&o);
        fs::rename(out, &o).map_err(|e| {
            let _ = fs::remove_dir_all(&tmp_path);
            io(out, "move aside", e)
        })?;
        Some(o)
    } else {
        None
    };
    if let Err(e) = fs::rename(&tmp_path, out) {
        if let Some(o) = &old {
            let _ = fs::rename(o, out);
        }
        let _ = fs::remove_dir_all(&tmp_path);
        return Err(io(out, "move into place", e));
    }
    if let Some(o) = old {
        if o.is_dir() {
            let _ = fs::remove_dir_all(&o);
        } else {
            let _ = fs::remove_file(&o);
        }
    }
    fsutil::sync_dir(&parent)?;
    Ok(())
}

/// Everything the per-format generators need.
struct Gen<'a> {
    tenant: &'a str,
    env: &'a str,
    chain_pem: &'a str,
    crl_pem: &'a str,
    client: &'a ClientEntry,
    cas: &'a [CertEntry],
    ca_ders: &'a [Vec<u8>],
    client_der: &'a [u8],
    crls: &'a [CrlEntry],
    depth: usize,
    tyk_org_id: &'a str,
}

type Out = Vec<(String, String, Vec<u8>)>;

impl Gen<'_> {
    fn name(&self) -> String {
        format!("mtls-{}-{}", self.tenant, self.env)
    }

    fn next_update(&self) -> String {
        self.crls
            .iter()
            .filter_map(|c| c.next_update)
            .min()
            .map(rfc3339)
            .unwrap_or_else(|| "(none)".into())
    }

    fn files(&self, f: Format) -> Out {
        let mut v: Out = Vec::new();
        let mut add = |p: &str, role: &str, b: String| {
            v.push((
                format!("{}/{p}", f.as_str()),
                role.to_string(),
                b.into_bytes(),
            ));
        };
        let n = self.name();
        let c = &self.client.cert;
        match f {
            Format::Pem => {}
            Format::Nginx => add(
                "mtls.conf",
                "nginx-snippet: server-block directives for client certificate checks",
                format!(
                    "# mTLS for tenant {t}, environment {e}: include inside the server {{ }} block.\n\
                     # Copy ca-chain.pem and crl.pem to /etc/nginx/mtls/{t}-{e}/ (or change the paths).\n\
                     ssl_client_certificate /etc/nginx/mtls/{t}-{e}/ca-chain.pem;\n\
                     # ssl_trusted_certificate instead of ssl_client_certificate checks the same CAs\n\
                     # without sending their names to clients.\n\
                     ssl_crl                /etc/nginx/mtls/{t}-{e}/crl.pem;\n\
                     ssl_verify_client      on;\n\
                     # the default depth of 1 refuses root -> intermediate -> leaf chains\n\
                     ssl_verify_depth       {d};\n\
                     \n\
                     # Optional, inside location {{ }}: tell the backend who called.\n\
                     # proxy_set_header X-Client-Subject $ssl_client_s_dn;\n\
                     # proxy_set_header X-Client-Verify  $ssl_client_verify;\n\
                     # Only this tenant's certificate (SHA-1 thumbprint), if the server serves several:\n\
                     # if ($ssl_client_fingerprint != \"{sha1}\") {{ return 403; }}\n",
                    t = self.tenant,
                    e = self.env,
                    d = self.depth,
                    sha1 = c.fingerprints.sha1_hex,
                ),
            ),
            Format::IngressNginx => {
                add(
                    "secret.yaml",
                    "kubernetes-secret: auth-tls-secret with ca.crt and ca.crl",
                    format!(
                        "# kubectl apply -n NAMESPACE -f secret.yaml\n\
                         apiVersion: v1\n\
                         kind: Secret\n\
                         metadata:\n  name: {n}-ca\n\
                         type: Opaque\n\
                         data:\n  ca.crt: {ca}\n  ca.crl: {crl}\n",
                        ca = fingerprint::base64(self.chain_pem.as_bytes()),
                        crl = fingerprint::base64(self.crl_pem.as_bytes()),
                    ),
                );
                add(
                    "ingress-annotations.yaml",
                    "kubernetes-annotations: the Ingress annotations that turn on client certificate checks",
                    format!(
                        "# Merge into your Ingress; replace NAMESPACE with the Secret's namespace.\n\
                         metadata:\n  annotations:\n\
                         \x20   nginx.ingress.kubernetes.io/auth-tls-secret: \"NAMESPACE/{n}-ca\"\n\
                         \x20   nginx.ingress.kubernetes.io/auth-tls-verify-client: \"on\"\n\
                         \x20   nginx.ingress.kubernetes.io/auth-tls-verify-depth: \"{d}\"\n\
                         \x20   nginx.ingress.kubernetes.io/auth-tls-pass-certificate-to-upstream: \"false\"\n",
                        d = self.depth
                    ),
                );
            }
            Format::GatewayApi => {
                add(
                    "configmap.yaml",
                    "kubernetes-configmap: ca.crt for Gateway frontend validation",
                    format!(
                        "# kubectl apply -n NAMESPACE -f configmap.yaml\n\
                         apiVersion: v1\n\
                         kind: ConfigMap\n\
                         metadata:\n  name: {n}-ca\n\
                         data:\n  ca.crt: |\n{body}",
                        body = indent(self.chain_pem, 4)
                    ),
                );
                add(
                    "gateway-tls.yaml",
                    "gateway-api-snippet: where the Gateway references the ConfigMap",
                    format!(
                        "# Merge into your Gateway (gateway.networking.k8s.io). The ConfigMap must be in the\n\
                         # Gateway's namespace, or allowed by a ReferenceGrant. Gateway API has no CRL field:\n\
                         # revocation depends on the implementation.\n\
                         spec:\n  tls:\n    frontend:\n      default:\n        validation:\n\
                         \x20         caCertificateRefs:\n\
                         \x20           - group: \"\"\n\
                         \x20             kind: ConfigMap\n\
                         \x20             name: {n}-ca\n"
                    ),
                );
            }
            Format::Envoy => {
                add(
                    "trusted_ca.pem",
                    "envoy-trusted-ca: validation_context.trusted_ca",
                    self.chain_pem.to_string(),
                );
                add(
                    "crl.pem",
                    "envoy-crl: validation_context.crl (one per CA in the chain)",
                    self.crl_pem.to_string(),
                );
                add(
                    "validation_context.yaml",
                    "envoy-snippet: DownstreamTlsContext with the CA, the CRL and optional pins",
                    format!(
                        "# transport_socket.typed_config of the listener's filter chain\n\
                         \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n\
                         require_client_certificate: true\n\
                         common_tls_context:\n\
                         \x20 # tls_certificates: your server certificate and key\n\
                         \x20 validation_context:\n\
                         \x20   trusted_ca: {{ filename: /etc/envoy/mtls/{t}-{e}/trusted_ca.pem }}\n\
                         \x20   crl: {{ filename: /etc/envoy/mtls/{t}-{e}/crl.pem }}\n\
                         \x20   max_verify_depth: {d}\n\
                         \x20   # Optional pins to this tenant's certificate only. An SPKI pin survives renewal\n\
                         \x20   # with the same key; a certificate hash changes with every certificate.\n\
                         \x20   # verify_certificate_spki: [{spki}]\n\
                         \x20   # verify_certificate_hash: [{hash}]\n",
                        t = self.tenant,
                        e = self.env,
                        d = self.depth,
                        spki = yq(&c.fingerprints.spki_sha256_base64),
                        hash = yq(&c.fingerprints.sha256_hex),
                    ),
                );
            }
            Format::F5 => {
                add(
                    "trusted-ca-bundle.pem",
                    "f5-trusted-ca: client SSL profile Trusted Certificate Authorities (and Advertised)",
                    self.chain_pem.to_string(),
                );
                add(
                    "crl.pem",
                    "f5-crl: client SSL profile Certificate Revocation List",
                    self.crl_pem.to_string(),
                );
                add(
                    "tmsh.txt",
                    "f5-commands: a tmsh sketch of the import and the profile settings",
                    format!(
                        "# Copy trusted-ca-bundle.pem and crl.pem to /var/tmp on the BIG-IP, then (check the\n\
                         # attribute names against your TMOS version):\n\
                         tmsh install sys crypto cert {n}-ca from-local-file /var/tmp/trusted-ca-bundle.pem\n\
                         tmsh install sys crypto crl {n}-crl from-local-file /var/tmp/crl.pem\n\
                         tmsh modify ltm profile client-ssl YOUR_PROFILE peer-cert-mode require authenticate-depth {d} ca-file {n}-ca.crt client-cert-ca {n}-ca.crt crl-file {n}-crl.crl\n\
                         \n\
                         # The CRL is a static file: import a fresh one before its nextUpdate ({nu}),\n\
                         # or the profile refuses every client once it is stale.\n",
                        d = self.depth,
                        nu = self.next_update()
                    ),
                );
            }
            Format::Iis => {
                for (i, (ca, der)) in self.cas.iter().zip(self.ca_ders).enumerate() {
                    v.push((
                        format!("iis/ca-{}-{}.cer", i + 1, slug(&ca.subject)),
                        if ca.self_signed {
                            "iis-ca: DER certificate for LocalMachine\\Trusted Root Certification Authorities".into()
                        } else {
                            "iis-ca: DER certificate for LocalMachine\\Intermediate Certification Authorities".into()
                        },
                        der.clone(),
                    ));
                }
                v.push((
                    "iis/client.cer".into(),
                    "iis-client: the tenant's certificate in DER".into(),
                    self.client_der.to_vec(),
                ));
                let mut add = |p: &str, role: &str, b: String| {
                    v.push((format!("iis/{p}"), role.to_string(), b.into_bytes()));
                };
                add(
                    "client-base64.txt",
                    "iis-one-to-one: the certificate attribute of a oneToOneMappings entry",
                    format!("{}\n", fingerprint::base64(self.client_der)),
                );
                let mut t = format!(
                    "# SHA-1 thumbprints as Windows shows them (certlm.msc, Get-ChildItem Cert:\\)\n\
                     client {}  {}\n",
                    c.fingerprints.sha1_hex.to_uppercase(),
                    c.subject
                );
                for ca in self.cas {
                    t.push_str(&format!(
                        "ca     {}  {}\n",
                        ca.fingerprints.sha1_hex.to_uppercase(),
                        ca.subject
                    ));
                }
                add("thumbprints.txt", "iis-thumbprints: SHA-1 thumbprints", t);
                let issuer_o = self.cas[0]
                    .subject
                    .split(',')
                    .find_map(|p| p.strip_prefix("O="))
                    .unwrap_or("")
                    .to_string();
                let subject_ou = c
                    .subject
                    .split(',')
                    .find_map(|p| p.strip_prefix("OU="))
                    .unwrap_or(self.tenant)
                    .to_string();
                add(
                    "web.config.xml",
                    "iis-mapping: one-to-one and many-to-one mapping examples",
                    format!(
                        "<!-- In applicationHost.config (location of your site), under\n\
                         \x20    system.webServer/security/authentication. Set sslFlags=\"Ssl, SslNegotiateCert, SslRequireCert\"\n\
                         \x20    under system.webServer/security/access. Replace the account and password. -->\n\
                         <iisClientCertificateMappingAuthentication enabled=\"true\"\n\
                         \x20   oneToOneCertificateMappingsEnabled=\"true\" manyToOneCertificateMappingsEnabled=\"false\">\n\
                         \x20 <oneToOneMappings>\n\
                         \x20   <add enabled=\"true\" userName=\"DOMAIN\\svc-{t}\" password=\"CHANGE-ME\"\n\
                         \x20        certificate=\"{b64}\" />\n\
                         \x20 </oneToOneMappings>\n\
                         \x20 <!-- Or many-to-one, matching every certificate of this tenant from this CA:\n\
                         \x20 <manyToOneMappings>\n\
                         \x20   <add name=\"{t}-{e}\" enabled=\"true\" permissionMode=\"Allow\" userName=\"DOMAIN\\svc-{t}\" password=\"CHANGE-ME\">\n\
                         \x20     <rules>\n\
                         \x20       <add certificateField=\"Issuer\" certificateSubField=\"O\" matchCriteria=\"{io}\" compareCaseSensitive=\"true\" />\n\
                         \x20       <add certificateField=\"Subject\" certificateSubField=\"OU\" matchCriteria=\"{ou}\" compareCaseSensitive=\"true\" />\n\
                         \x20     </rules>\n\
                         \x20   </add>\n\
                         \x20 </manyToOneMappings> -->\n\
                         </iisClientCertificateMappingAuthentication>\n",
                        t = self.tenant,
                        e = self.env,
                        b64 = fingerprint::base64(self.client_der),
                        io = xml_attr(&issuer_o),
                        ou = xml_attr(&subject_ou),
                    ),
                );
            }
            Format::AzureAppgw => add(
                "trusted-client-ca-chain.pem",
                "azure-trusted-client-ca: the chain (root included) for the SSL profile's client authentication",
                self.chain_pem.to_string(),
            ),
            Format::AwsApigw => add(
                "truststore.pem",
                "aws-truststore: upload to S3 and reference as truststoreUri",
                self.chain_pem.to_string(),
            ),
            Format::Tyk => {
                let ids = serde_json::json!({
                    "org_id": self.tyk_org_id,
                    "client_certificate_id": self.client.tyk_certificate_id,
                    "client_sha256": c.fingerprints.sha256_hex,
                    "ca_certificate_ids": self.cas.iter()
                        .map(|ca| format!("{}{}", self.tyk_org_id, ca.fingerprints.sha256_hex))
                        .collect::<Vec<_>>(),
                });
                add(
                    "certificate-ids.json",
                    "tyk-ids: the IDs Tyk gives these certificates once uploaded",
                    format!("{}\n", serde_json::to_string_pretty(&ids).expect("json")),
                );
                let api = serde_json::json!({
                    "use_mutual_tls_auth": true,
                    "client_certificates": [self.client.tyk_certificate_id],
                });
                add(
                    "api-definition-snippet.json",
                    "tyk-api-definition: static mTLS allow-list fields",
                    format!("{}\n", serde_json::to_string_pretty(&api).expect("json")),
                );
            }
            Format::HuaweiApig => add(
                "trusted_root_ca.pem",
                "huawei-trusted-root-ca: the CA field (trusted_root_ca) of the SSL certificate object",
                self.chain_pem.to_string(),
            ),
            Format::Rfc8705 => {
                let meta = serde_json::json!({
                    "token_endpoint_auth_method": "tls_client_auth",
                    "tls_client_auth_subject_dn": c.subject,
                });
                add(
                    "client-metadata.json",
                    "rfc8705-metadata: client registration with tls_client_auth_subject_dn",
                    format!("{}\n", serde_json::to_string_pretty(&meta).expect("json")),
                );
                let mut alt = serde_json::Map::new();
                for (k, vals) in [
                    ("tls_client_auth_san_dns", &c.san.dns),
                    ("tls_client_auth_san_uri", &c.san.uri),
                    ("tls_client_auth_san_ip", &c.san.ip),
                    ("tls_client_auth_san_email", &c.san.email),
                ] {
                    if let Some(first) = vals.first() {
                        alt.insert(k.into(), first.clone().into());
                    }
                }
                add(
                    "san-alternatives.json",
                    "rfc8705-alternatives: use exactly one of these instead of the subject DN",
                    format!("{}\n", serde_json::to_string_pretty(&alt).expect("json")),
                );
                let cnf = serde_json::json!({ "cnf": { "x5t#S256": c.fingerprints.x5t_s256 } });
                add(
                    "cnf.json",
                    "rfc8705-cnf: the confirmation claim of tokens bound to this certificate",
                    format!("{}\n", serde_json::to_string_pretty(&cnf).expect("json")),
                );
            }
        }
        v
    }

    fn readme(&self, formats: &[Format], warnings: &[String]) -> String {
        let c = &self.client.cert;
        let title = format!(
            "mTLS hand-off for tenant {}, environment {}",
            self.tenant, self.env
        );
        let mut s = format!(
            "{title}\n{underline}\n\n\
             Our platform connects to your gateway with a client certificate issued by our\n\
             private {e} CA, then sends its requests with the usual Authorization header.\n\
             Your gateway checks the certificate against the CA and CRL in this folder; your\n\
             backend keeps checking the username and password as before.\n\n\
             No private key is in this folder, and none is needed on your side.\n\n\
             Common files\n\
             ------------\n\
             ca-chain.pem   the CA certificate(s) to trust for client certificates ({nca})\n\
             crl.pem        one CRL per CA; next update {nu}: we send a fresh one before then\n\
             client.pem     our current client certificate, for gateways that pin or map it\n\
             manifest.json  every file's SHA-256, and the certificate's identifiers\n\n\
             Our client certificate\n\
             ----------------------\n\
             subject        {subj}\n\
             issuer         {iss}\n\
             serial         {ser}\n\
             valid          {nb} to {na}\n\
             SHA-256        {s256}\n\
             SHA-1          {s1}\n\
             x5t#S256       {x5t}\n\
             verify depth   {d} (leaf plus the CAs above it)\n\n",
            title = title,
            underline = "=".repeat(title.len()),
            e = self.env,
            nca = self.cas.len(),
            nu = self.next_update(),
            subj = c.subject,
            iss = c.issuer,
            ser = c.serial,
            nb = rfc3339(c.not_before),
            na = rfc3339(c.not_after),
            s256 = c.fingerprints.sha256_colon,
            s1 = c.fingerprints.sha1_colon,
            x5t = c.fingerprints.x5t_s256,
            d = self.depth,
        );
        for &f in formats {
            s.push_str(&format!("{}\n{}\n", f.title(), "-".repeat(f.title().len())));
            s.push_str(&self.steps(f));
            s.push('\n');
        }
        s.push_str(&format!(
            "Testing together\n\
             ----------------\n\
             Once installed, we run `mtlsctl probe https://YOUR-HOST/ --tenant {t} --env {e}`\n\
             against your endpoint. It reports the CA names your gateway asks for, whether it\n\
             accepted our certificate and the HTTP status, and says in plain words what is\n\
             missing when something is.\n",
            t = self.tenant,
            e = self.env
        ));
        if !warnings.is_empty() {
            s.push_str("\nWarnings\n--------\n");
            for w in warnings {
                s.push_str(&format!("- {w}\n"));
            }
        }
        s
    }

    fn steps(&self, f: Format) -> String {
        let d = self.depth;
        let nu = self.next_update();
        match f {
            Format::Pem => "1. Trust ca-chain.pem for client certificates.\n\
                            2. Load crl.pem as the revocation list and replace it whenever we send a new one.\n\
                            3. Require a client certificate and allow a chain depth of at least "
                .to_string()
                + &format!("{d}.\n"),
            Format::Nginx => format!(
                "1. Copy ca-chain.pem and crl.pem to /etc/nginx/mtls/{t}-{e}/.\n\
                 2. Include nginx/mtls.conf in the server {{ }} block of the TLS listener\n\
                 \x20  (ssl_client_certificate, ssl_crl, ssl_verify_client on, ssl_verify_depth {d}).\n\
                 3. nginx -t && nginx -s reload.\n\
                 4. When we send a new crl.pem, replace the file and reload again: nginx refuses\n\
                 \x20  every client once the CRL passes its next update ({nu}).\n",
                t = self.tenant,
                e = self.env
            ),
            Format::IngressNginx => format!(
                "1. kubectl apply -n NAMESPACE -f ingress-nginx/secret.yaml (keys ca.crt and ca.crl).\n\
                 2. Add the annotations of ingress-nginx/ingress-annotations.yaml to your Ingress,\n\
                 \x20  with NAMESPACE replaced; auth-tls-verify-depth is {d} (the default of 1 is too low\n\
                 \x20  for chains with intermediates).\n\
                 3. Re-apply the Secret whenever we send a new CRL (next update {nu}).\n"
            ),
            Format::GatewayApi => "1. kubectl apply -n NAMESPACE -f gateway-api/configmap.yaml (key ca.crt).\n\
                 2. Reference it from the Gateway as in gateway-api/gateway-tls.yaml\n\
                 \x20  (spec.tls.frontend.default.validation.caCertificateRefs).\n\
                 3. Gateway API has no CRL field: configure revocation the way your implementation does.\n"
                .to_string(),
            Format::Envoy => format!(
                "1. Copy envoy/trusted_ca.pem and envoy/crl.pem next to the Envoy configuration.\n\
                 2. Merge envoy/validation_context.yaml into the listener's DownstreamTlsContext\n\
                 \x20  (require_client_certificate, trusted_ca, crl, max_verify_depth {d}).\n\
                 3. Envoy needs a CRL for every CA in the chain: crl.pem has one per CA.\n\
                 4. Optional: pin this tenant with verify_certificate_spki (survives renewal with the\n\
                 \x20  same key) or verify_certificate_hash (changes with each certificate).\n"
            ),
            Format::F5 => format!(
                "1. Import f5/trusted-ca-bundle.pem as a certificate (System > Certificate Management).\n\
                 2. Import f5/crl.pem as a CRL.\n\
                 3. In the client SSL profile: Client Certificate = require, Trusted Certificate\n\
                 \x20  Authorities = the bundle, Advertised Certificate Authorities = the bundle,\n\
                 \x20  Certificate Revocation List = the CRL, Certificate Chain Traversal Depth >= {d}.\n\
                 \x20  f5/tmsh.txt has the same as tmsh commands.\n\
                 4. The CRL is a static file: re-import the fresh one we send before {nu}.\n"
            ),
            Format::Iis => "1. Import the iis/ca-*.cer files into the Local Computer store: self-signed roots\n\
                 \x20  into Trusted Root Certification Authorities, others into Intermediate\n\
                 \x20  Certification Authorities.\n\
                 2. Require client certificates on the site (SSL Settings: Require).\n\
                 3. Map the certificate: one-to-one with the single line of iis/client-base64.txt as\n\
                 \x20  the certificate attribute, or many-to-one on Issuer O and Subject OU\n\
                 \x20  (iis/web.config.xml shows both).\n\
                 4. iis/thumbprints.txt lists the SHA-1 thumbprints Windows shows.\n\
                 5. Windows checks revocation itself (CDP); our certificates carry no CDP, so\n\
                 \x20  revocation is enforced by removing the mapping.\n"
                .to_string(),
            Format::AzureAppgw => "1. In the Application Gateway's SSL profile, Client Authentication: upload\n\
                 \x20  azure-appgw/trusted-client-ca-chain.pem (root included, under 25 KB) as a\n\
                 \x20  trusted client CA certificate chain.\n\
                 2. Bind the SSL profile to the HTTPS listener.\n\
                 3. Application Gateway checks revocation by OCSP only, not by CRL: our certificates\n\
                 \x20  carry no OCSP responder, so a revoked certificate is NOT refused by the gateway.\n\
                 \x20  Ask us to remove access another way (for example the backend's credentials).\n"
                .to_string(),
            Format::AwsApigw => "1. Upload aws-apigw/truststore.pem to S3 (enable versioning).\n\
                 2. On the custom domain name: mutual TLS on, truststore URI s3://BUCKET/truststore.pem\n\
                 \x20  (and truststoreVersion).\n\
                 3. Check truststoreWarnings afterwards: it must be empty.\n\
                 4. API Gateway checks no revocation at all: a revoked certificate is only refused\n\
                 \x20  by a Lambda authorizer (match the serial against crl.pem) or by the backend.\n\
                 5. AWS does not warn when a truststore certificate expires: note the CA's notAfter.\n"
                .to_string(),
            Format::Tyk => format!(
                "1. Upload ca-chain.pem (and client.pem for a static allow-list) to the Tyk\n\
                 \x20  certificate store (PEM only; expired certificates are refused).\n\
                 2. Tyk names each certificate org ID + lowercase hex SHA-256; tyk/certificate-ids.json\n\
                 \x20  has them (org ID '{org}'{orgnote}).\n\
                 3. Static mTLS: set use_mutual_tls_auth and client_certificates as in\n\
                 \x20  tyk/api-definition-snippet.json. Dynamic mTLS does not accept CA certificates.\n\
                 4. Tyk checks no CRL: revoke by removing the ID from client_certificates.\n",
                org = self.tyk_org_id,
                orgnote = if self.tyk_org_id.is_empty() {
                    ", none given: prefix your org ID, or export again with --tyk-org-id"
                } else {
                    ""
                }
            ),
            Format::HuaweiApig => "1. In APIG (dedicated), edit the SSL certificate bound to the independent domain\n\
                 \x20  and paste huawei-apig/trusted_root_ca.pem into the CA field (trusted_root_ca; PEM).\n\
                 2. Enable client certificate verification on the domain.\n\
                 3. Revocation checks are not documented for APIG: remove access another way.\n"
                .to_string(),
            Format::Rfc8705 => "1. Register the client with rfc8705/client-metadata.json\n\
                 \x20  (token_endpoint_auth_method tls_client_auth, tls_client_auth_subject_dn as an\n\
                 \x20  RFC 4514 string), or with exactly one of rfc8705/san-alternatives.json instead.\n\
                 2. Tokens bound to this certificate carry rfc8705/cnf.json (x5t#S256).\n"
                .to_string(),
        }
    }
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        }
        assert!("bogus".parse::<Format>().is_err());
    }

    #[test]
    fn slug_and_pem() {
        assert_eq!(
            slug("CN=Example prod mTLS CA,O=Example"),
            "example-prod-mtls-ca"
        );
        let p = pem("CERTIFICATE", &[0u8; 100]);
        assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(p.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
    }

    #[test]
    fn zip_is_deterministic() {
        let mut m = BTreeMap::new();
        m.insert("b.txt".to_string(), ("r".to_string(), b"two".to_vec()));
        m.insert("a/x.txt".to_string(), ("r".to_string(), b"one".to_vec()));
        let a = zip_bytes(&m).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = zip_bytes(&m).unwrap();
        assert_eq!(a, b);
    }
}
