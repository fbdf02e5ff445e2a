//! The YAML files as written: every setting optional and carrying its source location,
//! so that layering can say where each effective value came from.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::duration::Dur;
use crate::pki::Kind;
use crate::pki::keys::KeyAlgorithm;
use crate::pki::pkcs12::PfxCompat;

pub type S<T> = Option<Spanned<T>>;
pub type List = S<Vec<Spanned<String>>>;

/// `mtlsctl.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub org: Spanned<String>,
    pub environments: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub ca: Option<CaLayer>,
    #[serde(default)]
    pub defaults: Option<LeafLayer>,
}

/// `profiles/environments/<env>.yaml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    #[serde(default)]
    pub description: S<String>,
    /// A production environment: test fixtures are forbidden unless `fixtures` says
    /// otherwise.
    #[serde(default)]
    pub production: S<bool>,
    /// Whether test fixtures (`issue --fixture`, `gateway-test`) may be issued here
    /// (default: true, false when `production: true`).
    #[serde(default)]
    pub fixtures: S<bool>,
    #[serde(default)]
    pub ca: Option<CaLayer>,
    #[serde(default)]
    pub leaf: Option<LeafLayer>,
}

/// An environment's CA settings.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct CaLayer {
    #[serde(default)]
    pub subject: S<String>,
    #[serde(default)]
    pub key: S<KeyAlgorithm>,
    #[serde(default)]
    pub validity: S<Dur>,
    #[serde(default)]
    pub path_length: S<u8>,
    #[serde(default)]
    pub crl_validity: S<Dur>,
    #[serde(default)]
    pub external: S<bool>,
}

/// Leaf settings; each file may set any of them.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct LeafLayer {
    #[serde(default)]
    pub kind: S<Kind>,
    #[serde(default)]
    pub key: S<KeyAlgorithm>,
    #[serde(default)]
    pub validity: S<Dur>,
    #[serde(default)]
    pub renew_before: S<Dur>,
    #[serde(default)]
    pub clip_to_ca: S<bool>,
    #[serde(default)]
    pub dual_eku: S<bool>,
    #[serde(default)]
    pub pfx: Option<PfxLayer>,
    #[serde(default)]
    pub client: Option<KindLayer>,
    #[serde(default)]
    pub server: Option<KindLayer>,
}

/// Settings that depend on the certificate's kind.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct KindLayer {
    #[serde(default)]
    pub subject: S<String>,
    #[serde(default)]
    pub san: Option<SanLayer>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct SanLayer {
    #[serde(default)]
    pub dns: List,
    #[serde(default)]
    pub ip: List,
    #[serde(default)]
    pub email: List,
    #[serde(default)]
    pub uri: List,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct PfxLayer {
    #[serde(default)]
    pub enabled: S<bool>,
    #[serde(default)]
    pub compat: S<PfxCompat>,
    #[serde(default)]
    pub friendly_name: S<String>,
}

/// `profiles/tenants/<tenant>.yaml`: the tenant's own leaf settings at the top level,
/// and per-environment overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    #[serde(default)]
    pub organization: S<String>,
    pub environments: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub kind: S<Kind>,
    #[serde(default)]
    pub key: S<KeyAlgorithm>,
    #[serde(default)]
    pub validity: S<Dur>,
    #[serde(default)]
    pub renew_before: S<Dur>,
    #[serde(default)]
    pub clip_to_ca: S<bool>,
    #[serde(default)]
    pub dual_eku: S<bool>,
    #[serde(default)]
    pub pfx: Option<PfxLayer>,
    #[serde(default)]
    pub client: Option<KindLayer>,
    #[serde(default)]
    pub server: Option<KindLayer>,
    #[serde(default)]
    pub overrides: BTreeMap<String, Spanned<LeafLayer>>,
}

impl TenantFile {
    /// The environments this tenant lists, as written.
    pub fn listed_envs(&self) -> Vec<&str> {
        self.environments
            .value
            .iter()
            .map(|e| e.value.as_str())
            .collect()
    }

    /// The tenant's top-level settings as a layer.
    pub fn base_layer(&self) -> LeafLayer {
        LeafLayer {
            kind: self.kind.clone(),
            key: self.key.clone(),
            validity: self.validity.clone(),
            renew_before: self.renew_before.clone(),
            clip_to_ca: self.clip_to_ca.clone(),
            dual_eku: self.dual_eku.clone(),
            pfx: self.pfx.clone(),
            client: self.client.clone(),
            server: self.server.clone(),
        }
    }
}
