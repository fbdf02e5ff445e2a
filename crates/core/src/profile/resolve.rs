//! Layering: from the files and flags to the effective settings of one certificate,
//! each value with the place it came from.

use std::net::IpAddr;
use std::path::Path;

use serde::Serialize;
use serde_saphyr::Spanned;

use super::duration::Dur;
use super::model::{CaLayer, CaScope, EkuMode, LeafLayer, TenantFile};
use super::{ProfileError, Profiles};
use crate::pki::Kind;
use crate::pki::cert::{CaRequest, LeafRequest, Sans, Window};
use crate::pki::dn::{Subject, escape_value};
use crate::pki::hierarchy::{NameConstraintSpec, SubCaRequest};
use crate::pki::keys::KeyAlgorithm;
use crate::pki::pkcs12::PfxCompat;

/// Placeholders a leaf template may use.
pub const LEAF_PLACEHOLDERS: &[&str] = &["org", "tenant", "tenant_org", "env", "kind"];
/// Placeholders a CA template may use.
pub const CA_PLACEHOLDERS: &[&str] = &["org", "env"];

/// Built-in defaults, the lowest layer.
pub mod defaults {
    pub const KEY: &str = "ecdsa-p256";
    pub const VALIDITY_DAYS: i64 = 365;
    pub const RENEW_BEFORE_DAYS: i64 = 30;
    pub const CLIENT_SUBJECT: &str = "CN={tenant}-{env}-client,OU={tenant},O={org}";
    pub const SERVER_SUBJECT: &str = "CN={tenant}-{env}-server,OU={tenant},O={org}";
    pub const FRIENDLY_NAME: &str = "{tenant}-{env}-{kind}";
    pub const CA_SUBJECT: &str = "CN={org} {env} mTLS CA,O={org}";
    pub const CA_KEY: &str = "ecdsa-p256";
    pub const CA_VALIDITY_YEARS: i64 = 10;
    pub const CA_PATH_LENGTH: u8 = 0;
    pub const CRL_VALIDITY_DAYS: i64 = 7;
    pub const CA_TIERS: u8 = 2;
    pub const ROOT_VALIDITY_YEARS: i64 = 20;
    pub const ROOT_CRL_VALIDITY_DAYS: i64 = 365;
    pub const ISSUING_VALIDITY_YEARS: i64 = 5;
    /// Appended to the CA subject's CN for an issuing CA.
    pub const ISSUING_CN_SUFFIX: &str = " Issuing";
}

/// Where an effective value came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    Default,
    File {
        file: String,
        line: u64,
        column: u64,
    },
    Flag {
        flag: String,
    },
    /// Computed from other settings; `why` says from which.
    Derived {
        why: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Source::Flag { flag } => write!(f, "flag {flag}"),
            Source::Derived { why } => f.write_str(why),
        }
    }
}

/// An effective value and its source.
#[derive(Clone, Debug, Serialize)]
pub struct Val<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Val<T> {
    fn default(value: T) -> Self {
        Val {
            value,
            source: Source::Default,
        }
    }
}

/// Settings given on the command line, the highest layer.
#[derive(Clone, Debug, Default)]
pub struct LeafFlags {
    pub kind: Option<Kind>,
    pub key: Option<KeyAlgorithm>,
    pub validity: Option<Dur>,
    pub renew_before: Option<Dur>,
    pub dns: Vec<String>,
    pub ip: Vec<IpAddr>,
    pub pfx_compat: Option<PfxCompat>,
    /// `--not-before` / `--not-after`: explicit bounds, as absolute times.
    pub not_before: Option<time::OffsetDateTime>,
    pub not_after: Option<time::OffsetDateTime>,
    /// `--fixture`: a test fixture, where the environment allows them.
    pub fixture: bool,
}

/// Whether an environment allows test fixtures, and which setting says so.
#[derive(Clone, Debug, Serialize)]
pub struct FixturePolicy {
    pub allowed: bool,
    /// The setting that decides, as a person would look for it ("fixtures: false in
    /// profiles/environments/prod.yaml:3:11", or "default").
    pub because: String,
    #[serde(skip)]
    source: Source,
}

/// The effective settings of one tenant's certificate in one environment.
#[derive(Clone, Debug, Serialize)]
pub struct Resolved {
    pub tenant: String,
    pub env: String,
    pub org: String,
    pub tenant_org: String,
    pub kind: Val<Kind>,
    pub key: Val<KeyAlgorithm>,
    pub validity: Val<Dur>,
    pub renew_before: Val<Dur>,
    pub clip_to_ca: Val<bool>,
    pub dual_eku: Val<bool>,
    pub subject: Val<String>,
    pub san_dns: Val<Vec<String>>,
    pub san_ip: Val<Vec<IpAddr>>,
    pub san_email: Val<Vec<String>>,
    pub san_uri: Val<Vec<String>>,
    pub pfx_enabled: Val<bool>,
    pub pfx_compat: Val<PfxCompat>,
    pub pfx_friendly_name: Val<String>,
    /// Explicit bounds given by flag (none: now minus the clock skew, plus `validity`).
    #[serde(skip)]
    pub window: Window,
    /// A test fixture (`--fixture`): recorded, never current.
    #[serde(skip)]
    pub fixture: bool,
    /// A staged successor (`renew --stage`, `handoff.pinning`): recorded with status
    /// staged, supersedes nothing until `activate`.
    #[serde(skip)]
    pub staged: bool,
    #[serde(skip)]
    subject_parsed: Subject,
}

/// The effective settings of an environment's CA.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedCa {
    pub env: String,
    pub subject: Val<String>,
    pub key: Val<KeyAlgorithm>,
    pub validity: Val<Dur>,
    pub path_length: Val<u8>,
    pub crl_validity: Val<Dur>,
    /// Revocation pointer templates ({env}, {tenant}, {ca}); empty: not set.
    pub crl_url: Val<String>,
    pub ocsp_url: Val<String>,
    pub issuer_url: Val<String>,
    /// nextUpdate of an OCSP response, from its thisUpdate.
    pub ocsp_validity: Val<Dur>,
    pub external: Val<bool>,
    /// 2: root + issuing CAs; 1: the root signs leaves. Applies when the CA is made.
    pub tiers: Val<u8>,
    pub scope: Val<CaScope>,
    /// The tenant whose own CA this is (scope tenant), else None.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Of a two-tier root (a one-tier root uses `validity` and `crl_validity`).
    pub root_validity: Val<Dur>,
    pub root_crl_validity: Val<Dur>,
    pub issuing_validity: Val<Dur>,
    pub issuing_eku: Val<EkuMode>,
    pub issuing_name_constraints: Val<NameConstraintSpec>,
    #[serde(skip)]
    subject_parsed: Subject,
}

impl Resolved {
    pub fn leaf_request(&self) -> LeafRequest {
        LeafRequest {
            kind: self.kind.value,
            both_ekus: self.dual_eku.value,
            subject: self.subject_parsed.clone(),
            sans: Sans {
                dns: self.san_dns.value.clone(),
                ip: self.san_ip.value.clone(),
                email: self.san_email.value.clone(),
                uri: self.san_uri.value.clone(),
            },
            validity: self.validity.value.to_time(),
            clip_to_ca: self.clip_to_ca.value,
        }
    }

    /// (setting, value, source) rows for `profile show`.
    pub fn rows(&self) -> Vec<(&'static str, String, String)> {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let ips: Vec<String> = self.san_ip.value.iter().map(|i| i.to_string()).collect();
        vec![
            (
                "kind",
                self.kind.value.to_string(),
                self.kind.source.to_string(),
            ),
            (
                "key",
                self.key.value.to_string(),
                self.key.source.to_string(),
            ),
            (
                "validity",
                self.validity.value.to_string(),
                self.validity.source.to_string(),
            ),
            (
                "renew_before",
                self.renew_before.value.to_string(),
                self.renew_before.source.to_string(),
            ),
            (
                "clip_to_ca",
                self.clip_to_ca.value.to_string(),
                self.clip_to_ca.source.to_string(),
            ),
            (
                "dual_eku",
                self.dual_eku.value.to_string(),
                self.dual_eku.source.to_string(),
            ),
            (
                "subject",
                self.subject.value.clone(),
                self.subject.source.to_string(),
            ),
            (
                "san.dns",
                list(&self.san_dns.value),
                self.san_dns.source.to_string(),
            ),
            ("san.ip", list(&ips), self.san_ip.source.to_string()),
            (
                "san.email",
                list(&self.san_email.value),
                self.san_email.source.to_string(),
            ),
            (
                "san.uri",
                list(&self.san_uri.value),
                self.san_uri.source.to_string(),
            ),
            (
                "pfx.enabled",
                self.pfx_enabled.value.to_string(),
                self.pfx_enabled.source.to_string(),
            ),
            (
                "pfx.compat",
                self.pfx_compat.value.as_str().to_string(),
                self.pfx_compat.source.to_string(),
            ),
            (
                "pfx.friendly_name",
                self.pfx_friendly_name.value.clone(),
                self.pfx_friendly_name.source.to_string(),
            ),
        ]
    }
}

impl ResolvedCa {
    /// The root: the only CA of a one-tier environment, or the top of two tiers.
    pub fn ca_request(&self) -> CaRequest {
        let two = self.tiers.value >= 2;
        CaRequest {
            subject: self.subject_parsed.clone(),
            validity: if two {
                self.root_validity.value.to_time()
            } else {
                self.validity.value.to_time()
            },
            path_length: self.path_length.value,
        }
    }

    /// The CRL validity of the root: its own in two tiers, the leaves' CRL in one.
    pub fn root_crl_validity(&self) -> time::Duration {
        if self.tiers.value >= 2 {
            self.root_crl_validity.value.to_time()
        } else {
            self.crl_validity.value.to_time()
        }
    }

    /// An issuing CA for leaves of `kind`, its subject the root's with " Issuing" and the
    /// kind (and the generation from the second on) added to the CN.
    pub fn issuing_request(&self, kind: Kind, generation: u32) -> SubCaRequest {
        let mut suffix = format!("{} {}", defaults::ISSUING_CN_SUFFIX, kind_word(kind));
        if generation > 1 {
            suffix.push_str(&format!(" G{generation}"));
        }
        SubCaRequest {
            subject: self.subject_parsed.with_cn_suffix(&suffix),
            validity: self.issuing_validity.value.to_time(),
            path_length: 0,
            eku: match self.issuing_eku.value {
                EkuMode::Auto => Some(kind),
                EkuMode::None => None,
            },
            name_constraints: self.issuing_name_constraints.value.clone(),
        }
    }

    /// The root of generation `generation` (a rotation's new root is generation 2, ...):
    /// the CN gets " G<n>" from the second on, so old and new roots differ by name.
    pub fn root_request(&self, generation: u32) -> CaRequest {
        let mut r = self.ca_request();
        if generation > 1 {
            r.subject = r.subject.with_cn_suffix(&format!(" G{generation}"));
        }
        r
    }

    pub fn rows(&self) -> Vec<(&'static str, String, String)> {
        vec![
            (
                "ca.subject",
                self.subject.value.clone(),
                self.subject.source.to_string(),
            ),
            (
                "ca.key",
                self.key.value.to_string(),
                self.key.source.to_string(),
            ),
            (
                "ca.validity",
                self.validity.value.to_string(),
                self.validity.source.to_string(),
            ),
            (
                "ca.path_length",
                self.path_length.value.to_string(),
                self.path_length.source.to_string(),
            ),
            (
                "ca.crl_validity",
                self.crl_validity.value.to_string(),
                self.crl_validity.source.to_string(),
            ),
            (
                "ca.crl_url",
                or_dash(&self.crl_url.value),
                self.crl_url.source.to_string(),
            ),
            (
                "ca.ocsp_url",
                or_dash(&self.ocsp_url.value),
                self.ocsp_url.source.to_string(),
            ),
            (
                "ca.issuer_url",
                or_dash(&self.issuer_url.value),
                self.issuer_url.source.to_string(),
            ),
            (
                "ca.ocsp_validity",
                self.ocsp_validity.value.to_string(),
                self.ocsp_validity.source.to_string(),
            ),
            (
                "ca.external",
                self.external.value.to_string(),
                self.external.source.to_string(),
            ),
            (
                "ca.tiers",
                self.tiers.value.to_string(),
                self.tiers.source.to_string(),
            ),
            (
                "ca.scope",
                self.scope.value.as_str().to_string(),
                self.scope.source.to_string(),
            ),
            (
                "ca.root.validity",
                self.root_validity.value.to_string(),
                self.root_validity.source.to_string(),
            ),
            (
                "ca.root.crl_validity",
                self.root_crl_validity.value.to_string(),
                self.root_crl_validity.source.to_string(),
            ),
            (
                "ca.issuing.validity",
                self.issuing_validity.value.to_string(),
                self.issuing_validity.source.to_string(),
            ),
            (
                "ca.issuing.eku",
                match self.issuing_eku.value {
                    EkuMode::Auto => "auto".to_string(),
                    EkuMode::None => "none".to_string(),
                },
                self.issuing_eku.source.to_string(),
            ),
            (
                "ca.issuing.name_constraints",
                if self.issuing_name_constraints.value.is_empty() {
                    "-".to_string()
                } else {
                    serde_json::to_string(&self.issuing_name_constraints.value).unwrap_or_default()
                },
                self.issuing_name_constraints.source.to_string(),
            ),
        ]
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// The placeholders a revocation URL template may use.
pub const URL_PLACEHOLDERS: &str = "{env}, {tenant}, {ca}";

impl ResolvedCa {
    /// The revocation pointers the CA with serial `ca_serial` (lowercase hex) writes into
    /// what it signs, in the set of `tenant` (None: the environment's own set, where
    /// {tenant} has no value). `None` in the error: the template is fine.
    pub fn revocation_urls(
        &self,
        p: &Profiles,
        tenant: Option<&str>,
        ca_serial: &str,
    ) -> Result<crate::pki::pointers::RevocationUrls, ProfileError> {
        let one = |key: &str, v: &Val<String>| -> Result<Option<String>, ProfileError> {
            if v.value.is_empty() {
                return Ok(None);
            }
            if tenant.is_none() && v.value.contains("{tenant}") {
                return Err(err_at(
                    p,
                    &v.source,
                    format!(
                        "{key} uses {{tenant}}, but the CAs of environment {} are shared by every tenant (ca.scope: env): remove {{tenant}} or set ca.scope: tenant",
                        self.env
                    ),
                ));
            }
            let vars = [
                ("env", self.env.as_str()),
                ("tenant", tenant.unwrap_or("")),
                ("ca", ca_serial),
            ];
            let url = expand(&v.value, &vars, false).map_err(|m| err_at(p, &v.source, m))?;
            crate::pki::pointers::check_url(key, &url)
                .map_err(|e| err_at(p, &v.source, e.to_string()))?;
            Ok(Some(url))
        };
        Ok(crate::pki::pointers::RevocationUrls {
            crl: one("ca.crl_url", &self.crl_url)?,
            ocsp: one("ca.ocsp_url", &self.ocsp_url)?,
            issuer: one("ca.issuer_url", &self.issuer_url)?,
        })
    }
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Client => "Client",
        Kind::Server => "Server",
    }
}

/// Expands `{name}` placeholders. `escape_dn` escapes values for a DN string.
pub fn expand(template: &str, vars: &[(&str, &str)], escape_dn: bool) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err(format!(
                "unclosed '{{' in '{template}': write placeholders as {{name}}"
            ));
        };
        let name = &after[..j];
        match vars.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(&if escape_dn {
                escape_value(v)
            } else {
                v.to_string()
            }),
            None => {
                let names: Vec<&str> = vars.iter().map(|(n, _)| *n).collect();
                let hint = match super::did_you_mean(name, &names) {
                    Some(s) => format!("did you mean {{{s}}}?"),
                    None => format!(
                        "known placeholders: {}",
                        names
                            .iter()
                            .map(|n| format!("{{{n}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                return Err(format!("unknown placeholder {{{name}}}: {hint}"));
            }
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_template(path: &Path, s: &Spanned<String>, allowed: &[&str]) -> Result<(), ProfileError> {
    let vars: Vec<(&str, &str)> = allowed.iter().map(|n| (*n, "x")).collect();
    expand(&s.value, &vars, false)
        .map(|_| ())
        .map_err(|m| ProfileError::at_spanned(path, s, m))
}

fn check_list(path: &Path, l: &super::model::List) -> Result<(), ProfileError> {
    if let Some(l) = l {
        for s in &l.value {
            check_template(path, s, LEAF_PLACEHOLDERS)?;
        }
    }
    Ok(())
}

pub(super) fn check_leaf_placeholders(path: &Path, l: &LeafLayer) -> Result<(), ProfileError> {
    for k in [&l.client, &l.server].into_iter().flatten() {
        if let Some(s) = &k.subject {
            check_template(path, s, LEAF_PLACEHOLDERS)?;
        }
        if let Some(san) = &k.san {
            check_list(path, &san.dns)?;
            check_list(path, &san.ip)?;
            check_list(path, &san.email)?;
            check_list(path, &san.uri)?;
        }
    }
    if let Some(p) = &l.pfx
        && let Some(n) = &p.friendly_name
    {
        check_template(path, n, LEAF_PLACEHOLDERS)?;
    }
    Ok(())
}

/// `ca:` inside a `leaf:` or `defaults:` layer: it belongs in a tenant's overrides.
pub(super) fn check_no_leaf_ca(path: &Path, l: &LeafLayer) -> Result<(), ProfileError> {
    if let Some(c) = &l.ca
        && let Some(s) = &c.scope
    {
        return Err(ProfileError::at_spanned(
            path,
            s,
            "a tenant's own CA scope goes under overrides.<env>.ca in the tenant's profile; an environment sets ca.scope under its top-level ca:",
        ));
    }
    Ok(())
}

pub(super) fn check_ca_placeholders(path: &Path, ca: &CaLayer) -> Result<(), ProfileError> {
    if let Some(s) = &ca.subject {
        check_template(path, s, CA_PLACEHOLDERS)?;
    }
    Ok(())
}

pub(super) fn check_tenant_placeholders(path: &Path, t: &TenantFile) -> Result<(), ProfileError> {
    check_leaf_placeholders(path, &t.base_layer())?;
    for l in t.overrides.values() {
        check_leaf_placeholders(path, &l.value)?;
    }
    Ok(())
}

/// One layer of leaf settings and the file it came from.
struct Layer<'a> {
    path: &'a Path,
    leaf: &'a LeafLayer,
}

fn src<T>(p: &Profiles, path: &Path, s: &Spanned<T>) -> Source {
    Source::File {
        file: p.rel(path),
        line: s.referenced.line(),
        column: s.referenced.column(),
    }
}

fn pick<T: Clone>(
    p: &Profiles,
    layers: &[Layer<'_>],
    get: impl Fn(&LeafLayer) -> Option<&Spanned<T>>,
    default: T,
) -> Val<T> {
    let mut v = Val::default(default);
    for l in layers {
        if let Some(s) = get(l.leaf) {
            v = Val {
                value: s.value.clone(),
                source: src(p, l.path, s),
            };
        }
    }
    v
}

fn pick_list(
    p: &Profiles,
    layers: &[Layer<'_>],
    kind: Kind,
    get: impl Fn(&super::model::SanLayer) -> &super::model::List,
) -> Val<Vec<Spanned<String>>> {
    pick(
        p,
        layers,
        |l| {
            let k = match kind {
                Kind::Client => l.client.as_ref(),
                Kind::Server => l.server.as_ref(),
            }?;
            get(k.san.as_ref()?).as_ref()
        },
        Vec::new(),
    )
}

fn flag<T>(v: &mut Val<T>, value: Option<T>, name: &str) {
    if let Some(value) = value {
        *v = Val {
            value,
            source: Source::Flag {
                flag: name.to_string(),
            },
        };
    }
}

/// A renewal window as long as the lifetime would make a certificate due at once. A
/// profile's window that does not fit a shorter validity (`issue --validity 20d` under
/// the default 30d) gives way to a third of the lifetime, renewal at two thirds as
/// step-ca does; a window asked for by flag must fit.
fn fit_renew_before(
    p: &Profiles,
    rb: &mut Val<Dur>,
    validity: &Val<Dur>,
) -> Result<(), ProfileError> {
    if rb.value < validity.value {
        return Ok(());
    }
    if matches!(rb.source, Source::Flag { .. }) {
        return Err(err_at(
            p,
            &rb.source,
            format!(
                "--renew-before ({}) must be shorter than the validity ({})",
                rb.value, validity.value
            ),
        ));
    }
    *rb = Val {
        value: Dur::from_secs(validity.value.secs() / 3),
        source: Source::Derived {
            why: format!(
                "a third of validity {} (renew_before {} from {} is not shorter)",
                validity.value, rb.value, rb.source
            ),
        },
    };
    Ok(())
}

/// A tenant resolved for an environment must list it under `environments:`.
fn check_lists_env(
    tenant: &str,
    tpath: &Path,
    t: &TenantFile,
    env: &str,
) -> Result<(), ProfileError> {
    let listed = t.listed_envs();
    if !listed.contains(&env) {
        return Err(ProfileError::at_spanned(
            tpath,
            &t.environments,
            format!(
                "tenant '{tenant}' does not list environment '{env}' (it lists: {}); add '{env}' to environments here",
                listed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The four SAN lists of a resolved leaf.
struct SanVals {
    dns: Val<Vec<String>>,
    ip: Val<Vec<IpAddr>>,
    email: Val<Vec<String>>,
    uri: Val<Vec<String>>,
}

/// The SAN limits of [`super::limits`], each error at the place its list came from.
fn check_san_limits(
    p: &Profiles,
    dns: &Val<Vec<String>>,
    ip: &Val<Vec<IpAddr>>,
    email: &Val<Vec<String>>,
    uri: &Val<Vec<String>>,
) -> Result<(), ProfileError> {
    use super::limits;
    for (key, v, max) in [
        ("san.dns", dns, limits::MAX_DNS_LEN),
        ("san.email", email, limits::MAX_EMAIL_LEN),
        ("san.uri", uri, limits::MAX_URI_LEN),
    ] {
        limits::san_lengths(key, &v.value, max).map_err(|m| err_at(p, &v.source, m))?;
    }
    let counts = [
        ("san.dns", dns.value.len(), &dns.source),
        ("san.ip", ip.value.len(), &ip.source),
        ("san.email", email.value.len(), &email.source),
        ("san.uri", uri.value.len(), &uri.source),
    ];
    let plain: Vec<(&str, usize)> = counts.iter().map(|(k, n, _)| (*k, *n)).collect();
    limits::san_count(&plain).map_err(|m| {
        // named at the longest list, the likeliest to cut
        let (_, _, source) = counts
            .iter()
            .max_by_key(|(_, n, _)| *n)
            .expect("four lists");
        err_at(p, source, m)
    })
}

/// An error at the source of a value (a file place, or the flag).
fn err_at(p: &Profiles, source: &Source, msg: String) -> ProfileError {
    match source {
        Source::File { file, line, column } => ProfileError::At {
            path: p.root.join(file),
            line: *line,
            col: *column,
            msg,
        },
        Source::Flag { flag } => ProfileError::Flag(format!("{flag}: {msg}")),
        Source::Default => ProfileError::Flag(format!("built-in default: {msg}")),
        Source::Derived { why } => ProfileError::Flag(format!("{why}: {msg}")),
    }
}

impl Profiles {
    /// The effective CA settings of `env`.
    pub fn resolve_ca(&self, env: &str) -> Result<ResolvedCa, ProfileError> {
        self.check_env(env)?;
        let (env_path, env_file) = &self.envs[env];
        let mut layers: Vec<(&Path, &CaLayer)> = Vec::new();
        if let Some(c) = &self.config.ca {
            layers.push((&self.config_path, c));
        }
        if let Some(c) = &env_file.ca {
            layers.push((env_path, c));
        }
        fn pick_ca<T: Clone>(
            p: &Profiles,
            layers: &[(&Path, &CaLayer)],
            get: impl Fn(&CaLayer) -> Option<&Spanned<T>>,
            default: T,
        ) -> Val<T> {
            let mut v = Val::default(default);
            for (path, l) in layers {
                if let Some(s) = get(l) {
                    v = Val {
                        value: s.value.clone(),
                        source: src(p, path, s),
                    };
                }
            }
            v
        }
        let subject_t = pick_ca(
            self,
            &layers,
            |l| l.subject.as_ref(),
            defaults::CA_SUBJECT.to_string(),
        );
        let vars = [("org", self.org()), ("env", env)];
        let subject_s = expand(&subject_t.value, &vars, true)
            .map_err(|m| err_at(self, &subject_t.source, m))?;
        let subject_parsed =
            Subject::parse(&subject_s).map_err(|m| err_at(self, &subject_t.source, m))?;
        super::limits::subject(&subject_parsed).map_err(|m| err_at(self, &subject_t.source, m))?;
        let validity = pick_ca(
            self,
            &layers,
            |l| l.validity.as_ref(),
            Dur::from_secs(defaults::CA_VALIDITY_YEARS * 365 * 86_400),
        );
        if validity.value.secs() < 86_400 {
            return Err(err_at(
                self,
                &validity.source,
                "a CA valid for less than a day cannot issue anything useful".into(),
            ));
        }
        let crl_validity = pick_ca(
            self,
            &layers,
            |l| l.crl_validity.as_ref(),
            Dur::days(defaults::CRL_VALIDITY_DAYS),
        );
        if crl_validity.value.secs() < 3600 {
            return Err(err_at(
                self,
                &crl_validity.source,
                "crl_validity must be at least 1h".into(),
            ));
        }
        let mut urls = Vec::new();
        for (key, get) in [
            (
                "ca.crl_url",
                (|l: &CaLayer| l.crl_url.as_ref()) as fn(&CaLayer) -> Option<&Spanned<String>>,
            ),
            ("ca.ocsp_url", |l: &CaLayer| l.ocsp_url.as_ref()),
            ("ca.issuer_url", |l: &CaLayer| l.issuer_url.as_ref()),
        ] {
            let v = pick_ca(self, &layers, get, String::new());
            if !v.value.is_empty() {
                // every placeholder known, and the URL sound with sample values
                let sample = [("env", env), ("tenant", "t"), ("ca", "0a")];
                let url = expand(&v.value, &sample, false)
                    .map_err(|m| err_at(self, &v.source, format!("{key}: {m}")))?;
                crate::pki::pointers::check_url(key, &url)
                    .map_err(|e| err_at(self, &v.source, e.to_string()))?;
            }
            urls.push(v);
        }
        let issuer_url = urls.pop().expect("three");
        let ocsp_url = urls.pop().expect("three");
        let crl_url = urls.pop().expect("three");
        let ocsp_validity = pick_ca(
            self,
            &layers,
            |l| l.ocsp_validity.as_ref(),
            Dur::from_secs(3600),
        );
        if !(60..=7 * 86_400).contains(&ocsp_validity.value.secs()) {
            return Err(err_at(
                self,
                &ocsp_validity.source,
                "ca.ocsp_validity must be between 1m and 7d (gateways cache responses until nextUpdate)".into(),
            ));
        }
        let tiers = pick_ca(self, &layers, |l| l.tiers.as_ref(), defaults::CA_TIERS);
        if !(1..=2).contains(&tiers.value) {
            return Err(err_at(
                self,
                &tiers.source,
                format!(
                    "ca.tiers is {}: use 2 (a root and issuing CAs) or 1 (the root signs leaves)",
                    tiers.value
                ),
            ));
        }
        let two = tiers.value == 2;
        let mut path_length = pick_ca(
            self,
            &layers,
            |l| l.path_length.as_ref(),
            defaults::CA_PATH_LENGTH,
        );
        if two {
            if path_length.source == Source::Default {
                path_length = Val {
                    value: 1,
                    source: Source::Derived {
                        why: "ca.tiers 2: the root certifies issuing CAs".into(),
                    },
                };
            } else if path_length.value < 1 {
                // an older mtlsctl.yaml says 0 for its one-tier CAs; a new root of two
                // tiers needs room for its issuing CA
                path_length = Val {
                    value: 1,
                    source: Source::Derived {
                        why: format!(
                            "ca.tiers 2 needs a root path length of at least 1 ({} says 0)",
                            path_length.source
                        ),
                    },
                };
            }
        }
        let mut root_validity = pick_ca(
            self,
            &layers,
            |l| l.root.as_ref().and_then(|r| r.validity.as_ref()),
            Dur::from_secs(defaults::ROOT_VALIDITY_YEARS * 365 * 86_400),
        );
        if root_validity.source == Source::Default && validity.source != Source::Default {
            root_validity = Val {
                value: validity.value,
                source: validity.source.clone(),
            };
        }
        let root_crl_validity = pick_ca(
            self,
            &layers,
            |l| l.root.as_ref().and_then(|r| r.crl_validity.as_ref()),
            Dur::days(defaults::ROOT_CRL_VALIDITY_DAYS),
        );
        let issuing_validity = pick_ca(
            self,
            &layers,
            |l| l.issuing.as_ref().and_then(|r| r.validity.as_ref()),
            Dur::from_secs(defaults::ISSUING_VALIDITY_YEARS * 365 * 86_400),
        );
        for v in [&root_validity, &issuing_validity] {
            if v.value.secs() < 86_400 {
                return Err(err_at(
                    self,
                    &v.source,
                    "a CA valid for less than a day cannot issue anything useful".into(),
                ));
            }
        }
        if root_crl_validity.value.secs() < 3600 {
            return Err(err_at(
                self,
                &root_crl_validity.source,
                "ca.root.crl_validity must be at least 1h".into(),
            ));
        }
        let issuing_name_constraints = pick_ca(
            self,
            &layers,
            |l| l.issuing.as_ref().and_then(|r| r.name_constraints.as_ref()),
            NameConstraintSpec::default(),
        );
        if let Err(e) = issuing_name_constraints.value.extension() {
            return Err(err_at(
                self,
                &issuing_name_constraints.source,
                e.to_string(),
            ));
        }
        Ok(ResolvedCa {
            env: env.to_string(),
            tiers,
            scope: pick_ca(self, &layers, |l| l.scope.as_ref(), CaScope::Env),
            tenant: None,
            root_validity,
            root_crl_validity,
            issuing_validity,
            issuing_eku: pick_ca(
                self,
                &layers,
                |l| l.issuing.as_ref().and_then(|r| r.eku.as_ref()),
                EkuMode::Auto,
            ),
            issuing_name_constraints,
            subject: Val {
                value: subject_s,
                source: subject_t.source,
            },
            key: pick_ca(
                self,
                &layers,
                |l| l.key.as_ref(),
                defaults::CA_KEY.parse().expect("default key"),
            ),
            validity,
            path_length,
            crl_validity,
            crl_url,
            ocsp_url,
            issuer_url,
            ocsp_validity,
            external: pick_ca(self, &layers, |l| l.external.as_ref(), false),
            subject_parsed,
        })
    }

    /// The CA settings that apply to `tenant`'s certificates in `env`: the
    /// environment's, with the tenant's `overrides.<env>.ca.scope` and `.external` on
    /// top (`external: true` makes the environment's CA someone else's for this tenant). With scope
    /// `tenant` the result names the tenant and its subject's CN ends in " (<tenant>)".
    pub fn resolve_ca_for(
        &self,
        env: &str,
        tenant: Option<&str>,
    ) -> Result<ResolvedCa, ProfileError> {
        let mut ca = self.resolve_ca(env)?;
        let Some(t) = tenant else {
            return Ok(ca);
        };
        let (tpath, tf) = self.tenant(t)?;
        let layer = tf.overrides.get(env).and_then(|o| o.value.ca.as_ref());
        if let Some(sc) = layer.and_then(|c| c.scope.as_ref()) {
            ca.scope = Val {
                value: sc.value,
                source: src(self, &tpath, sc),
            };
        }
        if let Some(ex) = layer.and_then(|c| c.external.as_ref()) {
            ca.external = Val {
                value: ex.value,
                source: src(self, &tpath, ex),
            };
        }
        if ca.scope.value == CaScope::Tenant {
            ca.subject_parsed = ca.subject_parsed.with_cn_suffix(&format!(" ({t})"));
            ca.subject.value = ca.subject_parsed.to_string();
            ca.tenant = Some(t.to_string());
        }
        Ok(ca)
    }

    /// The effective settings of `tenant`'s certificate in `env`.
    pub fn resolve(
        &self,
        tenant: &str,
        env: &str,
        flags: &LeafFlags,
    ) -> Result<Resolved, ProfileError> {
        let (tpath, t) = self.tenant(tenant)?;
        self.resolve_parsed(tenant, &tpath, &t, env, flags)
    }

    /// [`Profiles::resolve`] with no flag but the kind (the profile's own when `None`).
    pub fn resolve_kind(
        &self,
        tenant: &str,
        env: &str,
        kind: Option<Kind>,
    ) -> Result<Resolved, ProfileError> {
        self.resolve(
            tenant,
            env,
            &LeafFlags {
                kind,
                ..LeafFlags::default()
            },
        )
    }

    /// [`Profiles::resolve`] for a tenant file already parsed by [`Profiles::tenant`]
    /// (to resolve several environments of one tenant without parsing it again).
    pub fn resolve_parsed(
        &self,
        tenant: &str,
        tpath: &Path,
        t: &TenantFile,
        env: &str,
        flags: &LeafFlags,
    ) -> Result<Resolved, ProfileError> {
        self.check_env(env)?;
        check_lists_env(tenant, tpath, t, env)?;
        let base = t.base_layer();
        let layers = self.leaf_layers(tpath, t, &base, env);

        let mut kind = pick(self, &layers, |l| l.kind.as_ref(), Kind::Client);
        flag(&mut kind, flags.kind, "--kind");
        let mut key = pick(
            self,
            &layers,
            |l| l.key.as_ref(),
            defaults::KEY.parse().expect("default key"),
        );
        flag(&mut key, flags.key, "--key");
        let mut validity = pick(
            self,
            &layers,
            |l| l.validity.as_ref(),
            Dur::days(defaults::VALIDITY_DAYS),
        );
        flag(&mut validity, flags.validity, "--validity");
        let window = Window {
            not_before: flags.not_before,
            not_after: flags.not_after,
        };
        if let Some(life) = self.explicit_life(&window, &validity, env, flags.fixture)? {
            validity = life;
        } else if validity.value.secs() < 60 {
            return Err(err_at(
                self,
                &validity.source,
                "validity must be at least 1m".into(),
            ));
        }
        let mut renew_before = pick(
            self,
            &layers,
            |l| l.renew_before.as_ref(),
            Dur::days(defaults::RENEW_BEFORE_DAYS),
        );
        flag(&mut renew_before, flags.renew_before, "--renew-before");
        fit_renew_before(self, &mut renew_before, &validity)?;
        let k = kind.value;
        let tenant_org = t
            .organization
            .as_ref()
            .map(|o| o.value.clone())
            .unwrap_or_else(|| tenant.to_string());
        let kind_s = k.as_str();
        let vars = [
            ("org", self.org()),
            ("tenant", tenant),
            ("tenant_org", tenant_org.as_str()),
            ("env", env),
            ("kind", kind_s),
        ];
        let (subject_t, subject_s, subject_parsed) = self.resolve_subject(&layers, k, &vars)?;

        let sans = self.resolve_sans(&layers, k, &vars, flags)?;

        let pfx_enabled = pick(self, &layers, |l| l.pfx.as_ref()?.enabled.as_ref(), true);
        let mut pfx_compat = pick(
            self,
            &layers,
            |l| l.pfx.as_ref()?.compat.as_ref(),
            PfxCompat::Modern,
        );
        flag(&mut pfx_compat, flags.pfx_compat, "--pfx-target");
        let pfx_friendly_name = self.resolve_friendly_name(&layers, &vars)?;

        Ok(Resolved {
            tenant: tenant.to_string(),
            env: env.to_string(),
            org: self.org().to_string(),
            tenant_org: tenant_org.clone(),
            kind,
            key,
            validity,
            renew_before,
            clip_to_ca: pick(self, &layers, |l| l.clip_to_ca.as_ref(), false),
            dual_eku: pick(self, &layers, |l| l.dual_eku.as_ref(), false),
            subject: Val {
                value: subject_s,
                source: subject_t.source,
            },
            san_dns: sans.dns,
            san_ip: sans.ip,
            san_email: sans.email,
            san_uri: sans.uri,
            pfx_enabled,
            pfx_compat,
            pfx_friendly_name,
            window,
            fixture: flags.fixture,
            staged: false,
            subject_parsed,
        })
    }

    /// Whether `env` allows test fixtures: its `fixtures:` when set, else not when it
    /// says `production: true`, else yes.
    pub fn fixture_policy(&self, env: &str) -> Result<FixturePolicy, ProfileError> {
        self.check_env(env)?;
        let (path, f) = &self.envs[env];
        let at = |key: &str, s: &Spanned<bool>| {
            let source = src(self, path, s);
            (format!("{key}: {} in {source}", s.value), source)
        };
        Ok(match (&f.fixtures, &f.production) {
            (Some(s), _) => {
                let (because, source) = at("fixtures", s);
                FixturePolicy {
                    allowed: s.value,
                    because,
                    source,
                }
            }
            (None, Some(s)) if s.value => {
                let (because, source) = at("production", s);
                FixturePolicy {
                    allowed: false,
                    because,
                    source,
                }
            }
            _ => FixturePolicy {
                allowed: true,
                because: "default (no production: true, no fixtures: false)".into(),
                source: Source::Default,
            },
        })
    }

    /// Refuses a test fixture where `env` forbids them, naming the setting.
    pub fn check_fixtures_allowed(&self, env: &str) -> Result<(), ProfileError> {
        let p = self.fixture_policy(env)?;
        if p.allowed {
            return Ok(());
        }
        let fix = match &p.source {
            Source::File { file, .. } if p.because.starts_with("production") => {
                format!("set fixtures: true in {file} to allow them")
            }
            _ => "set fixtures: true there to allow them".to_string(),
        };
        Err(err_at(
            self,
            &p.source,
            format!(
                "environment '{env}' forbids test fixtures ({}): {fix}",
                p.because
            ),
        ))
    }

    /// With explicit bounds (`--not-before/--not-after`), the certificate's life as its
    /// validity: any length down to 1s, its renewal window fitted to it as for a short
    /// validity. A window already over is only for a test fixture. None without bounds.
    fn explicit_life(
        &self,
        w: &Window,
        validity: &Val<Dur>,
        env: &str,
        fixture: bool,
    ) -> Result<Option<Val<Dur>>, ProfileError> {
        if fixture {
            self.check_fixtures_allowed(env)?;
        }
        if !w.is_set() {
            return Ok(None);
        }
        let now = time::OffsetDateTime::now_utc();
        let nb = w.not_before.unwrap_or(now - crate::pki::cert::CLOCK_SKEW);
        let na = w.not_after.unwrap_or(nb + validity.value.to_time());
        let secs = (na - nb).whole_seconds();
        if secs < 1 {
            return Err(ProfileError::Flag(format!(
                "--not-after ({}) must be at least 1s after --not-before ({}): give a later --not-after",
                crate::pki::text::rfc3339(na),
                crate::pki::text::rfc3339(nb)
            )));
        }
        if na <= now && !fixture {
            return Err(ProfileError::Flag(format!(
                "--not-after {} is in the past: an expired certificate is only issued as a test fixture; add --fixture",
                crate::pki::text::rfc3339(na)
            )));
        }
        let flag = match (w.not_before.is_some(), w.not_after.is_some()) {
            (true, true) => "--not-before/--not-after",
            (true, false) => "--not-before",
            _ => "--not-after",
        };
        Ok(Some(Val {
            value: Dur::from_secs(secs),
            source: Source::Flag { flag: flag.into() },
        }))
    }

    /// The PFX friendly name, placeholders expanded.
    fn resolve_friendly_name(
        &self,
        layers: &[Layer<'_>],
        vars: &[(&str, &str)],
    ) -> Result<Val<String>, ProfileError> {
        let fname_t = pick(
            self,
            layers,
            |l| l.pfx.as_ref()?.friendly_name.as_ref(),
            defaults::FRIENDLY_NAME.to_string(),
        );
        let fname =
            expand(&fname_t.value, vars, false).map_err(|m| err_at(self, &fname_t.source, m))?;
        Ok(Val {
            value: fname,
            source: fname_t.source,
        })
    }

    /// The leaf layers of `t` in `env`, lowest first: mtlsctl.yaml's defaults, the
    /// environment's `leaf:`, the tenant's settings (`base`), its override for `env`.
    fn leaf_layers<'a>(
        &'a self,
        tpath: &'a Path,
        t: &'a TenantFile,
        base: &'a LeafLayer,
        env: &str,
    ) -> Vec<Layer<'a>> {
        let (env_path, env_file) = &self.envs[env];
        let mut layers = Vec::new();
        if let Some(d) = &self.config.defaults {
            layers.push(Layer {
                path: &self.config_path,
                leaf: d,
            });
        }
        if let Some(l) = &env_file.leaf {
            layers.push(Layer {
                path: env_path,
                leaf: l,
            });
        }
        layers.push(Layer {
            path: tpath,
            leaf: base,
        });
        if let Some(o) = t.overrides.get(env) {
            layers.push(Layer {
                path: tpath,
                leaf: &o.value,
            });
        }
        layers
    }

    /// The subject of kind `k`: the template and where it came from, expanded, parsed
    /// and checked against RFC 5280's bounds.
    fn resolve_subject(
        &self,
        layers: &[Layer<'_>],
        k: Kind,
        vars: &[(&str, &str)],
    ) -> Result<(Val<String>, String, Subject), ProfileError> {
        let default_subject = match k {
            Kind::Client => defaults::CLIENT_SUBJECT,
            Kind::Server => defaults::SERVER_SUBJECT,
        };
        let subject_t = pick(
            self,
            layers,
            |l| {
                match k {
                    Kind::Client => l.client.as_ref(),
                    Kind::Server => l.server.as_ref(),
                }?
                .subject
                .as_ref()
            },
            default_subject.to_string(),
        );
        let subject_s =
            expand(&subject_t.value, vars, true).map_err(|m| err_at(self, &subject_t.source, m))?;
        let subject_parsed =
            Subject::parse(&subject_s).map_err(|m| err_at(self, &subject_t.source, m))?;
        super::limits::subject(&subject_parsed).map_err(|m| err_at(self, &subject_t.source, m))?;
        Ok((subject_t, subject_s, subject_parsed))
    }

    /// The subject alternative names of kind `k` from `layers`: placeholders expanded,
    /// `--dns`/`--ip` applied, and checked against the limits.
    fn resolve_sans(
        &self,
        layers: &[Layer<'_>],
        k: Kind,
        vars: &[(&str, &str)],
        flags: &LeafFlags,
    ) -> Result<SanVals, ProfileError> {
        let expand_list = |v: Val<Vec<Spanned<String>>>,
                           path_for: &dyn Fn(&Source) -> ProfileError|
         -> Result<Val<Vec<String>>, ProfileError> {
            let mut out = Vec::new();
            for s in &v.value {
                out.push(expand(&s.value, vars, false).map_err(|_| path_for(&v.source))?);
            }
            Ok(Val {
                value: out,
                source: v.source,
            })
        };
        let placeholder_err =
            |s: &Source| err_at(self, s, "a placeholder in this list does not expand".into());
        let mut san_dns = expand_list(pick_list(self, layers, k, |s| &s.dns), &placeholder_err)?;
        if !flags.dns.is_empty() {
            san_dns = Val {
                value: flags.dns.clone(),
                source: Source::Flag {
                    flag: "--dns".into(),
                },
            };
        }
        let ip_strings = expand_list(pick_list(self, layers, k, |s| &s.ip), &placeholder_err)?;
        let mut ips = Vec::new();
        for s in &ip_strings.value {
            ips.push(s.parse::<IpAddr>().map_err(|_| {
                err_at(
                    self,
                    &ip_strings.source,
                    format!("'{s}' is not an IP address"),
                )
            })?);
        }
        let mut san_ip = Val {
            value: ips,
            source: ip_strings.source,
        };
        if !flags.ip.is_empty() {
            san_ip = Val {
                value: flags.ip.clone(),
                source: Source::Flag {
                    flag: "--ip".into(),
                },
            };
        }
        let san_email = expand_list(pick_list(self, layers, k, |s| &s.email), &placeholder_err)?;
        let san_uri = expand_list(pick_list(self, layers, k, |s| &s.uri), &placeholder_err)?;
        check_san_limits(self, &san_dns, &san_ip, &san_email, &san_uri)?;
        Ok(SanVals {
            dns: san_dns,
            ip: san_ip,
            email: san_email,
            uri: san_uri,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_known_and_unknown() {
        let vars = [("org", "A, Inc."), ("env", "prod")];
        assert_eq!(
            expand("CN=x-{env},O={org}", &vars, true).unwrap(),
            "CN=x-prod,O=A\\, Inc."
        );
        let e = expand("{evn}", &vars, false).unwrap_err();
        assert!(e.contains("did you mean {env}"), "{e}");
        assert!(expand("{env", &vars, false).is_err());
    }
}
