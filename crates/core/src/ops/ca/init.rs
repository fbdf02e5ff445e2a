//! `ca init`: a new set of CAs, and the pieces rotation builds with too.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use time::OffsetDateTime;

use super::{CaReport, report, sha256_hex};
use crate::fault::{self, Fault};
use crate::ops::{OpError, Result};
use crate::pki::cert::{self, Built, CaRequest, Signer};
use crate::pki::hierarchy::{self as hier, SubCaRequest};
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::{Kind, crl};
use crate::profile::{Profiles, ResolvedCa};
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::hierarchy::{CaEntry, CaRole, CaStatus, FORMAT, HIERARCHY, Hierarchy};
use crate::workspace::inventory::CaState;
use crate::workspace::journal::{CaStep, Intent};
use crate::workspace::{CaLoc, Workspace};

/// The shortest passphrase `ca init` accepts for a new CA key, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The environment variable that holds `env`'s CA passphrase, read before
/// MTLSCTL_CA_PASSPHRASE: MTLSCTL_CA_PASSPHRASE_<ENV>, upper-cased, `-` and `.` as `_`.
pub fn passphrase_var(env: &str) -> String {
    format!(
        "MTLSCTL_CA_PASSPHRASE_{}",
        env.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Refuses a new CA passphrase shorter than [`MIN_PASSPHRASE_CHARS`].
pub fn check_new_passphrase(passphrase: &SecretString) -> Result<()> {
    let n = secrecy::ExposeSecret::expose_secret(passphrase)
        .chars()
        .count();
    if n < MIN_PASSPHRASE_CHARS {
        return Err(OpError::PassphraseTooShort {
            chars: n,
            min: MIN_PASSPHRASE_CHARS,
        });
    }
    Ok(())
}

/// A CA built in memory, ready to be written: its folder's files (ca.crt last), its
/// entry in hierarchy.json, and its key (to sign what the same run makes below it).
pub(super) struct NewCa {
    pub loc: CaLoc,
    pub entry: CaEntry,
    pub built: Built,
    pub key: PrivateKey,
    /// The encrypted (or, without a passphrase, plain) PKCS#8 PEM of the key.
    pub key_pem: zeroize::Zeroizing<Vec<u8>>,
    pub crl_pem: String,
    pub state_json: Vec<u8>,
}

impl NewCa {
    /// The folder's files, key first and ca.crt last (a folder whose ca.crt reads is
    /// complete); an offline root's key stays out.
    pub fn files(&self, prefix: &str) -> Vec<(String, &[u8], u32)> {
        let mut out: Vec<(String, &[u8], u32)> = Vec::new();
        if !self.entry.offline {
            out.push((format!("{prefix}ca.key"), &self.key_pem[..], SECRET));
        }
        out.push((format!("{prefix}crl.pem"), self.crl_pem.as_bytes(), PUBLIC));
        out.push((format!("{prefix}state.json"), &self.state_json, PUBLIC));
        out.push((format!("{prefix}ca.crt"), self.built.pem.as_bytes(), PUBLIC));
        out
    }

    pub fn signer(&self) -> Result<Signer> {
        Ok(Signer::new(&self.built.der, &self.key)?)
    }
}

fn key_pem(
    key: &PrivateKey,
    passphrase: Option<&SecretString>,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(zeroize::Zeroizing::new(match passphrase {
        Some(p) => key.to_encrypted_pkcs8_pem(p)?,
        None => key.to_pkcs8_pem()?.to_vec(),
    }))
}

fn first_crl(
    signer: &Signer,
    validity: time::Duration,
    now: OffsetDateTime,
) -> Result<(String, Vec<u8>)> {
    let (crl_pem, _) = crl::sign(signer, 1, &[], validity, now)?;
    let state = CaState {
        crl_number: 1,
        revocations: Vec::new(),
    };
    Ok((
        crl_pem,
        serde_json::to_vec_pretty(&state).expect("state serialises"),
    ))
}

fn entry(dir: &str, role: CaRole, built: &Built, now: OffsetDateTime) -> CaEntry {
    CaEntry {
        dir: dir.to_string(),
        role,
        kind: None,
        parent: None,
        certifies: None,
        status: CaStatus::Active,
        serial: crate::pki::serial::to_hex(&built.serial),
        sha256: sha256_hex(&built.der),
        offline: false,
        not_after: built.not_after,
        created_at: cert::whole_seconds(now),
    }
}

/// A self-signed root in the folder `dir` of the set `base`.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_root(
    base: &CaLoc,
    dir: &str,
    req: &CaRequest,
    alg: KeyAlgorithm,
    passphrase: Option<&SecretString>,
    crl_validity: time::Duration,
    offline: bool,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<NewCa> {
    let key = PrivateKey::generate(alg)?;
    let built = cert::self_signed_ca_with_serial(req, &key, now, serial)?;
    let signer = Signer::new(&built.der, &key)?;
    let (crl_pem, state_json) = first_crl(&signer, crl_validity, now)?;
    let mut e = entry(dir, CaRole::Root, &built, now);
    e.offline = offline;
    Ok(NewCa {
        loc: super::loc_in(base, dir),
        entry: e,
        key_pem: key_pem(&key, passphrase)?,
        key,
        built,
        crl_pem,
        state_json,
    })
}

/// An issuing CA for leaves of `kind`, signed by `parent` (the root in `parent_dir`).
#[allow(clippy::too_many_arguments)]
pub(super) fn build_issuing(
    base: &CaLoc,
    req: &SubCaRequest,
    kind: Kind,
    alg: KeyAlgorithm,
    passphrase: Option<&SecretString>,
    crl_validity: time::Duration,
    parent: &Signer,
    parent_dir: &str,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<NewCa> {
    let key = PrivateKey::generate(alg)?;
    let built = hier::sign_sub_ca_with_serial(req, &key.to_rcgen()?, parent, now, serial)?;
    let signer = Signer::new(&built.der, &key)?;
    let (crl_pem, state_json) = first_crl(&signer, crl_validity, now)?;
    let dir = format!("issuing/{}", crate::pki::serial::to_hex(serial));
    let mut e = entry(&dir, CaRole::Issuing, &built, now);
    e.kind = Some(kind);
    e.parent = Some(parent_dir.to_string());
    Ok(NewCa {
        loc: super::loc_in(base, &dir),
        entry: e,
        key_pem: key_pem(&key, passphrase)?,
        key,
        built,
        crl_pem,
        state_json,
    })
}

/// Writes an offline root's key, once, into `dir` (created 0700 if missing) as
/// `<scope>-root-<serial>.key` (0600): refuses to replace a file.
pub(super) fn write_offline_key(
    dir: &Path,
    base: &CaLoc,
    serial: &str,
    pem: &[u8],
) -> Result<PathBuf> {
    let path = offline_key_path(dir, base, serial);
    fsutil::write_new(&path, pem, SECRET)?;
    Ok(path)
}

/// The name an offline root key gets in `dir`, before it is written.
pub(super) fn offline_key_path(dir: &Path, base: &CaLoc, serial: &str) -> PathBuf {
    let scope = match &base.tenant {
        Some(t) => format!("{}-{t}", base.env),
        None => base.env.clone(),
    };
    crate::workspace::absolute(&dir.join(format!("{scope}-root-{serial}.key")))
}

/// Creates the set of CAs of `ca` (an environment's, or a tenant's with scope tenant)
/// from its profile unless it exists: in two tiers (the default) a root and a client
/// issuing CA signed by it; in one (`ca.tiers: 1`) the root alone, as older versions
/// made it. Keys are written as encrypted PKCS#8 under `passphrase` (plain only when
/// `passphrase` is None, which the CLI allows only with --no-passphrase). Each CA gets
/// an initial empty CRL. With `root_key_out`, the root key is written once into that
/// folder and never kept in the workspace. The serial is drawn and the intent
/// journaled first; the set's folder is staged whole beside it and renamed into place,
/// so a kill leaves no half-made CA. A folder without ca.crt (from an older version) is
/// moved aside first (the report's `moved_aside`). The passphrase must have at least
/// [`MIN_PASSPHRASE_CHARS`] characters.
pub fn init(
    ws: &Workspace,
    profiles: &Profiles,
    ca: &ResolvedCa,
    passphrase: Option<&SecretString>,
    root_key_out: Option<&Path>,
    now: OffsetDateTime,
) -> Result<CaReport> {
    ws.audit_preflight()?;
    let env = &ca.env;
    let base = CaLoc::base(env, ca.tenant.as_deref());
    if ws.ca_cert(&base).is_file() {
        return report(ws, profiles, env, ca.tenant.as_deref(), false);
    }
    if ca.external.value {
        return Err(OpError::ExternalCaNotCreated { env: env.clone() });
    }
    if let Some(p) = passphrase {
        check_new_passphrase(p)?;
    }
    let serial = crate::pki::serial::random_serial()?;
    let serial_hex = crate::pki::serial::to_hex(&serial);
    let offline_path = root_key_out.map(|d| offline_key_path(d, &base, &serial_hex));
    if let Some(p) = &offline_path
        && p.exists()
    {
        return Err(OpError::OutputExists { path: p.clone() });
    }
    let mut intent = Intent::new("ca-init", now);
    let audit = intent.audit_step("ca-init", None);
    intent.ca = Some(CaStep {
        env: env.clone(),
        serial: serial_hex.clone(),
        audit,
        set: ca.tenant.is_some().then(|| base.clone()),
        dirs: Vec::new(),
        hierarchy: None,
        root_key_out: offline_path.clone(),
        reissued: None,
    });
    let journal = ws.begin(&intent)?;
    let step = intent.ca.as_ref().expect("journaled above");
    let placed = match build_and_place(
        ws,
        profiles,
        ca,
        &base,
        passphrase,
        root_key_out,
        now,
        &serial,
    ) {
        Ok(m) => m,
        Err(e) => {
            // a failed stage removes itself; a CA in place keeps the journal for its audit line
            if !ws.ca_cert(&base).is_file() {
                if let Some(p) = &offline_path {
                    let _ = std::fs::remove_file(p);
                }
                journal.done();
            }
            return Err(e);
        }
    };
    let mut ev = step.audit.event();
    ev.env = Some(env);
    ev.tenant = ca.tenant.as_deref();
    ev.serial = Some(&step.serial);
    ev.sha256 = Some(&placed.sha);
    ev.detail = placed.detail.clone();
    crate::ops::issue::audit(ws, &[ev], true)?;
    journal.done();
    let mut rep = report(ws, profiles, env, ca.tenant.as_deref(), true)?;
    rep.moved_aside = placed.moved_aside;
    rep.root_key_out = placed.root_key_out;
    Ok(rep)
}

struct Placed {
    moved_aside: Option<PathBuf>,
    sha: String,
    detail: Option<String>,
    root_key_out: Option<PathBuf>,
}

/// Makes the set (root, its issuing CA in two tiers, their first CRLs and states,
/// hierarchy.json) and puts its folder in place: staged with keys first and the root's
/// ca.crt last, each file fsynced, then renamed.
#[allow(clippy::too_many_arguments)]
fn build_and_place(
    ws: &Workspace,
    profiles: &Profiles,
    ca: &ResolvedCa,
    base: &CaLoc,
    passphrase: Option<&SecretString>,
    root_key_out: Option<&Path>,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<Placed> {
    let two = ca.tiers.value >= 2;
    let root = build_root(
        base,
        "",
        &ca.root_request(1),
        ca.key.value,
        passphrase,
        ca.root_crl_validity(),
        root_key_out.is_some(),
        now,
        serial,
    )?;
    let issuing = if two {
        let sub_serial = crate::pki::serial::random_serial()?;
        Some(build_issuing(
            base,
            &ca.issuing_request(Kind::Client, 1),
            Kind::Client,
            ca.key.value,
            passphrase,
            ca.crl_validity.value.to_time(),
            &super::with_urls(root.signer()?, ca, profiles, &root.loc)?,
            "",
            now,
            &sub_serial,
        )?)
    } else {
        None
    };
    fault::hit(Fault::AfterSign);
    let dir = ws.ca_dir(base);
    ws.check_no_symlink(&dir)?;
    let moved = ws.move_aside_broken_ca(base)?;
    let hierarchy_json = issuing.as_ref().map(|i| {
        let h = Hierarchy {
            format: FORMAT,
            cas: vec![root.entry.clone(), i.entry.clone()],
        };
        serde_json::to_vec_pretty(&h).expect("hierarchy serialises")
    });
    let mut names: Vec<(String, &[u8], u32)> = Vec::new();
    if let Some(i) = &issuing {
        names.extend(i.files(&format!("{}/", i.entry.dir)));
    }
    let root_files = root.files("");
    let (root_cert, root_rest) = root_files.split_last().expect("ca.crt last");
    names.extend(root_rest.iter().cloned());
    if let Some(h) = &hierarchy_json {
        names.push((HIERARCHY.to_string(), h, PUBLIC));
    }
    names.push(root_cert.clone());
    let files: Vec<NewFile<'_>> = names
        .iter()
        .map(|(n, b, m)| NewFile {
            name: n,
            bytes: b,
            mode: *m,
        })
        .collect();
    // the offline key goes out before the CA that needs it is in place
    let root_key_out = match root_key_out {
        Some(d) => Some(write_offline_key(
            d,
            base,
            &root.entry.serial,
            &root.key_pem,
        )?),
        None => None,
    };
    let staged = fsutil::stage_dir_synced(&dir, &files)?;
    fault::hit(Fault::AfterStage);
    staged.commit()?;
    fsutil::sync_dir(dir.parent().unwrap_or(ws.root()))?;
    fault::hit(Fault::AfterPlace);
    // what later runs check ca.crt against without the passphrase
    crate::ops::doctor::record_ca(ws, &root.loc, &root.built.der, "ca-init", 1)?;
    if let Some(i) = &issuing {
        crate::ops::doctor::record_ca(ws, &i.loc, &i.built.der, "ca-init", 1)?;
    }
    let detail = issuing.as_ref().map(|i| {
        format!(
            "two tiers: root {}{}, issuing CA (client) {}",
            root.entry.serial,
            if root.entry.offline {
                " (key offline)"
            } else {
                ""
            },
            i.entry.serial
        )
    });
    Ok(Placed {
        moved_aside: moved,
        sha: sha256_hex(&root.built.der),
        detail,
        root_key_out,
    })
}
