//! Environment CAs. Each scope (an environment, or a tenant in it with `ca.scope:
//! tenant`) has a set of CAs: roots, the issuing CAs below them and, during a root
//! rotation, a cross-certificate (see [`crate::workspace::hierarchy`] for the layout).
//! [`open_for`] is the one handle every operation uses: the CA that signs a kind of
//! leaf, the chain handed with it, the trust bundle a gateway installs and the CRL of
//! each CA in it. [`init`] makes a set, [`rotate`] replaces a tier, [`retire`] takes an
//! old CA out of the bundles.

mod init;
mod rotate;
mod signer;

pub use init::{MIN_PASSPHRASE_CHARS, check_new_passphrase, init, passphrase_var};
pub use rotate::{RetireReport, RotateReport, RotateRequest, Tier, ensure_issuing, retire, rotate};
pub use signer::{key_is_encrypted, load_key, load_signer};

pub use crate::workspace::hierarchy::{CaRole, CaStatus};

use std::collections::BTreeMap;
use std::path::PathBuf;

use openssl::x509::X509;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::pki::cert::Signer;
use crate::pki::inspect::{CertInfo, cert_info};
use crate::pki::keys::is_encrypted_pem;
use crate::pki::{Kind, PkiError, fingerprint, integrity};
use crate::profile::{CaScope, Profiles, ResolvedCa};
use crate::workspace::hierarchy::{CaEntry, FORMAT, Hierarchy};
use crate::workspace::inventory::LeafMeta;
use crate::workspace::{CaLoc, Workspace, WsError};

#[derive(Debug, Serialize)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub crl: PathBuf,
}

/// One CA as `ca show`, `ca list` and the reports of `ca init` and `ca rotate` show it.
#[derive(Clone, Debug, Serialize)]
pub struct CaItem {
    pub env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `env` or `tenant`.
    pub scope: &'static str,
    pub role: CaRole,
    /// The kind of leaf an issuing CA signs (absent for roots; a one-tier root signs both).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    pub status: CaStatus,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub path_length: Option<u32>,
    pub extended_key_usage: Vec<String>,
    /// The root key is kept outside the workspace.
    pub offline: bool,
    pub cert: PathBuf,
    /// Absent for a cross-certificate (its key is the new root's) and an offline root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl: Option<PathBuf>,
    /// `<env>[/<tenant>]:ca[/<folder>]`: how the journal and leaves name it.
    pub id: String,
}

/// What `ca init` and `ca show` report: the set's root at the top level (the fields
/// older versions had), every CA of the set in `cas`.
#[derive(Debug, Serialize)]
pub struct CaReport {
    pub env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// false when the CA already existed and nothing was written.
    pub created: bool,
    pub key_encrypted: bool,
    pub files: CaFiles,
    #[serde(flatten)]
    pub cert: CertInfo,
    pub sha256: String,
    /// 1: the root signs leaves; 2: issuing CAs below the root do.
    pub tiers: u8,
    pub cas: Vec<CaItem>,
    /// Where `ca init` wrote the root key when it is kept offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_key_out: Option<PathBuf>,
    /// Where `ca init` moved a CA folder that had no ca.crt (left by an older version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_aside: Option<PathBuf>,
}

pub fn files(ws: &Workspace, ca: &CaLoc) -> CaFiles {
    CaFiles {
        cert: ws.ca_cert(ca),
        key: ws.ca_key(ca),
        crl: ws.crl(ca),
    }
}

/// Whether `env`'s own set has its root.
pub fn exists(ws: &Workspace, env: &str) -> bool {
    ws.ca_cert(env).is_file()
}

pub(crate) fn sha256_hex(der: &[u8]) -> String {
    fingerprint::hex(&fingerprint::sha256(der))
}

/// The first certificate of the CA folder `ca`.
pub(crate) fn read_cert(ws: &Workspace, ca: &CaLoc) -> Result<Vec<u8>> {
    let p = ws.ca_cert(ca);
    let pem = ws.read(&p)?;
    let ders = crate::pki::inspect::certificates(&pem).map_err(|e| WsError::Corrupt {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    Ok(ders.into_iter().next().expect("at least one"))
}

/// The root certificate of `env`'s own set, or an error telling how to create it.
pub fn ca_cert_der(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<Vec<u8>> {
    profiles.check_env(env)?;
    if !exists(ws, env) {
        let ca = profiles.resolve_ca(env)?;
        if ca.external.value {
            return Err(OpError::ExternalCa { env: env.into() });
        }
        return Err(OpError::NoCa { env: env.into() });
    }
    read_cert(ws, &CaLoc::env(env))
}

/// `ca show` / the report of `ca init`: the set of `tenant` in `env` (None: the env's).
pub fn report(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    tenant: Option<&str>,
    created: bool,
) -> Result<CaReport> {
    let settings = profiles.resolve_ca_for(env, tenant)?;
    let base = CaLoc::base(env, settings.tenant.as_deref());
    if !ws.ca_cert(&base).is_file() {
        return Err(missing(&settings, env));
    }
    let set = read_set(ws, &base)?;
    let root = set.root_view();
    let info = cert_info(&root.der)?;
    let key_encrypted = set
        .cas
        .iter()
        .filter(|c| c.entry.role != CaRole::Cross && !c.entry.offline)
        .any(|c| {
            // read as every workspace file is: inside it, no link followed
            ws.read(&ws.ca_key(&c.loc))
                .map(|k| is_encrypted_pem(&k))
                .unwrap_or(false)
        });
    Ok(CaReport {
        env: env.to_string(),
        tenant: settings.tenant.clone(),
        created,
        key_encrypted,
        files: files(ws, &base),
        sha256: sha256_hex(&root.der),
        cert: info,
        tiers: if set.hierarchy.two_tier() { 2 } else { 1 },
        cas: set.items(ws)?,
        root_key_out: None,
        moved_aside: None,
    })
}

fn missing(settings: &ResolvedCa, env: &str) -> OpError {
    if settings.external.value {
        return OpError::ExternalCa { env: env.into() };
    }
    match &settings.tenant {
        Some(t) => OpError::NoTenantCa {
            env: env.into(),
            tenant: t.clone(),
        },
        None => OpError::NoCa { env: env.into() },
    }
}

// ---------------------------------------------------------------------------------------
// reading a set

/// One CA of a set as read from disk and checked.
#[derive(Clone, Debug)]
pub struct CaView {
    pub loc: CaLoc,
    pub entry: CaEntry,
    pub der: Vec<u8>,
}

/// The CAs of one scope, checked: each certificate is the one hierarchy.json records,
/// carries the key ca.json records, and is signed by the CA it names as its issuer.
#[derive(Clone, Debug)]
pub struct CaSet {
    pub base: CaLoc,
    pub hierarchy: Hierarchy,
    /// Whether the set has a hierarchy.json (a one-tier set from before has none).
    pub recorded: bool,
    pub cas: Vec<CaView>,
}

/// The record a set without hierarchy.json stands for: its root, alone.
fn synth(root_der: &[u8]) -> Result<Hierarchy> {
    let info = cert_info(root_der)?;
    Ok(Hierarchy {
        format: FORMAT,
        cas: vec![CaEntry {
            dir: String::new(),
            role: CaRole::Root,
            kind: None,
            parent: None,
            certifies: None,
            status: CaStatus::Active,
            serial: info.serial.to_ascii_lowercase(),
            sha256: sha256_hex(root_der),
            offline: false,
            not_after: info.not_after,
            created_at: info.not_before,
        }],
    })
}

/// The folder `dir` (as hierarchy.json names it) of the set `base`.
pub(crate) fn loc_in(base: &CaLoc, dir: &str) -> CaLoc {
    if dir.is_empty() {
        base.set()
    } else {
        base.child(dir)
    }
}

fn tampered(path: PathBuf, reason: impl Into<String>) -> OpError {
    OpError::CaHierarchy {
        path,
        reason: reason.into(),
    }
}

/// Reads and checks the set whose first root is `base`.
pub fn read_set(ws: &Workspace, base: &CaLoc) -> Result<CaSet> {
    read_set_impl(ws, base, true)
}

/// Reads the set whose first root is `base` without checking its certificates against
/// the records (for `doctor`, which reports each difference).
pub fn read_set_unchecked(ws: &Workspace, base: &CaLoc) -> Result<CaSet> {
    read_set_impl(ws, base, false)
}

fn read_set_impl(ws: &Workspace, base: &CaLoc, check: bool) -> Result<CaSet> {
    let base = base.set();
    let root_der = read_cert(ws, &base)?;
    let (hierarchy, recorded) = match ws.load_hierarchy(&base)? {
        Some(h) => (h, true),
        None => (synth(&root_der)?, false),
    };
    let mut cas = Vec::with_capacity(hierarchy.cas.len());
    for e in &hierarchy.cas {
        let loc = loc_in(&base, &e.dir);
        let der = if e.dir.is_empty() {
            root_der.clone()
        } else {
            read_cert(ws, &loc)?
        };
        if check && recorded && sha256_hex(&der) != e.sha256 {
            return Err(tampered(
                ws.ca_cert(&loc),
                format!(
                    "is not the certificate {} records for it (SHA-256 {} expected): restore it from backup",
                    ws.hierarchy_path(&base).display(),
                    e.sha256
                ),
            ));
        }
        if check && e.role != CaRole::Cross {
            super::doctor::check_ca_cert(ws, &loc, &der)?;
        }
        cas.push(CaView {
            loc,
            entry: e.clone(),
            der,
        });
    }
    if !cas.iter().any(|c| c.entry.dir.is_empty()) {
        return Err(tampered(
            ws.hierarchy_path(&base),
            "does not list the set's first root: restore it from backup",
        ));
    }
    for c in cas.iter().filter(|_| check) {
        let Some(p) = &c.entry.parent else { continue };
        let parent = cas
            .iter()
            .find(|x| &x.entry.dir == p)
            .expect("checked on load");
        if !integrity::issued_by(&c.der, &parent.der).unwrap_or(false) {
            return Err(tampered(
                ws.ca_cert(&c.loc),
                format!(
                    "is not signed by the CA hierarchy.json names as its issuer ({}): restore the set's folder from backup",
                    parent.loc
                ),
            ));
        }
    }
    Ok(CaSet {
        base,
        hierarchy,
        recorded,
        cas,
    })
}

/// The first roots of every set of `env`: the env's own and each tenant's.
pub fn set_bases(ws: &Workspace, env: &str) -> Vec<CaLoc> {
    let mut out = Vec::new();
    if exists(ws, env) {
        out.push(CaLoc::env(env));
    }
    let Ok(rd) = std::fs::read_dir(ws.root().join("pki").join(env)) else {
        return out;
    };
    let mut tenants: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "ca" && !n.starts_with('.'))
        .filter(|n| crate::workspace::check_name("tenant", n).is_ok())
        .collect();
    tenants.sort();
    for t in tenants {
        let base = CaLoc::base(env, Some(&t));
        if ws.ca_cert(&base).is_file() {
            out.push(base);
        }
    }
    out
}

impl CaSet {
    pub fn view(&self, dir: &str) -> Option<&CaView> {
        self.cas.iter().find(|c| c.entry.dir == dir)
    }

    /// The set's first root (always there).
    pub fn first_root(&self) -> &CaView {
        self.view("").expect("checked on read")
    }

    /// The active root (the first root until a rotation replaces it).
    pub fn root_view(&self) -> &CaView {
        self.hierarchy
            .active_root()
            .and_then(|e| self.view(&e.dir))
            .unwrap_or_else(|| self.first_root())
    }

    /// The CA that signs leaves of `kind`: the active issuing CA of that kind in two
    /// tiers (None when there is none yet), the root in one.
    pub fn signing(&self, kind: Kind) -> Option<&CaView> {
        if self.hierarchy.two_tier() {
            self.hierarchy.issuing(kind).and_then(|e| self.view(&e.dir))
        } else {
            Some(self.root_view())
        }
    }

    pub fn by_serial(&self, serial: &str) -> Option<&CaView> {
        let s = serial.trim_start_matches("0x").to_ascii_lowercase();
        self.cas.iter().find(|c| c.entry.serial == s)
    }

    pub fn by_loc(&self, loc: &CaLoc) -> Option<&CaView> {
        self.cas.iter().find(|c| &c.loc == loc)
    }

    /// The status of the CA `loc` and of its issuer: a leaf is due for rotation when
    /// either is no longer active.
    pub fn effective_status(&self, loc: &CaLoc) -> Option<CaStatus> {
        let v = self.by_loc(loc)?;
        let mut st = v.entry.status;
        if let Some(p) = v.entry.parent.as_deref().and_then(|p| self.view(p))
            && p.entry.status != CaStatus::Active
            && st == CaStatus::Active
        {
            st = p.entry.status;
        }
        Some(st)
    }

    /// Every CA of the set, for `ca list`.
    pub fn items(&self, ws: &Workspace) -> Result<Vec<CaItem>> {
        self.cas.iter().map(|c| item(ws, &self.base, c)).collect()
    }

    /// The chain handed with a leaf signed by `signing`, leaf-side first: the issuing CA,
    /// then the cross-certificate while its new root is not yet everyone's (so a peer
    /// that holds only the old root builds a path), else the root.
    fn chain_from<'a>(&'a self, signing: &'a CaView) -> Vec<&'a CaView> {
        // during a root rotation's overlap the issuing CA travels as certified by the
        // old root, which every gateway still trusts; those that have the new root
        // find the issuing CA in their bundle
        let cross = self.cas.iter().find(|c| {
            c.entry.role == CaRole::Cross
                && c.entry.status != CaStatus::Retired
                && c.entry.certifies.as_deref() == Some(signing.entry.dir.as_str())
                && c.entry
                    .parent
                    .as_deref()
                    .and_then(|p| self.view(p))
                    .is_some_and(|p| p.entry.status != CaStatus::Retired)
        });
        if let Some(x) = cross {
            return vec![x];
        }
        let mut out = vec![signing];
        let mut cur = signing;
        while let Some(p) = cur.entry.parent.as_deref().and_then(|p| self.view(p)) {
            out.push(p);
            cur = p;
        }
        out
    }
}

fn item(ws: &Workspace, base: &CaLoc, c: &CaView) -> Result<CaItem> {
    let info = cert_info(&c.der)?;
    let keyed = c.entry.role != CaRole::Cross && !c.entry.offline;
    Ok(CaItem {
        env: base.env.clone(),
        tenant: base.tenant.clone(),
        scope: if base.tenant.is_some() {
            CaScope::Tenant.as_str()
        } else {
            CaScope::Env.as_str()
        },
        role: c.entry.role,
        kind: c.entry.kind,
        status: c.entry.status,
        subject: info.subject,
        issuer: info.issuer,
        serial: c.entry.serial.clone(),
        sha256: sha256_hex(&c.der),
        not_before: info.not_before,
        not_after: info.not_after,
        path_length: info.path_length,
        extended_key_usage: info.extended_key_usage,
        offline: c.entry.offline,
        cert: ws.ca_cert(&c.loc),
        key: keyed.then(|| ws.ca_key(&c.loc)),
        crl: (c.entry.role != CaRole::Cross).then(|| ws.crl(&c.loc)),
        id: c.loc.to_string(),
    })
}

// ---------------------------------------------------------------------------------------
// the handle

/// The CAs of one scope as an operation on leaves of one kind sees them: its settings,
/// the CA that signs, the chain handed with each leaf, the trust bundle a gateway
/// installs and the CRL of each CA in it. [`open_for`] needs no passphrase;
/// [`EnvCa::unlock`] adds the signer.
pub struct EnvCa {
    pub env: String,
    pub settings: ResolvedCa,
    pub set: CaSet,
    pub kind: Kind,
    /// The CA that signs leaves of `kind`; None in two tiers before its first issuing CA
    /// of that kind is made ([`rotate`] with [`Tier::Issuing`]).
    pub signing: Option<CaLoc>,
    /// The issuing chain, issuing CA first.
    chain: Vec<X509>,
    /// DER of every CA a gateway must trust now (leaf side first): every root and
    /// issuing CA of the kind that is not retired.
    pub trust: Vec<Vec<u8>>,
    /// Where each CA of `trust` is.
    pub trust_locs: Vec<CaLoc>,
    /// The current CRL file of each CA in `trust`.
    pub crls: Vec<PathBuf>,
    /// How many CA certificates may stand between a leaf and the trust anchor on the
    /// longest path a gateway must accept (nginx `ssl_verify_depth`, OpenSSL
    /// `-verify_depth`): 0 in one tier, 1 in two, 2 while a cross-certificate carries
    /// the new root.
    pub verify_depth: usize,
}

/// An [`EnvCa`] whose signing key is loaded: it can sign leaves and CRLs.
pub struct CaSigner<'a> {
    pub ca: &'a EnvCa,
    pub signer: Signer,
    /// The CA that signs.
    pub loc: CaLoc,
}

/// A [`CaSigner`] that owns its chain, to be kept beyond its [`EnvCa`].
pub struct OwnedSigner {
    pub signer: Signer,
    pub chain: Vec<X509>,
    pub loc: CaLoc,
}

impl OwnedSigner {
    pub fn with(&self) -> super::issue::SignWith<'_> {
        super::issue::SignWith {
            signer: &self.signer,
            chain: &self.chain,
            ca: &self.loc,
        }
    }
}

impl CaSigner<'_> {
    pub fn into_owned(self) -> OwnedSigner {
        OwnedSigner {
            chain: self.ca.chain().to_vec(),
            signer: self.signer,
            loc: self.loc,
        }
    }

    /// What issuing a leaf with this CA takes.
    pub fn with(&self) -> super::issue::SignWith<'_> {
        super::issue::SignWith {
            signer: &self.signer,
            chain: self.ca.chain(),
            ca: &self.loc,
        }
    }
}

/// Opens `env`'s own CAs for client leaves: see [`open_for`].
pub fn open(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<EnvCa> {
    open_for(ws, profiles, env, None, Kind::Client)
}

/// Opens the CAs that `tenant`'s leaves of `kind` in `env` chain to (the tenant's own
/// set with `ca.scope: tenant`, else the environment's), or explains how to create
/// them. Every CA certificate is checked as [`read_set`] checks it.
pub fn open_for(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    tenant: Option<&str>,
    kind: Kind,
) -> Result<EnvCa> {
    let settings = profiles.resolve_ca_for(env, tenant)?;
    let base = CaLoc::base(env, settings.tenant.as_deref());
    if let Some(t) = tenant
        && settings.external.value
        && !profiles.resolve_ca(env)?.external.value
    {
        // the environment has a CA of ours, but not for this tenant
        return Err(OpError::TenantExternalCa {
            env: env.into(),
            tenant: t.into(),
        });
    }
    if !ws.ca_cert(&base).is_file() {
        return Err(missing(&settings, env));
    }
    let set = read_set(ws, &base)?;
    EnvCa::build(ws, env, settings, set, kind)
}

impl EnvCa {
    fn build(
        ws: &Workspace,
        env: &str,
        settings: ResolvedCa,
        set: CaSet,
        kind: Kind,
    ) -> Result<EnvCa> {
        let signing = set.signing(kind).map(|v| v.loc.clone());
        let chain_views: Vec<CaView> = match set.signing(kind) {
            Some(v) => set.chain_from(v).into_iter().cloned().collect(),
            None => vec![set.root_view().clone()],
        };
        let verify_depth = chain_views
            .iter()
            .filter(|c| c.entry.role != CaRole::Root)
            .count()
            .max(
                // a leaf of a retiring issuing CA still has its own path
                set.cas
                    .iter()
                    .filter(|c| c.entry.role == CaRole::Issuing && c.entry.in_bundle())
                    .map(|c| {
                        set.chain_from(c)
                            .iter()
                            .filter(|x| x.entry.role != CaRole::Root)
                            .count()
                    })
                    .max()
                    .unwrap_or(0),
            );
        let chain = chain_views
            .iter()
            .map(|c| X509::from_der(&c.der).map_err(PkiError::from))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let two = set.hierarchy.two_tier();
        let mut bundle: Vec<&CaView> = set
            .cas
            .iter()
            .filter(|c| c.entry.in_bundle())
            .filter(|c| c.entry.role == CaRole::Root || (!two || c.entry.kind == Some(kind)))
            .collect();
        // leaf side first: issuing CAs, then roots; newest first within each
        bundle.sort_by_key(|c| {
            (
                c.entry.role == CaRole::Root,
                c.entry.status != CaStatus::Active,
            )
        });
        Ok(EnvCa {
            env: env.to_string(),
            trust: bundle.iter().map(|c| c.der.clone()).collect(),
            trust_locs: bundle.iter().map(|c| c.loc.clone()).collect(),
            crls: bundle.iter().map(|c| ws.crl(&c.loc)).collect(),
            settings,
            kind,
            signing,
            chain,
            verify_depth,
            set,
        })
    }

    /// The chain handed with each leaf, issuing CA first.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// Whether the signing key needs a passphrase.
    pub fn key_is_encrypted(&self, ws: &Workspace) -> Result<bool> {
        key_is_encrypted(ws, self.signing_loc()?)
    }

    fn signing_loc(&self) -> Result<&CaLoc> {
        self.signing.as_ref().ok_or_else(|| OpError::NoIssuingCa {
            env: self.env.clone(),
            kind: self.kind,
            tenant_flag: self
                .settings
                .tenant
                .as_ref()
                .map(|t| format!(" --tenant {t}"))
                .unwrap_or_default(),
        })
    }

    /// Loads the signing key with `passphrase` (None for an unencrypted key). The key
    /// matching the certificate is what lets a workspace older than ca.json record it.
    pub fn unlock(
        &self,
        ws: &Workspace,
        _profiles: &Profiles,
        passphrase: Option<&SecretString>,
    ) -> Result<CaSigner<'_>> {
        let loc = self.signing_loc()?.clone();
        let signer = with_urls(
            load_signer(ws, &loc, passphrase, None)?,
            &self.settings,
            _profiles,
            &loc,
        )?;
        Ok(CaSigner {
            ca: self,
            signer,
            loc,
        })
    }
}

/// `signer` (the CA at `loc`) with the revocation pointers of the profile (`ca.crl_url`,
/// `ca.ocsp_url`, `ca.issuer_url`), expanded for it: {ca} is its serial in lowercase
/// hex, {tenant} the tenant of a tenant-scoped set. Everything it signs from then on
/// names them.
pub(crate) fn with_urls(
    mut signer: Signer,
    settings: &ResolvedCa,
    profiles: &Profiles,
    loc: &CaLoc,
) -> Result<Signer> {
    let serial = cert_info(&signer.cert_der)?.serial.to_ascii_lowercase();
    signer.urls = settings.revocation_urls(profiles, loc.tenant.as_deref(), &serial)?;
    Ok(signer)
}

/// How long a CRL of the CA `c` of `set` lives: a two-tier root's has its own validity
/// (`ca.root.crl_validity`), every other CA's is the leaves' `ca.crl_validity`.
pub fn crl_validity_for(settings: &ResolvedCa, set: &CaSet, c: &CaView) -> time::Duration {
    if c.entry.role == CaRole::Root && set.hierarchy.two_tier() {
        settings.root_crl_validity.value.to_time()
    } else {
        settings.crl_validity.value.to_time()
    }
}

/// Every CA of `env` (of every environment when None), each set read and checked.
pub fn list(ws: &Workspace, profiles: &Profiles, env: Option<&str>) -> Result<Vec<CaItem>> {
    let envs = match env {
        Some(e) => {
            profiles.check_env(e)?;
            vec![e.to_string()]
        }
        None => profiles.env_names(),
    };
    let mut out = Vec::new();
    for e in &envs {
        for base in set_bases(ws, e) {
            out.extend(read_set(ws, &base)?.items(ws)?);
        }
    }
    Ok(out)
}

/// Whether the CA keys of `env` (its own set's and its tenants') need a passphrase: the
/// first key found decides (they share the environment's passphrase). False when there
/// is none: opening the CA then says what is missing.
pub fn env_key_is_encrypted(ws: &Workspace, env: &str) -> Result<bool> {
    for base in set_bases(ws, env) {
        let Ok(set) = read_set_unchecked(ws, &base) else {
            continue;
        };
        for c in &set.cas {
            if c.entry.role != CaRole::Cross && !c.entry.offline && ws.ca_key(&c.loc).is_file() {
                return key_is_encrypted(ws, &c.loc);
            }
        }
    }
    // no CA at all: the command that opens it says how to make one
    Ok(false)
}

/// The CA a leaf names as its issuer (`meta.json`'s `ca`; older leaves: the env's first
/// root).
pub fn issuer_of(meta: &LeafMeta) -> CaLoc {
    meta.ca.clone().unwrap_or_else(|| CaLoc::env(&meta.env))
}

/// Every set of the workspace's environments `envs`, read once, for the checks that run
/// over many leaves (expiry, renew). An unreadable set is left out: the command that
/// uses it reports it.
#[derive(Default)]
pub struct CaIndex {
    sets: BTreeMap<CaLoc, CaSet>,
}

impl CaIndex {
    pub fn load(ws: &Workspace, envs: &[String]) -> CaIndex {
        let mut sets = BTreeMap::new();
        for env in envs {
            for b in set_bases(ws, env) {
                if let Ok(s) = read_set(ws, &b) {
                    sets.insert(b, s);
                }
            }
        }
        CaIndex { sets }
    }

    pub fn sets(&self) -> impl Iterator<Item = &CaSet> {
        self.sets.values()
    }

    /// Whether the leaf's issuer (or the issuer's root) was replaced by a rotation.
    pub fn rotated_away(&self, meta: &LeafMeta) -> Option<CaStatus> {
        let loc = issuer_of(meta);
        let st = self.sets.get(&loc.set())?.effective_status(&loc)?;
        (st != CaStatus::Active).then_some(st)
    }
}
