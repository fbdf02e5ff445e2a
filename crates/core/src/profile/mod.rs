//! YAML profiles: loading with file:line:column errors, layering with provenance, and
//! `{placeholder}` expansion. Writes no files.
//!
//! Layers, lowest first: built-in defaults < `mtlsctl.yaml` (`defaults:`, `ca:`) <
//! the environment's profile (`leaf:`, `ca:`) < the tenant's profile < the tenant's
//! `overrides.<env>` < command-line flags. A list set in a higher layer replaces the
//! lower one whole.

pub mod duration;
pub mod model;
pub mod resolve;
pub mod templates;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};
use thiserror::Error;

use crate::workspace::{Workspace, WsError};
pub use duration::Dur;
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
fn yaml_error(path: &Path, e: &serde_saphyr::Error) -> ProfileError {
    let plain = e.without_snippet().to_string();
    let mut msg = plain.lines().next().unwrap_or("").to_string();
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
    {
        let expected: Vec<&str> = tail
            .split_once("expected one of ")
            .or_else(|| tail.split_once("expected "))
            .map(|(_, l)| l.split(", ").map(|s| s.trim_matches('`')).collect())
            .unwrap_or_default();
        msg = match did_you_mean(field, &expected) {
            Some(s) => format!("unknown key '{field}': did you mean '{s}'?"),
            None => format!(
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
        msg = format!("the key '{key}' is given twice in this mapping: keep one");
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

fn parse_file<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<T, ProfileError> {
    let bytes = crate::workspace::fsutil::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| ProfileError::File {
        path: path.to_path_buf(),
        msg: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    serde_saphyr::from_str::<T>(&text).map_err(|e| yaml_error(path, &e))
}

/// Every profile of a workspace. Tenant files are read when first needed.
pub struct Profiles {
    pub root: PathBuf,
    pub config_path: PathBuf,
    pub config: ConfigFile,
    pub envs: BTreeMap<String, (PathBuf, EnvFile)>,
    tenant_names: Vec<String>,
    ws: Workspace,
}

impl fmt::Debug for Profiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Profiles({})", self.root.display())
    }
}

impl Profiles {
    /// Reads mtlsctl.yaml and every environment profile; checks names and lists tenants.
    pub fn load(ws: &Workspace) -> Result<Self, ProfileError> {
        let config_path = ws.config_file();
        let config: ConfigFile = parse_file(&config_path)?;
        if config.org.value.trim().is_empty() {
            return Err(ProfileError::at_spanned(
                &config_path,
                &config.org,
                "org is empty: give your organisation's name",
            ));
        }
        let mut envs = BTreeMap::new();
        for e in &config.environments.value {
            if let Err(m) = crate::workspace::check_name("environment", &e.value) {
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
            let file: EnvFile = parse_file(&p)?;
            envs.insert(e.value.clone(), (p, file));
        }
        let mut tenant_names = Vec::new();
        if let Ok(rd) = std::fs::read_dir(ws.tenants_dir()) {
            for ent in rd.flatten() {
                let n = ent.file_name().to_string_lossy().into_owned();
                if let Some(stem) = n.strip_suffix(".yaml")
                    && !stem.starts_with('.')
                {
                    tenant_names.push(stem.to_string());
                }
            }
        }
        tenant_names.sort();
        let p = Profiles {
            root: ws.root().to_path_buf(),
            config_path,
            config,
            envs,
            tenant_names,
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

    pub fn check_env(&self, env: &str) -> Result<(), ProfileError> {
        if self.envs.contains_key(env) {
            Ok(())
        } else {
            Err(ProfileError::UnknownEnv {
                name: env.to_string(),
                known: self.env_names(),
            })
        }
    }

    /// Reads and checks a tenant's profile.
    pub fn tenant(&self, name: &str) -> Result<(PathBuf, TenantFile), ProfileError> {
        if !self.tenant_names.iter().any(|t| t == name) {
            return Err(ProfileError::UnknownTenant {
                name: name.to_string(),
                known: self.tenant_names.clone(),
            });
        }
        let path = self.ws.tenant_profile(name);
        let t: TenantFile = parse_file(&path)?;
        for e in &t.environments.value {
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
        for (env, layer) in &t.overrides {
            if !t.environments.value.iter().any(|e| &e.value == env) {
                let listed: Vec<&str> = t
                    .environments
                    .value
                    .iter()
                    .map(|e| e.value.as_str())
                    .collect();
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
                        "overrides for '{env}', which this tenant does not list under environments: {hint}"
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
        }
        if let Some(ca) = &self.config.ca {
            resolve::check_ca_placeholders(&self.config_path, ca)?;
        }
        for (path, f) in self.envs.values() {
            if let Some(l) = &f.leaf {
                resolve::check_leaf_placeholders(path, l)?;
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
