//! `issue --all`: every tenant x environment that lacks a valid certificate, planned and
//! issued on every core. The caller holds the workspace lock and unlocks one signer per
//! environment that has work ([`Plan::envs`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use openssl::x509::X509;
use time::OffsetDateTime;

use super::ca::CaSigner;
use super::issue::{self, BatchItem, IssueReport};
use super::{OpError, Result};
use crate::pki::Kind;
use crate::pki::cert::Signer;
use crate::profile::{LeafFlags, Profiles, Resolved};
use crate::workspace::{CaLoc, Workspace};

/// At most this many certificates share one durability barrier.
const BATCH: usize = 32;

/// What to issue for.
pub struct Request<'a> {
    /// Only this environment.
    pub env: Option<&'a str>,
    pub flags: &'a LeafFlags,
    /// A new certificate even where a valid one exists.
    pub force: bool,
    /// Worker threads (at least one).
    pub jobs: usize,
}

/// The certificates to issue, how many are kept as they are, and the tenant/envs whose
/// folders cannot be read (failures; the rest go ahead).
#[derive(Default)]
pub struct Plan {
    pub todo: Vec<Resolved>,
    /// The CA of each of `todo`, once [`Plan::signer_keys`] has found them.
    keys: Vec<SignerKey>,
    pub unchanged: usize,
    pub failed: Vec<Failure>,
}

/// A certificate that could not be issued (the others were).
#[derive(Debug)]
pub struct Failure {
    pub tenant: String,
    pub env: String,
    pub error: OpError,
}

/// Which CA signs a planned certificate: its environment, the tenant when the tenant
/// has CAs of its own there (`ca.scope: tenant`), and the kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignerKey {
    pub env: String,
    pub tenant: Option<String>,
    pub kind: Kind,
}

/// The signers the plan needs, each with its issuing chain and where it lives.
#[derive(Default)]
pub struct Signers(BTreeMap<SignerKey, (Signer, Vec<X509>, CaLoc)>);

impl Signers {
    pub fn add(&mut self, key: SignerKey, unlocked: CaSigner<'_>) {
        let chain = unlocked.ca.chain().to_vec();
        self.0.insert(key, (unlocked.signer, chain, unlocked.loc));
    }
}

/// The CA that signs a certificate of `r`'s settings.
pub fn key_of(profiles: &Profiles, r: &Resolved) -> Result<SignerKey> {
    let ca = profiles.resolve_ca_for(&r.env, Some(&r.tenant))?;
    Ok(SignerKey {
        env: r.env.clone(),
        tenant: ca.tenant,
        kind: r.kind.value,
    })
}

/// Plans on every core: reading and resolving a thousand profiles is a tenth of a
/// second. The first error in tenant order is the one reported, as in a plain loop.
pub fn plan(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    now: OffsetDateTime,
) -> Result<Plan> {
    let names = profiles.tenant_names();
    let per = names.len().div_ceil(req.jobs.max(1)).max(1);
    let planned: Vec<Result<Plan>> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(per)
            .map(|part| {
                s.spawn(|| {
                    part.iter()
                        .map(|t| plan_tenant(ws, profiles, req, t, now))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("planning thread"))
            .collect()
    });
    let mut plan = Plan::default();
    for p in planned {
        let p = p?;
        plan.todo.extend(p.todo);
        plan.unchanged += p.unchanged;
        plan.failed.extend(p.failed);
    }
    Ok(plan)
}

fn plan_tenant(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    tenant: &str,
    now: OffsetDateTime,
) -> Result<Plan> {
    let (path, tf) = profiles.tenant(tenant)?;
    let mut plan = Plan::default();
    for e in &tf.environments.value {
        if req.env.is_some_and(|x| x != e.value) {
            continue;
        }
        let r = profiles.resolve_parsed(tenant, &path, &tf, &e.value, req.flags)?;
        let valid = issue::current_valid(
            ws,
            tenant,
            &e.value,
            r.kind.value,
            r.renew_before.value.to_time(),
            now,
        );
        // a tenant whose CA here is its customer's is never minted one of ours: its
        // certificate comes from `csr` and `import`
        let env_external = profiles.resolve_ca(&e.value)?.external.value;
        let external = profiles
            .resolve_ca_for(&e.value, Some(tenant))?
            .external
            .value;
        match valid {
            Ok(Some(_)) if !req.force => plan.unchanged += 1,
            Ok(_) if external && !env_external => plan.failed.push(Failure {
                tenant: tenant.to_string(),
                env: e.value.clone(),
                error: OpError::TenantExternalCa {
                    env: e.value.clone(),
                    tenant: tenant.to_string(),
                },
            }),
            Ok(_) => plan.todo.push(r),
            // a folder that cannot be read fails this tenant/env only
            Err(error) => plan.failed.push(Failure {
                tenant: tenant.to_string(),
                env: e.value.clone(),
                error,
            }),
        }
    }
    Ok(plan)
}

impl Plan {
    /// The environments with work, each once, in order.
    pub fn envs(&self) -> Vec<String> {
        let mut envs: Vec<String> = self.todo.iter().map(|r| r.env.clone()).collect();
        envs.sort();
        envs.dedup();
        envs
    }

    /// The CAs that must sign: one per environment, tenant with its own CAs, and kind.
    pub fn signer_keys(&mut self, profiles: &Profiles) -> Result<Vec<SignerKey>> {
        self.keys = self
            .todo
            .iter()
            .map(|r| key_of(profiles, r))
            .collect::<Result<Vec<_>>>()?;
        let mut keys = self.keys.clone();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// Issues the plan on `jobs` workers; `progress` hears how many are done after each
    /// chunk. Workers take chunks of the plan, each written with one durability barrier
    /// (see [`issue::issue_batch`]) rather than an fsync per file. Reports come sorted by
    /// tenant and environment.
    pub fn issue(
        &self,
        ws: &Workspace,
        signers: &Signers,
        jobs: usize,
        now: OffsetDateTime,
        progress: &(dyn Fn(usize) + Sync),
    ) -> (Vec<IssueReport>, Vec<Failure>) {
        let todo = &self.todo;
        let chunk = (todo.len() / jobs.max(1) / 4).clamp(1, BATCH);
        let next = AtomicUsize::new(0);
        let issued = Mutex::new(Vec::new());
        let failed = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..jobs.max(1).min(todo.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(chunk, Ordering::Relaxed);
                        if i >= todo.len() {
                            break;
                        }
                        let end = (i + chunk).min(todo.len());
                        let part = &todo[i..end];
                        let keys = self.keys.get(i..end).unwrap_or(&[]);
                        let (ok, bad) = issue_part(ws, signers, part, keys, now);
                        issued.lock().expect("no worker panics").extend(ok);
                        failed.lock().expect("no worker panics").extend(bad);
                        progress(part.len());
                    }
                });
            }
        });
        let mut issued = issued.into_inner().expect("no worker panics");
        issued.sort_by(|x, y| (&x.tenant, &x.env).cmp(&(&y.tenant, &y.env)));
        (issued, failed.into_inner().expect("no worker panics"))
    }
}

fn issue_part(
    ws: &Workspace,
    signers: &Signers,
    part: &[Resolved],
    keys: &[SignerKey],
    now: OffsetDateTime,
) -> (Vec<IssueReport>, Vec<Failure>) {
    let mut items = Vec::with_capacity(part.len());
    let mut failed = Vec::new();
    for (n, r) in part.iter().enumerate() {
        let found = keys.get(n).and_then(|k| signers.0.get(k));
        match found {
            Some((signer, chain, ca)) => items.push(BatchItem {
                resolved: r,
                with: issue::SignWith { signer, chain, ca },
            }),
            None => failed.push(Failure {
                tenant: r.tenant.clone(),
                env: r.env.clone(),
                error: OpError::NoSigner { env: r.env.clone() },
            }),
        }
    }
    let mut issued = Vec::new();
    for (it, res) in items
        .iter()
        .zip(issue::issue_batch(ws, &items, now, "issue"))
    {
        match res {
            Ok(rep) => issued.push(rep),
            Err(e) => failed.push(Failure {
                tenant: it.resolved.tenant.clone(),
                env: it.resolved.env.clone(),
                error: e,
            }),
        }
    }
    (issued, failed)
}
