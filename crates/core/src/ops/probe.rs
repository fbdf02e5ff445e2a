//! `probe`: present a client certificate to a live endpoint and say in plain words what
//! works and what does not. This side loads the identity (from the workspace or from
//! files), knows what the workspace says about it (revoked, superseded, expired) and
//! judges the exchange; `net` makes the handshake and the HTTP round trip.

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

pub use crate::net::probe::{CertBrief, Exchange, Identity, Request};
use crate::net::probe::{brief, exchange};
use crate::ops::{CertNeed, OpError, Result};
use crate::pki::inspect::certificates;
use crate::pki::keys::PrivateKey;
use crate::pki::{Kind, PkiError, pkcs12};
use crate::workspace::inventory::{Filter, Status};
use crate::workspace::{Workspace, absolute, fsutil};

/// What a probe found, and what it means.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// What happened on the wire.
    #[serde(flatten)]
    pub exchange: Exchange,
    /// Facts about our certificate known locally (e.g. revoked in the workspace).
    pub local_notes: Vec<String>,
    pub ok: bool,
    pub diagnosis: Vec<String>,
    /// What the OCSP responder our certificate names says of it (absent when it names
    /// none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<OcspNote>,
    /// What our certificate says and the workspace knows, for the diagnosis.
    #[serde(skip)]
    facts: Facts,
}

/// The OCSP status of the certificate we present, from the responder it names.
#[derive(Clone, Debug, Serialize)]
pub struct OcspNote {
    pub url: String,
    /// good, revoked, unknown or no-answer.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Asks the responder `id`'s certificate names, when it names one; the issuer comes from
/// the chain we present or, for a certificate of this workspace, its CA set.
fn ocsp_note(
    ws: Option<&Workspace>,
    id: &Identity,
    facts: &Facts,
    timeout: std::time::Duration,
) -> Option<OcspNote> {
    use crate::net::ocsp_client::{self, Verdict};
    let url = ocsp_client::responder_url(&id.cert)?;
    let mut trust: Vec<X509> = id.chain.clone();
    // the CA set of a certificate of this workspace, as Facts found it
    if let (Some(ws), Some(issuer)) = (ws, &facts.issuer)
        && let Ok(set) = crate::ops::ca::read_set(ws, &issuer.set())
    {
        trust.extend(set.cas.iter().filter_map(|c| X509::from_der(&c.der).ok()));
    }
    let issuer = trust.iter().find(|c| {
        c.public_key()
            .and_then(|k| id.cert.verify(&k))
            .unwrap_or(false)
    })?;
    let (status, detail) = match ocsp_client::check(&id.cert, issuer, &trust, &url, timeout) {
        Verdict::Good => ("good", None),
        Verdict::Revoked { reason } => ("revoked", Some(reason)),
        Verdict::Unknown => ("unknown", None),
        Verdict::NoAnswer(why) => ("no-answer", Some(why)),
    };
    Some(OcspNote {
        url,
        status,
        detail,
    })
}

/// What is wrong with the certificate we present, as far as we can tell without the
/// server: its dates, its EKU, this workspace's records.
#[derive(Clone, Debug, Default)]
struct Facts {
    expired: Option<OffsetDateTime>,
    not_yet_valid: Option<OffsetDateTime>,
    /// The EKUs it has, when they do not include clientAuth.
    wrong_eku: Option<Vec<String>>,
    revoked: bool,
    /// Tenant and environment, when the certificate is one of this workspace's.
    owner: Option<(String, String)>,
    /// The CA of this workspace that signed it, when it is one of ours.
    issuer: Option<crate::workspace::CaLoc>,
    /// The workspace certificate came from an external CA (`import`).
    imported: bool,
}

impl Facts {
    fn of(ws: Option<&Workspace>, cert: &X509, now: OffsetDateTime) -> Facts {
        let mut f = Facts::default();
        let Ok(der) = cert.to_der() else {
            return f;
        };
        if let Ok(info) = crate::pki::inspect::cert_info(&der) {
            if info.not_after <= now {
                f.expired = Some(info.not_after);
            }
            if info.not_before > now {
                f.not_yet_valid = Some(info.not_before);
            }
            let eku = &info.extended_key_usage;
            if !eku.is_empty()
                && !eku
                    .iter()
                    .any(|e| e == "clientAuth" || e == "anyExtendedKeyUsage")
            {
                f.wrong_eku = Some(eku.clone());
            }
        }
        if let (Some(ws), Some(b)) = (ws, brief(cert))
            && let Ok(leaves) = ws.leaves(&Filter::default())
            && let Some(rec) = leaves.into_iter().find(|r| r.meta.serial == b.serial)
        {
            // the state of the CA that signed it (an issuing CA in two tiers)
            let revoked_in_state = ws
                .load_ca_state(crate::ops::ca::issuer_of(&rec.meta))
                .ok()
                .is_some_and(|st| st.revocations.iter().any(|r| r.serial == b.serial));
            f.revoked = revoked_in_state || rec.meta.status == Status::Revoked;
            f.owner = Some((rec.meta.tenant.clone(), rec.meta.env.clone()));
            f.issuer = Some(crate::ops::ca::issuer_of(&rec.meta));
            f.imported = rec.meta.origin == "import";
        }
        f
    }

    /// The `issue` command that replaces it, with its tenant and env when known.
    fn reissue(&self) -> String {
        match &self.owner {
            // never `issue --force` for an imported certificate: it would discard it; a
            // new request goes to the external CA, and `import` brings its answer back
            Some((t, e)) if self.imported => format!("mtlsctl csr --tenant {t} --env {e}"),
            Some((t, e)) => format!("mtlsctl issue --tenant {t} --env {e} --force"),
            None => "mtlsctl issue --tenant TENANT --env ENV --force".into(),
        }
    }
}

/// Runs the probe: what the workspace (when there is one) knows about the certificate we
/// present, the exchange, and its diagnosis. Network failures are findings, not errors:
/// they land in the report.
/// The `Authorization` header of HTTP Basic authentication for `user:password`.
pub fn basic_auth(user_password: &str) -> (String, String) {
    (
        "Authorization".into(),
        format!(
            "Basic {}",
            crate::pki::fingerprint::base64(user_password.as_bytes())
        ),
    )
}

pub fn probe(ws: Option<&Workspace>, req: &Request<'_>) -> Result<ProbeReport> {
    let now = OffsetDateTime::now_utc();
    let local_notes = match (ws, req.identity) {
        (Some(ws), Some(id)) => local_notes(ws, &id.cert, now),
        (None, Some(id)) => local_notes_of(None, &id.cert, now),
        _ => Vec::new(),
    };
    let facts = req
        .identity
        .map(|id| Facts::of(ws, &id.cert, now))
        .unwrap_or_default();
    let ocsp = req
        .identity
        .and_then(|id| ocsp_note(ws, id, &facts, req.timeout));
    let mut local_notes = local_notes;
    if let Some(o) = &ocsp
        && o.status != "good"
    {
        local_notes.push(format!(
            "the OCSP responder our certificate names ({}) says: {}{}",
            o.url,
            o.status,
            o.detail
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ));
    }
    let mut rep = ProbeReport {
        exchange: exchange(req)?,
        local_notes,
        ok: false,
        diagnosis: Vec::new(),
        ocsp,
        facts,
    };
    diagnose(&mut rep);
    Ok(rep)
}

/// The tenant's staged successor (`probe --staged`): the certificate `activate` will
/// make current, presented to check the gateway accepts it already.
pub fn staged_identity(ws: &Workspace, tenant: &str, env: &str) -> Result<(Identity, String)> {
    let rec = ws.staged_leaf(tenant, env, Kind::Client)?.ok_or_else(|| {
        OpError::Msg(format!(
            "--staged: {tenant}/{env} has no staged certificate; stage one with mtlsctl renew --tenant {tenant} --env {env} --stage"
        ))
    })?;
    if !rec.key_path().is_file() {
        return Err(OpError::NoKeyBeside { dir: rec.dir });
    }
    let mut id = file_identity(&rec.cert_path(), &rec.key_path(), None)?;
    if id.chain.is_empty() && rec.chain_path().is_file() {
        id.chain = load_certs(&rec.chain_path())?;
    }
    id.source = format!(
        "{tenant}/{env} staged client certificate ({})",
        rec.meta.serial
    );
    Ok((id, rec.meta.serial))
}

/// Records a probe of a workspace certificate as an audit line `probe` (serial, pass or
/// fail, the URL), which `activate` reads. The caller holds the lock.
pub fn audit_probe(
    ws: &Workspace,
    tenant: &str,
    env: &str,
    serial: &str,
    ok: bool,
    url: &str,
) -> Result<()> {
    let mut ev = crate::workspace::audit::Event::new("probe");
    ev.tenant = Some(tenant);
    ev.env = Some(env);
    ev.kind = Some("client");
    ev.serial = Some(serial);
    ev.detail = Some(format!(
        "{} {}",
        if ok {
            super::activate::PROBE_PASS
        } else {
            super::activate::PROBE_FAIL
        },
        crate::pki::text::sanitize(url)
    ));
    ws.audit(&ev)?;
    Ok(())
}

/// The tenant's current client certificate in the workspace.
pub fn tenant_identity(ws: &Workspace, tenant: &str, env: &str) -> Result<Identity> {
    let rec =
        ws.current_leaf(tenant, env, Kind::Client)?
            .ok_or_else(|| OpError::NoCurrentCert {
                tenant: tenant.to_string(),
                env: env.to_string(),
                kind: Some(Kind::Client),
                need: CertNeed::Probe,
            })?;
    if !rec.key_path().is_file() {
        return Err(OpError::NoKeyBeside { dir: rec.dir });
    }
    let mut id = file_identity(&rec.cert_path(), &rec.key_path(), None)?;
    if id.chain.is_empty() && rec.chain_path().is_file() {
        id.chain = load_certs(&rec.chain_path())?;
    }
    id.source = format!(
        "{tenant}/{env} current client certificate ({})",
        rec.meta.serial
    );
    Ok(id)
}

/// A certificate file (a full chain is fine) and its key.
pub fn file_identity(
    cert: &Path,
    key: &Path,
    passphrase: Option<&SecretString>,
) -> Result<Identity> {
    let mut certs = load_certs(cert)?;
    let leaf = certs.remove(0);
    let kb = zeroize::Zeroizing::new(fsutil::read(key)?);
    let k = PrivateKey::from_pem_or_der(&kb, passphrase).map_err(|e| match e {
        PkiError::PassphraseNeeded => OpError::ProbeKeyPassphraseNeeded {
            path: key.to_path_buf(),
        },
        o => OpError::input(key, o),
    })?;
    check_pair(&leaf, k.pkey(), key)?;
    Ok(Identity {
        cert: leaf,
        chain: certs,
        key: k.pkey().clone(),
        source: absolute(cert).display().to_string(),
    })
}

/// A PKCS#12 bundle.
pub fn pfx_identity(path: &Path, password: &SecretString) -> Result<Identity> {
    let der = fsutil::read(path)?;
    let o = pkcs12::open(&der, password).map_err(|e| match e {
        PkiError::PfxPassword => OpError::PfxPassword {
            path: path.to_path_buf(),
        },
        o => o.into(),
    })?;
    let (Some(cert), Some(key)) = (o.cert, o.key) else {
        return Err(OpError::PfxIncomplete {
            path: path.to_path_buf(),
        });
    };
    check_pair(&cert, key.pkey(), path)?;
    Ok(Identity {
        cert,
        chain: o.chain,
        key: key.pkey().clone(),
        source: absolute(path).display().to_string(),
    })
}

fn check_pair(cert: &X509, key: &PKey<Private>, path: &Path) -> Result<()> {
    let ok = cert.public_key().map(|p| p.public_eq(key)).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(OpError::KeyNotOfCert {
            key: path.to_path_buf(),
        })
    }
}

pub fn load_certs(p: &Path) -> Result<Vec<X509>> {
    let data = fsutil::read(p)?;
    let ders = certificates(&data).map_err(|e| OpError::input(p, e))?;
    ders.iter()
        .map(|d| X509::from_der(d).map_err(|e| PkiError::from(e).into()))
        .collect()
}

/// What the workspace knows about a certificate we present: revoked, superseded or
/// expired. Empty when the certificate is not from this workspace.
pub fn local_notes(ws: &Workspace, cert: &X509, now: OffsetDateTime) -> Vec<String> {
    local_notes_of(Some(ws), cert, now)
}

fn local_notes_of(ws: Option<&Workspace>, cert: &X509, now: OffsetDateTime) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(b) = brief(cert) else {
        return notes;
    };
    let f = Facts::of(None, cert, now);
    if b.not_after <= now {
        notes.push(format!(
            "our certificate {} expired on {}",
            b.serial,
            crate::pki::text::rfc3339(b.not_after)
        ));
    }
    if let Some(nb) = f.not_yet_valid {
        notes.push(format!(
            "our certificate {} is not valid before {}",
            b.serial,
            crate::pki::text::rfc3339(nb)
        ));
    }
    if let Some(eku) = &f.wrong_eku {
        notes.push(format!(
            "our certificate {} is not for client authentication (extended key usage: {})",
            b.serial,
            eku.join(", ")
        ));
    }
    let Some(ws) = ws else {
        return notes;
    };
    let Ok(leaves) = ws.leaves(&Filter::default()) else {
        return notes;
    };
    let Some(rec) = leaves.into_iter().find(|r| r.meta.serial == b.serial) else {
        return notes;
    };
    let env = rec.meta.env.clone();
    let in_state = ws
        .load_ca_state(&env)
        .ok()
        .and_then(|st| st.revocations.into_iter().find(|r| r.serial == b.serial));
    if let Some(r) = in_state {
        notes.push(format!(
            "our certificate {} ({}/{}) was revoked on {} ({}) by this workspace's {env} CA",
            b.serial,
            rec.meta.tenant,
            env,
            crate::pki::text::rfc3339(r.revoked_at),
            r.reason
        ));
    } else if rec.meta.status == Status::Revoked {
        notes.push(format!(
            "our certificate {} ({}/{}) is marked revoked in this workspace",
            b.serial, rec.meta.tenant, env
        ));
    } else if rec.meta.status == Status::Superseded {
        notes.push(format!(
            "our certificate {} ({}/{}) has been superseded by {}",
            b.serial,
            rec.meta.tenant,
            env,
            rec.meta.superseded_by.clone().unwrap_or_default()
        ));
    }
    notes
}

/// Whether the exchange shows the server refusing our certificate, and how.
enum Refusal {
    None,
    NoCertSent,
    CertRefused(String),
}

fn refusal(rep: &Exchange) -> Refusal {
    if let Some(status) = rep.http_status {
        let body = rep.http_body_excerpt.as_deref().unwrap_or("");
        if body.contains("No required SSL certificate was sent") || status == 496 {
            return Refusal::NoCertSent;
        }
        if body.contains("SSL certificate error") || status == 495 {
            return Refusal::CertRefused(format!(
                "HTTP {status}: {}",
                rep.http_reason.clone().unwrap_or_default()
            ));
        }
        return Refusal::None;
    }
    let Some(err) = &rep.error else {
        return Refusal::None;
    };
    let e = err.to_ascii_lowercase();
    if !rep.connected {
        return Refusal::None;
    }
    if e.contains("certificate required") {
        return Refusal::NoCertSent;
    }
    let tls_refusal = ["alert", "certificate", "handshake failure"];
    if tls_refusal.iter().any(|k| e.contains(k)) && (rep.client_cert_requested || rep.handshake) {
        if rep.client_certificate.is_none() {
            return Refusal::NoCertSent;
        }
        return Refusal::CertRefused(err.clone());
    }
    Refusal::None
}

/// Fills `ok`, `client_cert_accepted` and the diagnosis.
fn diagnose(rep: &mut ProbeReport) {
    let x = &rep.exchange;
    let mut d = Vec::new();
    if !x.connected {
        d.push(format!(
            "Cannot reach the server ({}): check the host, the port and any firewall between us.",
            x.error.clone().unwrap_or_default()
        ));
        rep.diagnosis = d;
        rep.ok = false;
        return;
    }
    let refused = refusal(x);
    let accepted = match &refused {
        Refusal::None => answer_advice(x, &rep.facts, &mut d),
        Refusal::NoCertSent => {
            no_cert_advice(x, &mut d);
            Some(false)
        }
        Refusal::CertRefused(how) => {
            refused_advice(x, &rep.facts, how, &mut d);
            Some(false)
        }
    };
    let x = &mut rep.exchange;
    x.client_cert_accepted = accepted;
    if !x.server_verified && x.handshake {
        d.push(format!(
            "The server's certificate does not verify against {}: {}. Give the gateway's CA with --ca, or the operator must fix its server certificate.",
            x.server_trust,
            x.server_verify_error.clone().unwrap_or_else(|| "no certificate".into())
        ));
    }
    rep.ok = x.handshake
        && x.server_verified
        && matches!(refused, Refusal::None)
        && x.http_status.is_some_and(|s| (200..400).contains(&s))
        && x.client_cert_requested
        && x.client_certificate.is_some()
        && x.client_cert_accepted == Some(true)
        // a gateway that lets in what we revoked is not working
        && !rep.facts.revoked;
    rep.diagnosis = d;
}

/// The CA names the server asked for, quoted, and the issuer of our certificate.
fn names_and_issuer(x: &Exchange) -> (String, String) {
    let names = x
        .acceptable_ca_names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let ours_issuer = x
        .client_certificate
        .as_ref()
        .map(|c| c.issuer.clone())
        .unwrap_or_default();
    (names, ours_issuer)
}

/// The server says no certificate of ours arrived.
fn no_cert_advice(x: &Exchange, d: &mut Vec<String>) {
    let (names, ours_issuer) = names_and_issuer(x);
    if x.client_certificate.is_none() {
        d.push("The server requires a client certificate and we sent none: probe with --tenant/--env, --cert/--key or --pfx.".into());
    } else if x.client_chains_to_acceptable_ca == Some(false) {
        d.push(format!(
            "The server asks for certificates from {names} but ours is issued by '{ours_issuer}', so none was sent: the operator has not installed our ca-chain.pem for this environment, or this is the wrong environment's certificate."
        ));
    } else {
        d.push("The server says no client certificate arrived: check that the certificate and key are readable and that a proxy in front of the gateway does not terminate TLS.".into());
    }
}

/// The server refused the certificate we sent; `how` is the alert or HTTP status.
fn refused_advice(x: &Exchange, facts: &Facts, how: &str, d: &mut Vec<String>) {
    let (names, ours_issuer) = names_and_issuer(x);
    if x.client_chains_to_acceptable_ca == Some(false) {
        d.push(format!(
            "The server asks for certificates from {names} but ours is issued by '{ours_issuer}': the operator has not installed our ca-chain.pem for this environment, or this is the wrong environment's certificate."
        ));
        return;
    }
    let mut why = Vec::new();
    let l = how.to_ascii_lowercase();
    if l.contains("revoked") {
        why.push("the server says it is revoked".to_string());
    }
    if l.contains("expired") {
        why.push("the server says a certificate or CRL has expired".to_string());
    }
    if l.contains("unknown ca") {
        why.push("the server does not trust our CA".to_string());
    }
    let base = if x.acceptable_ca_names.is_empty() {
        "The server refused our certificate".to_string()
    } else {
        format!(
            "The server refused our certificate although it chains to a CA the server asks for ({names})"
        )
    };
    let fix = facts.reissue();
    if facts.revoked {
        d.push(format!(
            "{base}: our certificate is revoked in this workspace's records and the gateway's CRL lists it. Issue a new one with `{fix}` (`renew` skips revoked certificates), hand it over, and probe again."
        ));
    } else if let Some(t) = facts.expired {
        d.push(format!(
            "{base}: our certificate expired on {}. Issue a new one with `{fix}` and probe again.",
            crate::pki::text::rfc3339(t)
        ));
    } else if let Some(t) = facts.not_yet_valid {
        d.push(format!(
            "{base}: our certificate is not valid before {}. Wait until then, check the clocks of this machine and the gateway, or issue one valid now with `{fix}`.",
            crate::pki::text::rfc3339(t)
        ));
    } else if let Some(eku) = &facts.wrong_eku {
        d.push(format!(
            "{base}: our certificate is not a client certificate (extended key usage {}, no clientAuth). Present the tenant's client certificate (`probe --tenant T --env E`), or issue one with `{fix}`.",
            eku.join(", ")
        ));
    } else if !why.is_empty() {
        d.push(format!("{base}: {}.", why.join("; ")));
    } else {
        d.push(format!(
            "{base} ({how}). Likely causes: it is revoked in the CRL the gateway holds, it has expired, the gateway's CRL has passed its next update (then every client is refused: send a fresh crl.pem), or ssl_verify_depth is too low for the chain."
        ));
    }
}

/// No refusal: what the HTTP answer, or the error that ended the exchange, says. Returns
/// whether our certificate was accepted (None: not known).
fn answer_advice(x: &Exchange, facts: &Facts, d: &mut Vec<String>) -> Option<bool> {
    let Some(status) = x.http_status else {
        if let Some(e) = &x.error {
            if x.handshake && x.client_cert_requested {
                d.push(format!(
                    "The exchange failed after the handshake ({e}): the server may have refused our certificate without a TLS alert (its log says why), or its backend failed."
                ));
            } else {
                d.push(format!("The exchange failed: {e}."));
            }
        }
        return None;
    };
    let accepted = (x.client_certificate.is_some() && x.client_cert_requested).then_some(true);
    match status {
        200..=399 => {
            if !x.client_cert_requested {
                d.push("The server did not ask for a client certificate: mutual TLS is not enforced on this endpoint.".into());
            } else if x.client_certificate.is_none() {
                d.push("The server asked for a client certificate but answered without one: client certificates are optional here (ssl_verify_client optional?).".into());
            } else if facts.revoked {
                let (send, crl) = match &facts.owner {
                    Some((t, e)) => (
                        format!("`mtlsctl export --tenant {t} --env {e}` (its crl.pem)"),
                        format!("`mtlsctl crl --env {e}`"),
                    ),
                    None => (
                        "the export's crl.pem".to_string(),
                        "`mtlsctl crl --env ENV`".to_string(),
                    ),
                };
                d.push(format!(
                    "The gateway accepted our certificate although this workspace revoked it (HTTP {status}): it holds an old CRL or checks none. Send it the current CRL, {send} (re-signed by {crl}), and have its operator turn CRL checking on (nginx ssl_crl, F5 CRL file or CRLDP), or check by OCSP where the certificates name a responder."
                ));
            } else if !x.server_verified {
                d.push(format!(
                    "The gateway accepted our certificate and answered HTTP {status}, but the server's certificate is not verified, so the path is not proven (see below)."
                ));
            } else {
                d.push(format!(
                    "The whole path works: the gateway accepted our certificate and the request was answered with HTTP {status}."
                ));
            }
        }
        401 if x.credentials_sent => d.push("The gateway accepted the TLS connection but refused the credentials we sent (HTTP 401): check the user and password in --basic-auth-file (or the token in --header) with the backend's owner.".into()),
        401 => d.push("The gateway accepted the TLS connection but the request got HTTP 401: the backend wants credentials; send them with --basic-auth-file or --header.".into()),
        403 if x.client_certificate.is_none() => {
            d.push(format!(
                "HTTP 403 and we sent no client certificate: the gateway wants one on this path ({}) although TLS let us in without (optional at TLS, required at HTTP, as Express Gateway and Tyk do). Probe with --tenant/--env, --cert/--key or --pfx.",
                path_of(&x.url)
            ));
            return None;
        }
        403 => d.push("HTTP 403: the gateway or backend refuses this client after TLS; check certificate mappings or allow-lists (IIS mapping, Tyk certificate ID, a fingerprint or subject check).".into()),
        502..=504 => d.push(format!("HTTP {status}: the gateway accepted us but could not get an answer from its backend.")),
        _ => d.push(format!("The request got HTTP {status} {}.", x.http_reason.clone().unwrap_or_default())),
    }
    accepted
}

/// The path of a URL, for the report.
fn path_of(url: &str) -> String {
    crate::net::probe::Target::parse(url)
        .map(|t| t.path)
        .unwrap_or_else(|_| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(exchange: Exchange) -> ProbeReport {
        let mut r = ProbeReport {
            exchange,
            local_notes: Vec::new(),
            ok: false,
            diagnosis: Vec::new(),
            ocsp: None,
            facts: Facts::default(),
        };
        diagnose(&mut r);
        r
    }

    #[test]
    fn nginx_refusals_are_recognised() {
        let mut x = Exchange {
            url: "https://x/".into(),
            connected: true,
            handshake: true,
            server_verified: true,
            client_cert_requested: true,
            http_status: Some(400),
            http_body_excerpt: Some("<center>No required SSL certificate was sent</center>".into()),
            ..Exchange::default()
        };
        let r = report(x.clone());
        assert!(!r.ok);
        assert!(r.diagnosis[0].contains("sent none"));
        x.http_body_excerpt = Some("<center>The SSL certificate error</center>".into());
        x.client_certificate = Some(CertBrief {
            subject: "CN=a".into(),
            issuer: "CN=Platform nonprod CA".into(),
            serial: "01".into(),
            not_after: OffsetDateTime::now_utc(),
        });
        x.acceptable_ca_names = vec!["CN=Platform prod CA".into()];
        x.client_chains_to_acceptable_ca = Some(false);
        let r = report(x.clone());
        assert!(
            r.diagnosis[0]
                .contains("'CN=Platform prod CA' but ours is issued by 'CN=Platform nonprod CA'")
        );
        x.http_status = Some(200);
        x.http_body_excerpt = Some("ok".into());
        x.client_chains_to_acceptable_ca = Some(true);
        let r = report(x);
        assert!(r.ok, "{:?}", r.diagnosis);
        assert_eq!(r.exchange.client_cert_accepted, Some(true));
    }

    #[test]
    fn the_report_reads_as_one_flat_object() {
        // the JSON contract: the exchange's fields, then the judgement, in one object
        let s = serde_json::to_string(&report(Exchange::default())).unwrap();
        assert!(s.starts_with(r#"{"url":"#), "{s}");
        let at = |k: &str| s.find(&format!(r#","{k}":"#)).expect(k);
        assert!(at("error") < at("local_notes"), "{s}");
        assert!(
            at("local_notes") < at("ok") && at("ok") < at("diagnosis"),
            "{s}"
        );
    }
}
