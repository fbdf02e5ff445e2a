//! YAML profiles: loading with file:line:column errors, layering with provenance, and
//! `{placeholder}` expansion. Writes no files.
//!
//! Layers, lowest first: built-in defaults < `mtlsctl.yaml` (`defaults:`, `ca:`) <
//! the environment's profile (`leaf:`, `ca:`) < the tenant's profile < the tenant's
//! `overrides.<env>` < command-line flags. A list set in a higher layer replaces the
//! lower one whole.

pub mod duration;
mod limits;
pub mod model;
pub mod resolve;
pub mod templates;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};
use thiserror::Error;

use crate::pki::text::sanitize;
use crate::workspace::{Workspace, WsError, check_name};
pub use duration::Dur;
pub use model::{CaScope, EkuMode};
pub use model::{ConfigFile, EnvFile, TenantFile};
pub use resolve::{LeafFlags, Resolved, ResolvedCa, Source, Val};

#[derive(Debug, Error)]
pub enum ProfileError {
    /// A problem at a place in a file.
    #[error("{}:{line}:{col}: {msg}", path.display())]
    At {
        path: PathBuf,
        line: u64,
        col: u64,
        msg: String,
    },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("unknown tenant '{name}'{}", unknown_hint(name, known, "tenant"))]
    UnknownTenant { name: String, known: Vec<String> },
    #[error("unknown environment '{name}'{}", unknown_hint(name, known, "env"))]
    UnknownEnv { name: String, known: Vec<String> },
    #[error("{0}")]
    Flag(String),
    #[error(transparent)]
    Workspace(#[from] WsError),
}

/// What follows "unknown tenant 'x'": the near name first, since a typo (`production`
/// for `prod`) is likelier than a new name; the command that adds one last.
fn unknown_hint(name: &str, known: &[String], noun: &str) -> String {
    let names: Vec<&str> = known.iter().map(String::as_str).collect();
    let add = format!("to add a new one: `mtlsctl {noun} add {name}`");
    match (did_you_mean(name, &names), known.is_empty()) {
        (Some(s), _) => format!(": did you mean '{s}'? (known: {}; {add})", names.join(", ")),
        (None, true) => format!(" (there are none yet); {add}"),
        (None, false) => format!(" (known: {}); {add}", names.join(", ")),
    }
}

impl ProfileError {
    pub fn at(path: &Path, loc: &Location, msg: impl Into<String>) -> Self {
        ProfileError::At {
            path: path.to_path_buf(),
            line: loc.line(),
            col: loc.column(),
            msg: msg.into(),
        }
    }

    pub fn at_spanned<T>(path: &Path, s: &Spanned<T>, msg: impl Into<String>) -> Self {
        Self::at(path, &s.referenced, msg)
    }
}

/// Turns a serde-saphyr error into a one-line `file:line:col: message`, with a
/// did-you-mean for unknown keys.
///
/// The message never quotes the file: no source snippet, a value serde would quote
/// (`invalid type: string "root:$6$...", expected ...`) is left out, and a key is named
/// only when it looks like one, so a file that is not a profile at all (a copy of
/// /etc/shadow, a key) shows nothing of itself.
fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> ProfileError {
    let plain = e.without_snippet().to_string();
    let mut msg = plain.lines().next().unwrap_or("").to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    msg = drop_quoted_value(&msg);
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
    {
        let expected: Vec<&str> = tail
            .split_once("expected one of ")
            .or_else(|| tail.split_once("expected "))
            .map(|(_, l)| l.split(", ").map(|s| s.trim_matches('`')).collect())
            .unwrap_or_default();
        msg = match (looks_like_key(field), did_you_mean(field, &expected)) {
            (false, _) => format!(
                "this is not a profile key (is this file a profile at all?): known keys are {}",
                expected.join(", ")
            ),
            (true, Some(s)) => format!("unknown key '{field}': did you mean '{s}'?"),
            (true, None) => format!(
                "unknown key '{field}': known keys are {}",
                expected.join(", ")
            ),
        };
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        // the library's advice names its own option: say it in the profile's terms
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        msg = if looks_like_key(key) {
            format!("the key '{key}' is given twice in this mapping: keep one")
        } else {
            "a key is given twice in this mapping: keep one".into()
        };
    }
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        msg = format!("the key '{field}' is required here");
    }
    match e.location() {
        Some(l) => ProfileError::At {
            path: path.to_path_buf(),
            line: l.line(),
            col: l.column(),
            msg,
        },
        None => ProfileError::File {
            path: path.to_path_buf(),
            msg,
        },
    }
}

/// Whether an unknown key from a file may be repeated in a message: a short word of
/// letters, digits, '_', '-' and '.', as every profile key and environment name is.
/// Anything else (a line of /etc/shadow read as a key) is not shown.
fn looks_like_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 40
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `invalid type: string "<the file's text>", expected X` -> `invalid type: found a
/// string, expected X`: serde's invalid-type and invalid-value messages quote the value
/// they found, which for a file that is not YAML is the file itself; an unknown variant
/// is named only when it looks like a word.
fn drop_quoted_value(msg: &str) -> String {
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((value, tail)) = rest.split_once('`')
        && !looks_like_key(value)
    {
        return format!("unknown value{tail}");
    }
    for lead in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(lead)
            && let Some(q) = rest.find([' ', '"', '`', '\''])
            && let Some((_, expected)) = rest.rsplit_once(", expected ")
        {
            let what = rest[..q].trim_end_matches(',');
            let expected = match expected.strip_prefix("struct ") {
                Some(_) => "a mapping of keys",
                None => expected,
            };
            return format!("{lead}found a {what}, expected {expected}");
        }
    }
    msg.to_string()
}

/// The closest candidate: within a small edit distance (`valdity` for `validity`), or
/// one name the start of the other (`production` for `prod`).
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let near = candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    near.or_else(|| {
        candidates
            .iter()
            .filter(|c| c.len() >= 3 && word.len() >= 3)
            .find(|c| word.starts_with(**c) || c.starts_with(word))
            .copied()
    })
}

/// Reads and parses one profile of `ws`: never through a symbolic link (see
/// [`Workspace::read`]), and never quoting the file in an error (see [`yaml_error`]).
fn parse_file<T: for<'de> serde::Deserialize<'de>>(
    ws: &Workspace,
    path: &Path,
) -> Result<T, ProfileError> {
    let bytes = ws.read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| ProfileError::File {
        path: path.to_path_buf(),
        msg: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    let mut opts = serde_saphyr::Options::default();
    opts.with_snippet = false;
    serde_saphyr::from_str_with_options::<T>(&text, opts).map_err(|e| yaml_error(path, &e))
}

/// A file under profiles/tenants/ that is not used: its name is not a valid tenant name
/// (`ca.yaml`, a name with control characters), or it is a symbolic link.
#[derive(Clone, Debug)]
pub struct RejectedProfile {
    /// The file name without `.yaml`, as far as it is text.
    pub name: String,
    pub path: PathBuf,
    /// Why, with any file-derived text escaped.
    pub reason: String,
}

impl RejectedProfile {
    pub fn error(&self) -> ProfileError {
        ProfileError::File {
            path: PathBuf::from(sanitize(&self.path.to_string_lossy())),
            msg: self.reason.clone(),
        }
    }
}

impl fmt::Display for RejectedProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error().fmt(f)
    }
}

/// The tenants of profiles/tenants/ by file name, and the files that cannot be tenants.
fn list_tenants(ws: &Workspace) -> (Vec<String>, Vec<RejectedProfile>) {
    let (mut names, mut rejected) = (Vec::new(), Vec::new());
    let Ok(rd) = std::fs::read_dir(ws.tenants_dir()) else {
        return (names, rejected);
    };
    for ent in rd.flatten() {
        let n = ent.file_name().to_string_lossy().into_owned();
        let Some(stem) = n.strip_suffix(".yaml").filter(|s| !s.starts_with('.')) else {
            continue;
        };
        let reason = match check_name("tenant", stem) {
            Err(m) => Some(format!("not used as a tenant profile: {m}")),
            Ok(()) if ent.file_type().is_ok_and(|t| t.is_symlink()) => Some(
                "not used as a tenant profile: it is a symbolic link, which mtlsctl does not follow inside a workspace (it could lead to any file on this machine); replace the link with the file itself".into(),
            ),
            Ok(()) => None,
        };
        match reason {
            Some(reason) => rejected.push(RejectedProfile {
                name: stem.to_string(),
                path: ent.path(),
                reason,
            }),
            None => names.push(stem.to_string()),
        }
    }
    names.sort();
    rejected.sort_by(|a, b| a.path.cmp(&b.path));
    (names, rejected)
}

/// Every profile of a workspace. Tenant files are read when first needed.
pub struct Profiles {
    pub root: PathBuf,
    pub config_path: PathBuf,
    pub config: ConfigFile,
    pub envs: BTreeMap<String, (PathBuf, EnvFile)>,
    tenant_names: Vec<String>,
    rejected: Vec<RejectedProfile>,
    ws: Workspace,
}

impl fmt::Debug for Profiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Profiles({})", self.root.display())
    }
}

/// A tenant's effective `handoff:` settings.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Handoff {
    pub pinning: bool,
    pub overlap: Dur,
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff {
            pinning: false,
            overlap: Dur::days(14),
        }
    }
}

impl Profiles {
    /// Reads mtlsctl.yaml and every environment profile; checks names and lists tenants.
    pub fn load(ws: &Workspace) -> Result<Self, ProfileError> {
        let config_path = ws.config_file();
        let config: ConfigFile = parse_file(ws, &config_path)?;
        if config.org.value.trim().is_empty() {
            return Err(ProfileError::at_spanned(
                &config_path,
                &config.org,
                "org is empty: give your organisation's name",
            ));
        }
        let mut envs = BTreeMap::new();
        for e in &config.environments.value {
            if let Err(m) = check_name("environment", &e.value) {
                return Err(ProfileError::at_spanned(&config_path, e, m));
            }
            if envs.contains_key(&e.value) {
                return Err(ProfileError::at_spanned(
                    &config_path,
                    e,
                    format!("environment '{}' is listed twice", e.value),
                ));
            }
            let p = ws.env_profile(&e.value);
            if !p.is_file() {
                return Err(ProfileError::at_spanned(
                    &config_path,
                    e,
                    format!(
                        "environment '{}' has no profile {}: run `mtlsctl env add {}` or remove it from the list",
                        e.value,
                        p.display(),
                        e.value
                    ),
                ));
            }
            let file: EnvFile = parse_file(ws, &p)?;
            envs.insert(e.value.clone(), (p, file));
        }
        let (tenant_names, rejected) = list_tenants(ws);
        let p = Profiles {
            root: ws.root().to_path_buf(),
            config_path,
            config,
            envs,
            tenant_names,
            rejected,
            ws: ws.clone(),
        };
        p.check_placeholders_config()?;
        Ok(p)
    }

    pub fn org(&self) -> &str {
        &self.config.org.value
    }

    pub fn env_names(&self) -> Vec<String> {
        self.envs.keys().cloned().collect()
    }

    pub fn tenant_names(&self) -> &[String] {
        &self.tenant_names
    }

    /// The files under profiles/tenants/ that are not used, and why: commands that go
    /// over every tenant name them in a warning.
    pub fn rejected_tenants(&self) -> &[RejectedProfile] {
        &self.rejected
    }

    pub fn check_env(&self, env: &str) -> Result<(), ProfileError> {
        check_name("environment", env).map_err(ProfileError::Flag)?;
        if self.envs.contains_key(env) {
            Ok(())
        } else {
            Err(ProfileError::UnknownEnv {
                name: env.to_string(),
                known: self.env_names(),
            })
        }
    }

    /// A tenant's `handoff:` settings: whether its gateway pins our certificate, and how
    /// long old and new pins overlap (default 14d). A tenant without a profile (an
    /// imported or signed certificate's pseudo-tenant) pins nothing.
    pub fn handoff(&self, tenant: &str) -> Result<Handoff, ProfileError> {
        if !self.tenant_names.iter().any(|t| t == tenant) {
            return Ok(Handoff::default());
        }
        let (_, t) = self.tenant(tenant)?;
        let h = t.handoff.unwrap_or_default();
        Ok(Handoff {
            pinning: h.pinning.map(|v| v.value).unwrap_or(false),
            overlap: h.overlap.map(|v| v.value).unwrap_or(Dur::days(14)),
        })
    }

    /// Reads and checks a tenant's profile. A name that is no valid tenant name (from a
    /// flag, or a file such as profiles/tenants/ca.yaml) is an error, never a profile.
    pub fn tenant(&self, name: &str) -> Result<(PathBuf, TenantFile), ProfileError> {
        if let Some(r) = self.rejected.iter().find(|r| r.name == name) {
            return Err(r.error());
        }
        check_name("tenant", name).map_err(ProfileError::Flag)?;
        if !self.tenant_names.iter().any(|t| t == name) {
            return Err(ProfileError::UnknownTenant {
                name: name.to_string(),
                known: self.tenant_names.clone(),
            });
        }
        let path = self.ws.tenant_profile(name);
        let t: TenantFile = parse_file(&self.ws, &path)?;
        for e in &t.environments.value {
            if let Err(m) = check_name("environment", &e.value) {
                return Err(ProfileError::at_spanned(&path, e, m));
            }
            if !self.envs.contains_key(&e.value) {
                let known: Vec<&str> = self.envs.keys().map(String::as_str).collect();
                let hint = match did_you_mean(&e.value, &known) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!("known environments: {}", known.join(", ")),
                };
                return Err(ProfileError::at_spanned(
                    &path,
                    e,
                    format!("unknown environment '{}': {hint}", e.value),
                ));
            }
        }
        let listed = t.listed_envs();
        for (env, layer) in &t.overrides {
            if !listed.contains(&env.as_str()) {
                let hint = match did_you_mean(env, &listed) {
                    Some(s) => format!("did you mean '{s}'?"),
                    None => format!(
                        "add '{env}' to environments or remove the override (it lists: {})",
                        listed.join(", ")
                    ),
                };
                return Err(ProfileError::at_spanned(
                    &path,
                    layer,
                    format!(
                        "overrides for '{}', which this tenant does not list under environments: {}",
                        sanitize(env),
                        sanitize(&hint)
                    ),
                ));
            }
        }
        resolve::check_tenant_placeholders(&path, &t)?;
        Ok((path, t))
    }

    fn check_placeholders_config(&self) -> Result<(), ProfileError> {
        if let Some(l) = &self.config.defaults {
            resolve::check_leaf_placeholders(&self.config_path, l)?;
            resolve::check_no_leaf_ca(&self.config_path, l)?;
        }
        if let Some(ca) = &self.config.ca {
            resolve::check_ca_placeholders(&self.config_path, ca)?;
        }
        for (path, f) in self.envs.values() {
            if let Some(l) = &f.leaf {
                resolve::check_leaf_placeholders(path, l)?;
                resolve::check_no_leaf_ca(path, l)?;
            }
            if let Some(ca) = &f.ca {
                resolve::check_ca_placeholders(path, ca)?;
            }
        }
        Ok(())
    }

    /// Shows `path` relative to the workspace root where it lies inside it.
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHADOW: &str = "root:$6$s3cr3tSalt$Hash0fTheRootPassw0rd:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";

    fn parse_err<T: for<'de> serde::Deserialize<'de> + fmt::Debug>(text: &str) -> String {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.yaml");
        std::fs::write(&p, text).unwrap();
        parse_file::<T>(&Workspace::at_new(d.path()), &p)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_file_that_is_no_profile_is_never_quoted() {
        for text in [
            SHADOW.to_string(),
            format!("organization: {SHADOW}"),
            format!("- {SHADOW}"),
            format!("organization: x\nenvironments: 5\n# {SHADOW}\n"),
            "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49s3cr3tSalt\n-----END PRIVATE KEY-----\n".into(),
        ] {
            let e = parse_err::<TenantFile>(&text);
            assert!(!e.contains("s3cr3t") && !e.contains("19000"), "{e}");
            assert!(e.contains("x.yaml"), "{e}");
        }
        let e = parse_err::<TenantFile>(SHADOW);
        assert!(e.contains("this is not a profile key"), "{e}");
        for text in [
            "daemon s3cr3t line\n",
            "organization: x\nenvironments: [prod]\nclip_to_ca: s3cr3t\n",
            "organization: x\nenvironments: [prod]\nkind: s3cr3t:line\n",
            "organization: x\nenvironments: [prod]\nclient: s3cr3t\n",
            "organization: x\nenvironments: [prod]\nkey: 5\n",
        ] {
            let e = parse_err::<TenantFile>(text);
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let e = parse_err::<ConfigFile>(SHADOW);
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn did_you_mean_finds_near_keys() {
        assert_eq!(
            did_you_mean("valdity", &["validity", "key", "kind"]),
            Some("validity")
        );
        assert_eq!(did_you_mean("zzzzzz", &["validity", "key"]), None);
        assert_eq!(
            did_you_mean("production", &["nonprod", "prod"]),
            Some("prod")
        );
        assert_eq!(did_you_mean("acmee", &["acme", "globex"]), Some("acme"));
    }
}
