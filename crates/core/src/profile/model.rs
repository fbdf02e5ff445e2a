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
    /// Where the signing CA's CRL is published (the CRL Distribution Point of every
    /// certificate it signs); a template with {env}, {tenant}, {ca}.
    #[serde(default)]
    pub crl_url: S<String>,
    /// The OCSP responder for the signing CA (Authority Information Access).
    #[serde(default)]
    pub ocsp_url: S<String>,
    /// Where the signing CA's certificate is published (AIA caIssuers).
    #[serde(default)]
    pub issuer_url: S<String>,
    /// How long an OCSP response of `mtlsctl ocsp serve` is valid (nextUpdate).
    #[serde(default)]
    pub ocsp_validity: S<Dur>,
    #[serde(default)]
    pub external: S<bool>,
    /// 2 (default): a root and issuing CAs below it; 1: the root signs leaves itself.
    #[serde(default)]
    pub tiers: S<u8>,
    /// `env` (default): one CA for every tenant of the environment; `tenant`: each
    /// tenant gets its own.
    #[serde(default)]
    pub scope: S<CaScope>,
    #[serde(default)]
    pub root: Option<RootLayer>,
    #[serde(default)]
    pub issuing: Option<IssuingLayer>,
}

/// Whose CA an environment's certificates chain to.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CaScope {
    /// One CA hierarchy for every tenant of the environment.
    #[default]
    Env,
    /// A CA hierarchy of the tenant's own in the environment.
    Tenant,
}

impl CaScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CaScope::Env => "env",
            CaScope::Tenant => "tenant",
        }
    }
}

/// The root of a two-tier hierarchy.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RootLayer {
    #[serde(default)]
    pub validity: S<Dur>,
    #[serde(default)]
    pub crl_validity: S<Dur>,
}

/// Whether an issuing CA carries the EKU of the leaves it issues.
#[derive(Clone, Copy, Debug, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EkuMode {
    /// clientAuth for a client-issuing CA, serverAuth for a server-issuing one.
    #[default]
    Auto,
    /// No EKU: the CA vouches for whatever its root allows.
    None,
}

/// The issuing (intermediate) CAs of a two-tier hierarchy.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct IssuingLayer {
    #[serde(default)]
    pub validity: S<Dur>,
    #[serde(default)]
    pub eku: S<EkuMode>,
    #[serde(default)]
    pub name_constraints: S<crate::pki::hierarchy::NameConstraintSpec>,
}

/// CA settings a tenant may set for itself in one environment (`overrides.<env>.ca`).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct TenantCaLayer {
    #[serde(default)]
    pub scope: S<CaScope>,
    /// `true`: this tenant's certificates come from its own (external) CA in this
    /// environment, whatever the environment's `ca.external` says.
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
    /// Only in a tenant's `overrides.<env>`: the tenant's own CA settings there.
    #[serde(default)]
    pub ca: Option<TenantCaLayer>,
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
    /// How renewals reach the tenant's gateways (docs/profiles.md#handoff).
    #[serde(default)]
    pub handoff: Option<HandoffLayer>,
}

/// `handoff:` of a tenant profile.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct HandoffLayer {
    /// The tenant's gateway pins our certificate (IIS one-to-one mapping, Tyk
    /// certificate ID, Envoy hash, nginx fingerprint): `renew` stages the successor.
    #[serde(default)]
    pub pinning: S<bool>,
    /// How long the old and new pins overlap (default 14d).
    #[serde(default)]
    pub overlap: S<Dur>,
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
            ca: None,
        }
    }
}
