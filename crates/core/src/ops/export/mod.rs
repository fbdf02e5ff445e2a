//! Gateway hand-off: the public trust material a gateway operator installs, in the form
//! each gateway takes it, checked against that gateway's limits. Never a private key.
//!
//! The output is a pure function of the workspace state (CA chain, the env CRL, the
//! tenant's current client certificate): the same state gives byte-identical files, and
//! the zip form uses fixed timestamps, fixed modes and sorted entries.
//!
//! [`Material`] reads the state once; each format is a [`Gateway`] of
//! [`gateways::REGISTRY`] that turns it into files, README steps and limit checks.

pub mod gateways;
mod material;
mod template;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::pki::fingerprint;
use crate::pki::inspect::SanInfo;
use crate::profile::Profiles;
use crate::workspace::{Workspace, fsutil};
pub use gateways::{AWS_MAX_CHAIN, AZURE_MAX_BYTES, File, Findings, Gateway, REGISTRY};
pub use material::{Cert, Material};
use template::{render, template};

/// One of the formats of [`REGISTRY`], by its place there (which orders formats in the
/// manifest and the README). Serialised as its `--format` name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Format(usize);

impl Format {
    /// Every format, in registry order.
    pub fn all() -> impl Iterator<Item = Format> {
        (0..REGISTRY.len()).map(Format)
    }

    pub fn gateway(self) -> &'static dyn Gateway {
        REGISTRY[self.0]
    }

    /// The `--format` name.
    pub fn as_str(self) -> &'static str {
        self.gateway().name()
    }

    /// The format of an export that names none: plain PEM.
    pub fn default_format() -> Format {
        "pem".parse().expect("pem is registered")
    }
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Format::all().find(|f| f.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Format::all().map(Format::as_str).collect();
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
    /// Report what changed since the last hand-off to this tenant/env.
    pub since_last: bool,
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
    /// For a CA: root or issuing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// For a CA: active, or retiring during a rotation's overlap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
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

/// The revocation pointers the hand-off's certificates carry (`ca.ocsp_url`,
/// `ca.crl_url`): empty when the profile sets none.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RevocationEntry {
    /// The OCSP responder named by the client certificate (AIA).
    pub ocsp_url: Option<String>,
    /// The CRL distribution points, the client certificate's first, then those of the
    /// CAs above it (each names its issuer's CRL).
    pub crl_urls: Vec<String>,
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
    /// Where a gateway finds revocation without a hand-off: what the certificates name.
    pub revocation: RevocationEntry,
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
    /// With `--since-last`: what changed since the last hand-off to this tenant/env.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_last: Option<SinceLast>,
}

/// What a hand-off carries that the previous one to the same tenant/env did not.
#[derive(Clone, Debug, Serialize)]
pub struct SinceLast {
    /// When the previous hand-off was recorded (null: this is the first).
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_at: Option<OffsetDateTime>,
    /// The client serial it carried.
    pub previous_serial: Option<String>,
    /// `new-ca` (ca-chain.pem differs), `new-pins` (another client certificate),
    /// `new-crl` (crl.pem differs), `first` (no earlier hand-off); empty: nothing changed.
    pub changes: Vec<String>,
    /// The same in words.
    pub summary: String,
}

/// The op of the audit line every hand-off writes.
pub const AUDIT_OP: &str = "export";

/// The audit detail of a hand-off: its formats and every file it carried (but the
/// manifest and README) with its SHA-256, `name=hex` separated by `; `.
fn audit_detail(formats: &[Format], files: &[FileEntry]) -> String {
    let names: Vec<&str> = formats.iter().map(|f| f.as_str()).collect();
    let mut parts = vec![format!("formats {}", names.join(","))];
    for f in files {
        if f.path != "manifest.json" && f.path != "README.txt" {
            parts.push(format!("{}={}", f.path, f.sha256));
        }
    }
    parts.join("; ")
}

/// The files and SHA-256s an export audit line's detail names.
pub fn carried(detail: &str) -> BTreeMap<String, String> {
    detail
        .split("; ")
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The last hand-off to tenant/env the audit trail records.
pub fn last_handoff(
    ws: &Workspace,
    tenant: &str,
    env: &str,
) -> Result<Option<crate::workspace::audit::Record>> {
    let l = super::audit::list(
        ws,
        &super::audit::Query {
            tenant: Some(tenant),
            env: Some(env),
            op: Some(AUDIT_OP),
            ..Default::default()
        },
    )?;
    Ok(l.records.into_iter().last())
}

fn since_last(prev: Option<&crate::workspace::audit::Record>, files: &[FileEntry]) -> SinceLast {
    let Some(prev) = prev else {
        return SinceLast {
            previous_at: None,
            previous_serial: None,
            changes: vec!["first".into()],
            summary: "the first hand-off to this tenant in this environment: send everything"
                .into(),
        };
    };
    let before = carried(prev.detail.as_deref().unwrap_or_default());
    let now: BTreeMap<&str, &str> = files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let differs = |name: &str| before.get(name).map(String::as_str) != now.get(name).copied();
    let mut changes = Vec::new();
    let mut words = Vec::new();
    if differs("ca-chain.pem") {
        changes.push("new-ca".to_string());
        words.push("a new CA bundle (ca-chain.pem): the gateway must trust it");
    }
    if differs("client.pem") {
        changes.push("new-pins".to_string());
        words.push("a new client certificate (client.pem): new pins and mappings");
    }
    if differs("crl.pem") {
        changes.push("new-crl".to_string());
        words.push("a new CRL (crl.pem): install it");
    }
    let summary = if words.is_empty() {
        "nothing changed since the last hand-off".to_string()
    } else {
        words.join("; ")
    };
    SinceLast {
        previous_at: Some(prev.time),
        previous_serial: prev.serial.clone(),
        changes,
        summary,
    }
}

/// The files of a hand-off: path -> (role, bytes), sorted by path.
type Files = BTreeMap<String, (String, Vec<u8>)>;

/// Builds the hand-off in memory after checking every selected gateway's limits.
pub fn build(ws: &Workspace, profiles: &Profiles, req: &Request<'_>) -> Result<Handoff> {
    profiles.check_env(req.env)?;
    profiles.tenant(req.tenant)?;
    let mut formats: Vec<Format> = req.formats.to_vec();
    formats.sort();
    formats.dedup();
    if formats.is_empty() {
        formats.push(Format::default_format());
    }
    let m = Material::load(ws, profiles, req)?;
    let (checks, warnings) = check_limits(&formats, &m)?;
    let mut files = assemble(&formats, &m, &warnings)?;
    let manifest = Manifest {
        manifest_version: 1,
        tenant: m.tenant.clone(),
        env: m.env.clone(),
        formats,
        verify_depth: m.depth,
        client: ClientEntry {
            cert: m.client.entry.clone(),
            tyk_certificate_id: m.tyk_certificate_id.clone(),
        },
        ca_chain: m.cas.iter().map(|c| c.entry.clone()).collect(),
        crls: m.crls.clone(),
        revocation: m.revocation(),
        checks,
        warnings,
        files: files
            .iter()
            .map(|(p, (r, b))| file_entry(p, r, b))
            .collect(),
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

/// Every selected gateway's limits, and the warnings of the material and the gateways;
/// refuses the export when a limit is not met.
fn check_limits(formats: &[Format], m: &Material) -> Result<(Vec<Check>, Vec<String>)> {
    let mut checks = Vec::new();
    let mut warnings = m.warnings.clone();
    for &f in formats {
        let mut found = Findings::new(f);
        f.gateway().check_limits(m, &mut found);
        checks.append(&mut found.checks);
        warnings.append(&mut found.warnings);
    }
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}: {}", c.format.as_str(), c.check, c.detail))
        .collect();
    if !failures.is_empty() {
        return Err(OpError::GatewayLimits { failures });
    }
    Ok((checks, warnings))
}

/// The common files, every selected gateway's files under its folder, and README.txt.
fn assemble(formats: &[Format], m: &Material, warnings: &[String]) -> Result<Files> {
    let mut files = Files::new();
    let mut put = |path: String, role: &str, bytes: Vec<u8>| {
        files.insert(path, (role.to_string(), bytes));
    };
    put(
        "ca-chain.pem".into(),
        "trust-bundle: every CA certificate the gateway must trust for this environment",
        m.chain_pem.clone().into_bytes(),
    );
    put(
        "client.pem".into(),
        "client-certificate: the tenant's current public certificate (for pinning or mapping)",
        m.client_pem.clone().into_bytes(),
    );
    put(
        "crl.pem".into(),
        "crl: one current CRL for every CA in ca-chain.pem",
        m.crl_pem.clone().into_bytes(),
    );
    if let Some(st) = &m.staged {
        put(
            "client-staged.pem".into(),
            "client-certificate-staged: the staged successor, to pin beside the current one",
            crate::pki::pem("CERTIFICATE", &st.der).into_bytes(),
        );
    }
    for &f in formats {
        for file in f.gateway().files(m)? {
            put(
                format!("{}/{}", f.as_str(), file.path),
                file.role,
                file.bytes,
            );
        }
    }
    put(
        "README.txt".into(),
        "readme: what to install where, step by step",
        readme(formats, m, warnings).into_bytes(),
    );
    // defence in depth: nothing secret may leave
    for (p, (_, b)) in &files {
        if b.windows(11).any(|w| w == b"PRIVATE KEY") {
            return Err(OpError::Msg(format!(
                "internal check failed: the hand-off file {p} would hold private key material; nothing was written"
            )));
        }
    }
    Ok(files)
}

/// README.txt: the common part, each selected gateway's steps, testing, warnings.
fn readme(formats: &[Format], m: &Material, warnings: &[String]) -> String {
    let vars = m.vars();
    let mut s = render(template!("README.txt"), &vars);
    s.push_str(&m.rollover_text());
    for &f in formats {
        let g = f.gateway();
        s.push_str(&format!("{}\n{}\n", g.title(), "-".repeat(g.title().len())));
        s.push_str(&g.readme_steps(m));
        s.push('\n');
    }
    s.push_str(&render(template!("README.testing.txt"), &vars));
    if !warnings.is_empty() {
        s.push_str("\nWarnings\n--------\n");
        for w in warnings {
            s.push_str(&format!("- {w}\n"));
        }
    }
    s
}

fn file_entry(path: &str, role: &str, bytes: &[u8]) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        role: role.to_string(),
        sha256: fingerprint::hex(&fingerprint::sha256(bytes)),
        bytes: bytes.len(),
    }
}

/// Builds and writes the hand-off to `out` (a folder, or a zip file with `zip`).
/// An existing `out` is replaced only with `force`; the new one appears whole or not at
/// all.
/// Writes the hand-off and records it in the audit trail (the caller holds the lock).
pub fn export(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    out: &Path,
    zip: bool,
    force: bool,
) -> Result<ExportReport> {
    ws.audit_preflight()?;
    let h = build(ws, profiles, req)?;
    let previous = last_handoff(ws, req.tenant, req.env)?;
    let out = crate::workspace::absolute(out);
    may_replace(&out, zip, force)?;
    if zip {
        if out.is_dir() {
            return Err(OpError::ZipOutIsDir {
                path: out.to_path_buf(),
            });
        }
        fsutil::write_atomic(&out, &zip_bytes(&h.files)?, fsutil::PUBLIC)?;
    } else {
        let files: Vec<fsutil::NewFile<'_>> = h
            .files
            .iter()
            .map(|(name, (_, bytes))| fsutil::NewFile {
                name,
                bytes,
                mode: fsutil::PUBLIC,
            })
            .collect();
        fsutil::replace_public_dir(&out, &files)?;
    }
    let mut files: Vec<FileEntry> = h.manifest.files.clone();
    let (role, bytes) = &h.files["manifest.json"];
    files.push(file_entry("manifest.json", role, bytes));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let m = h.manifest;
    // the record of what was handed over: the next --since-last compares against it
    let sha = ws
        .current_leaf(&m.tenant, &m.env, crate::pki::Kind::Client)?
        .filter(|r| r.meta.serial == m.client.cert.serial)
        .map(|r| r.meta.sha256);
    let mut ev = crate::workspace::audit::Event::new(AUDIT_OP);
    ev.tenant = Some(&m.tenant);
    ev.env = Some(&m.env);
    ev.kind = Some("client");
    ev.serial = Some(&m.client.cert.serial);
    ev.sha256 = sha.as_deref();
    ev.detail = Some(audit_detail(&m.formats, &files));
    ws.audit(&ev)?;
    let since = since_last(previous.as_ref(), &files);
    Ok(ExportReport {
        tenant: m.tenant,
        env: m.env,
        formats: m.formats,
        out,
        zip,
        client_serial: m.client.cert.serial,
        client_subject: m.client.cert.subject,
        verify_depth: m.verify_depth,
        files,
        checks: m.checks,
        warnings: m.warnings,
        since_last: req.since_last.then_some(since),
    })
}

/// An existing `out` is replaced only with `force`, and only when it is an earlier
/// hand-off: never an unrelated folder or file.
fn may_replace(out: &Path, zip: bool, force: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !force {
        return Err(OpError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let earlier = if out.is_dir() {
        out.join("manifest.json").is_file()
            || std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_none())
    } else {
        zip && fsutil::read(out).is_ok_and(|b| b.starts_with(b"PK\x03\x04"))
    };
    if earlier {
        return Ok(());
    }
    Err(OpError::NotEarlierHandoff {
        path: out.to_path_buf(),
        zip,
    })
}

/// A zip with entries in path order, each dated 1980-01-01 with mode 0644.
pub fn zip_bytes(files: &BTreeMap<String, (String, Vec<u8>)>) -> Result<Vec<u8>> {
    use zip::write::SimpleFileOptions;
    let zerr = |e: zip::result::ZipError| OpError::Zip { reason: e.into() };
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (p, (_, b)) in files {
        w.start_file(p.as_str(), opts).map_err(zerr)?;
        w.write_all(b)
            .map_err(|e| OpError::Zip { reason: e.into() })?;
    }
    Ok(w.finish().map_err(zerr)?.into_inner())
}

#[cfg(test)]
pub(crate) mod tests;
