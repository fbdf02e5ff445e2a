//! `ocsp serve`: an RFC 6960 responder for every CA of one or more environments, answering
//! from the workspace's records (each CA's state.json, re-read when it changes, and the
//! leaves it issued), plus each CA's current CRL at the path of its distribution point
//! and its certificate at its caIssuers path. Each CA answers through a delegated
//! responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck) that lives in memory
//! only: it is signed when the responder starts and again before it runs out, each time
//! with an audit line, so nothing but audit.log is written and no key of it ever touches
//! the disk. HTTP is `net::http`'s; OCSP encoding is OpenSSL's (`pki::ocsp`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

use secrecy::SecretString;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::{OpError, Result};
use crate::net::httpd::{HttpRequest, HttpResponse};
use crate::pki::cert::{CLOCK_SKEW, Signer, whole_seconds};
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::ocsp::{self, IssuerHashes, Refusal, Responder, Status};
use crate::pki::{fingerprint, serial};
use crate::profile::Profiles;
use crate::workspace::audit::Event;
use crate::workspace::hierarchy::CaRole;
use crate::workspace::inventory::{CaState, Filter};
use crate::workspace::{CaLoc, Workspace};

/// How long a responder certificate lives; it is replaced once a third of that is left.
pub const RESPONDER_VALIDITY: Duration = Duration::days(2);
/// How often the index of issued serials may be rebuilt when a serial is not in it.
const INDEX_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// One CA the responder answers for.
struct Served {
    loc: CaLoc,
    hashes: IssuerHashes,
    cert_der: Vec<u8>,
    signer: Signer,
    ocsp_validity: Duration,
    responder: RwLock<Responder>,
    state: Mutex<StateCache>,
    crl_path: Option<String>,
    cert_path: Option<String>,
}

#[derive(Default)]
struct StateCache {
    stamp: Option<(SystemTime, u64)>,
    revoked: HashMap<String, (OffsetDateTime, Option<u8>)>,
}

/// What the responder serves, as `ocsp serve` prints it at the start.
#[derive(Debug, Serialize, Clone)]
pub struct ServedCa {
    pub ca: String,
    pub subject: String,
    pub serial: String,
    pub responder_serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub responder_not_after: OffsetDateTime,
    /// The URL path its CRL (DER) is served at, from `ca.crl_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crl_path: Option<String>,
    /// The URL path its certificate (DER) is served at, from `ca.issuer_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<String>,
}

/// One JSON line per request.
#[derive(Debug, Serialize)]
pub struct LogLine {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub peer: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `ocsp`, `crl`, `ca-cert` or `other`.
    pub kind: &'static str,
    /// successful, malformedRequest, unauthorized, internalError (OCSP only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocsp_status: Option<&'static str>,
    /// The CA asked about or served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// serial:good|revoked|unknown, per certificate asked about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certs: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nonce: bool,
    pub micros: u64,
}

/// The responder: every CA it serves, and the index of what they issued.
pub struct Service {
    ws: Workspace,
    envs: Vec<String>,
    cas: Vec<Served>,
    index: Mutex<(std::time::Instant, HashMap<String, CaLoc>)>,
    cache: Mutex<HashMap<(usize, String), Cached>>,
}

/// A signed answer to a request without a nonce, reused (RFC 5019 2.2.1 allows
/// pre-produced responses) while the CA's state.json is unchanged, the same responder
/// signs, and it is younger than [`CACHE_FOR`] (and a quarter of ca.ocsp_validity).
/// Answers with an unknown status are never kept: an issuance would change them.
struct Cached {
    der: Vec<u8>,
    made: std::time::Instant,
    stamp: Option<(SystemTime, u64)>,
    responder_not_after: OffsetDateTime,
}

/// The longest a signed response is reused.
const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many cached responses (the cache is emptied when full: memory stays bounded).
const CACHE_MAX: usize = 10_000;

fn state_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

fn url_path(u: &str) -> Option<String> {
    let rest = u.strip_prefix("http://")?;
    let i = rest.find('/')?;
    Some(rest[i..].to_string())
}

fn new_responder(
    ws: &Workspace,
    loc: &CaLoc,
    signer: &Signer,
    now: OffsetDateTime,
) -> Result<Responder> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let s = serial::random_serial()?;
    let built = ocsp::responder_cert(signer, &key, RESPONDER_VALIDITY, now, &s)?;
    let cert = openssl::x509::X509::from_der(&built.der).map_err(crate::pki::PkiError::from)?;
    let hex = serial::to_hex(&built.serial);
    let sha = fingerprint::hex(&fingerprint::sha256(&built.der));
    let mut ev = Event::new("ocsp-responder-cert");
    ev.env = Some(&loc.env);
    ev.tenant = loc.tenant.as_deref();
    ev.serial = Some(&hex);
    ev.sha256 = Some(&sha);
    ev.detail = Some(format!(
        "{loc}: in-memory OCSP responder certificate of `mtlsctl ocsp serve`, not stored, valid until {}",
        crate::pki::text::rfc3339(built.not_after)
    ));
    {
        let _lock = ws.lock()?;
        ws.audit(&ev)?;
    }
    Ok(Responder {
        cert,
        key,
        not_after: built.not_after,
    })
}

fn reason_code(name: &str) -> Option<u8> {
    let r = crate::pki::crl::parse_reason(name).ok()?;
    let code = r as u8;
    (code != 0).then_some(code)
}

impl Service {
    /// Opens every CA of `envs` that has not expired (cross-certificates aside), unlocks
    /// each with the passphrase `pass` gives for its environment, and signs a responder
    /// certificate for it (an audit line each).
    pub fn open(
        ws: &Workspace,
        profiles: &Profiles,
        envs: &[String],
        pass: &dyn Fn(&str) -> Option<SecretString>,
        now: OffsetDateTime,
    ) -> Result<Service> {
        let mut cas = Vec::new();
        for env in envs {
            profiles.check_env(env)?;
            let bases = super::ca::set_bases(ws, env);
            if bases.is_empty() {
                super::ca::ca_cert_der(ws, profiles, env)?;
            }
            let passphrase = pass(env);
            for base in bases {
                let set = super::ca::read_set(ws, &base)?;
                let settings = profiles.resolve_ca_for(env, base.tenant.as_deref())?;
                for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
                    if c.entry.not_after <= now || c.entry.offline {
                        continue;
                    }
                    let signer = super::ca::load_signer(ws, &c.loc, passphrase.as_ref(), None)?;
                    let ser = c.entry.serial.to_ascii_lowercase();
                    let urls = settings.revocation_urls(profiles, base.tenant.as_deref(), &ser)?;
                    let responder = new_responder(ws, &c.loc, &signer, now)?;
                    cas.push(Served {
                        loc: c.loc.clone(),
                        hashes: IssuerHashes::of(&c.der)?,
                        cert_der: c.der.clone(),
                        signer,
                        ocsp_validity: settings.ocsp_validity.value.to_time(),
                        responder: RwLock::new(responder),
                        state: Mutex::new(StateCache::default()),
                        crl_path: urls.crl.as_deref().and_then(url_path),
                        cert_path: urls.issuer.as_deref().and_then(url_path),
                    });
                }
            }
        }
        if cas.is_empty() {
            return Err(OpError::NoSigner {
                env: envs.join(", "),
            });
        }
        let svc = Service {
            ws: ws.clone(),
            envs: envs.to_vec(),
            cas,
            index: Mutex::new((std::time::Instant::now(), HashMap::new())),
            cache: Mutex::new(HashMap::new()),
        };
        svc.rebuild_index();
        Ok(svc)
    }

    /// What is served, for the start-up report.
    pub fn served(&self) -> Vec<ServedCa> {
        self.cas
            .iter()
            .map(|c| {
                let r = self.read_responder(c);
                let info = crate::pki::inspect::cert_info(&c.cert_der).ok();
                ServedCa {
                    ca: c.loc.to_string(),
                    subject: info.as_ref().map(|i| i.subject.clone()).unwrap_or_default(),
                    serial: info
                        .map(|i| i.serial.to_ascii_lowercase())
                        .unwrap_or_default(),
                    responder_serial: crate::pki::inspect::cert_info(
                        &r.0.to_der().unwrap_or_default(),
                    )
                    .map(|i| i.serial.to_ascii_lowercase())
                    .unwrap_or_default(),
                    responder_not_after: r.1,
                    crl_path: c.crl_path.clone(),
                    cert_path: c.cert_path.clone(),
                }
            })
            .collect()
    }

    fn read_responder(&self, c: &Served) -> (openssl::x509::X509, OffsetDateTime) {
        let r = c.responder.read().unwrap_or_else(|p| p.into_inner());
        (r.cert.clone(), r.not_after)
    }

    /// Replaces every responder certificate with less than a third of its life left.
    /// Returns the CAs renewed. Run it from time to time (the binary does every minute).
    pub fn renew_due(&self, now: OffsetDateTime) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in &self.cas {
            let due = {
                let r = c.responder.read().unwrap_or_else(|p| p.into_inner());
                r.not_after - now < RESPONDER_VALIDITY / 3
            };
            if due {
                let fresh = new_responder(&self.ws, &c.loc, &c.signer, now)?;
                *c.responder.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                out.push(c.loc.to_string());
            }
        }
        Ok(out)
    }

    fn rebuild_index(&self) {
        let mut map = HashMap::new();
        for env in &self.envs {
            let inv = self.ws.inventory(&Filter {
                env: Some(env),
                ..Filter::default()
            });
            for l in inv.leaves {
                map.insert(l.meta.serial.clone(), super::ca::issuer_of(&l.meta));
            }
            // the CAs a CA certified: issuing CAs and cross-certificates (nginx's
            // ssl_ocsp asks about every certificate of the chain)
            for base in super::ca::set_bases(&self.ws, env) {
                let Ok(set) = super::ca::read_set(&self.ws, &base) else {
                    continue;
                };
                for c in &set.cas {
                    if let Some(parent) = &c.entry.parent {
                        map.insert(
                            c.entry.serial.to_ascii_lowercase(),
                            super::ca::loc_in(&base, parent),
                        );
                    }
                }
            }
        }
        let mut g = self.index.lock().unwrap_or_else(|p| p.into_inner());
        *g = (std::time::Instant::now(), map);
    }

    /// Whether the CA `loc` issued `serial` (the index is rebuilt on a miss, at most
    /// every [`INDEX_REFRESH`], so a certificate issued after the start is known).
    fn issued(&self, loc: &CaLoc, serial: &str) -> bool {
        {
            let g = self.index.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(l) = g.1.get(serial) {
                return l == loc;
            }
            if g.0.elapsed() < INDEX_REFRESH {
                return false;
            }
        }
        self.rebuild_index();
        let g = self.index.lock().unwrap_or_else(|p| p.into_inner());
        g.1.get(serial).is_some_and(|l| l == loc)
    }

    /// The revocation of `serial` by `c`, from its state.json, re-read when its size or
    /// modification time changed.
    fn revoked(&self, c: &Served, serial: &str) -> Option<(OffsetDateTime, Option<u8>)> {
        let path: PathBuf = self.ws.ca_state(&c.loc);
        let stamp = state_stamp(&path);
        let mut g = c.state.lock().unwrap_or_else(|p| p.into_inner());
        if g.stamp != stamp || stamp.is_none() {
            let st: CaState = self.ws.load_ca_state(&c.loc).unwrap_or_default();
            g.revoked = st
                .revocations
                .iter()
                .map(|r| (r.serial.clone(), (r.revoked_at, reason_code(&r.reason))))
                .collect();
            g.stamp = stamp;
        }
        g.revoked.get(serial).copied()
    }

    fn answer_ocsp(&self, der: &[u8], line: &mut LogLine) -> HttpResponse {
        let ocsp_resp = |body: Vec<u8>, max_age: Option<u64>| HttpResponse {
            status: 200,
            content_type: "application/ocsp-response",
            body,
            max_age,
        };
        let Some(req) = ocsp::parse_request(der) else {
            line.ocsp_status = Some(Refusal::Malformed.as_str());
            return ocsp_resp(Refusal::Malformed.response(), None);
        };
        line.nonce = ocsp::has_nonce(&req);
        // every certificate of one request must be of one CA we serve
        let Some(c) = self
            .cas
            .iter()
            .find(|c| req.ids.iter().all(|id| c.hashes.matches(id)))
        else {
            line.ocsp_status = Some(Refusal::Unauthorized.as_str());
            return ocsp_resp(Refusal::Unauthorized.response(), None);
        };
        line.ca = Some(c.loc.to_string());
        let ci = self
            .cas
            .iter()
            .position(|x| std::ptr::eq(x, c))
            .unwrap_or(0);
        let key = (
            ci,
            req.ids
                .iter()
                .map(|i| i.serial.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
        let stamp = state_stamp(&self.ws.ca_state(&c.loc));
        let max_age_of = |c: &Served| c.ocsp_validity.whole_seconds().max(0) as u64;
        let fresh_for =
            CACHE_FOR.min(std::time::Duration::try_from(c.ocsp_validity / 4).unwrap_or(CACHE_FOR));
        if !line.nonce {
            let not_after = c
                .responder
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .not_after;
            let g = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = g.get(&key)
                && hit.stamp == stamp
                && hit.responder_not_after == not_after
                && hit.made.elapsed() < fresh_for
            {
                line.ocsp_status = Some("successful");
                line.certs = req
                    .ids
                    .iter()
                    .map(|i| format!("{}:cached", i.serial))
                    .collect();
                return ocsp_resp(hit.der.clone(), Some(max_age_of(c)));
            }
        }
        let mut statuses = Vec::with_capacity(req.ids.len());
        for id in &req.ids {
            let st = match self.revoked(c, &id.serial) {
                Some((at, reason)) => Status::Revoked { at, reason },
                None if self.issued(&c.loc, &id.serial) => Status::Good,
                None => Status::Unknown,
            };
            line.certs.push(format!(
                "{}:{}",
                id.serial,
                match st {
                    Status::Good => "good",
                    Status::Revoked { .. } => "revoked",
                    Status::Unknown => "unknown",
                }
            ));
            statuses.push(st);
        }
        let now = whole_seconds(OffsetDateTime::now_utc());
        let this_update = now - Duration::seconds(CLOCK_SKEW.whole_seconds().min(60));
        let next_update = now + c.ocsp_validity;
        let r = c.responder.read().unwrap_or_else(|p| p.into_inner());
        match ocsp::respond(&req, &statuses, &r, this_update, next_update) {
            Ok(body) => {
                line.ocsp_status = Some("successful");
                if !line.nonce && !statuses.contains(&Status::Unknown) {
                    let mut g = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if g.len() >= CACHE_MAX {
                        g.clear();
                    }
                    g.insert(
                        key,
                        Cached {
                            der: body.clone(),
                            made: std::time::Instant::now(),
                            stamp,
                            responder_not_after: r.not_after,
                        },
                    );
                }
                let max_age = (!line.nonce).then(|| max_age_of(c));
                ocsp_resp(body, max_age)
            }
            Err(_) => {
                line.ocsp_status = Some(Refusal::Internal.as_str());
                ocsp_resp(Refusal::Internal.response(), None)
            }
        }
    }

    fn answer_file(&self, path: &str, line: &mut LogLine) -> Option<HttpResponse> {
        for c in &self.cas {
            if c.crl_path.as_deref() == Some(path) {
                line.kind = "crl";
                line.ca = Some(c.loc.to_string());
                let der = std::fs::read(self.ws.crl(&c.loc))
                    .ok()
                    .and_then(|pem| crate::pki::inspect::blocks(&pem).ok())
                    .and_then(|b| b.into_iter().next())
                    .map(|b| b.der)
                    .filter(|d| {
                        crate::pki::integrity::crl_signed_by(d, &c.cert_der).unwrap_or(false)
                    });
                return Some(match der {
                    Some(body) => HttpResponse {
                        status: 200,
                        content_type: "application/pkix-crl",
                        body,
                        max_age: Some(300),
                    },
                    None => HttpResponse::text(
                        500,
                        "the CRL on disk is missing or not signed by its CA\n",
                    ),
                });
            }
            if c.cert_path.as_deref() == Some(path) {
                line.kind = "ca-cert";
                line.ca = Some(c.loc.to_string());
                return Some(HttpResponse {
                    status: 200,
                    content_type: "application/pkix-cert",
                    body: c.cert_der.clone(),
                    max_age: Some(86_400),
                });
            }
        }
        None
    }

    /// Answers one HTTP request, and says what it did in `LogLine`.
    pub fn handle(&self, req: &HttpRequest) -> (HttpResponse, LogLine) {
        let t0 = std::time::Instant::now();
        let mut line = LogLine {
            time: whole_seconds(OffsetDateTime::now_utc()),
            peer: req.peer.to_string(),
            method: req.method.clone(),
            path: req.path.chars().take(200).collect(),
            status: 200,
            kind: "other",
            ocsp_status: None,
            ca: None,
            certs: Vec::new(),
            nonce: false,
            micros: 0,
        };
        let resp = match req.method.as_str() {
            "POST" => {
                line.kind = "ocsp";
                self.answer_ocsp(&req.body, &mut line)
            }
            "GET" | "HEAD" => match self.answer_file(&req.path, &mut line) {
                Some(r) => r,
                None => match get_request(&req.path) {
                    Some(der) => {
                        line.kind = "ocsp";
                        self.answer_ocsp(&der, &mut line)
                    }
                    None => HttpResponse::text(404, "not found\n"),
                },
            },
            _ => HttpResponse::text(405, "use POST (or GET) for OCSP\n"),
        };
        line.status = resp.status;
        line.micros = t0.elapsed().as_micros() as u64;
        let resp = if req.method == "HEAD" {
            HttpResponse {
                body: Vec::new(),
                ..resp
            }
        } else {
            resp
        };
        (resp, line)
    }
}

/// The DER request of a GET (RFC 6960 A.1, RFC 5019 5): the path after the responder's
/// own prefix is the URL-encoded base64 of the request. Clients differ in whether they
/// escape the '/' of base64, so every suffix after a '/' is tried, longest first.
fn get_request(path: &str) -> Option<Vec<u8>> {
    let path = path.split('?').next().unwrap_or("");
    path.match_indices('/').find_map(|(i, _)| {
        let cand = &path[i + 1..];
        if cand.is_empty() {
            return None;
        }
        let b64 = percent_decode(cand)?;
        let der = openssl::base64::decode_block(&b64).ok()?;
        ocsp::parse_request(&der).is_some().then_some(der)
    })
}

/// `%XX` decoding of a path (RFC 3986); None for a broken escape.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How `ocsp serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Worker threads (connections served at once).
    pub workers: usize,
    /// Read deadline per request; a connection lives at most six times this.
    pub timeout: std::time::Duration,
}

/// Binds the listening socket, so a busy port fails before anything is signed.
pub fn bind(addr: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|source| crate::net::NetError::Bind { addr, source })?;
    l.set_nonblocking(true)
        .map_err(|source| crate::net::NetError::Listen { addr, source })?;
    Ok(l)
}

/// Serves until `stop` turns true: every request is answered by `svc` and reported
/// through `log`; every minute the responder certificates near their end are replaced
/// (reported as lines of kind `responder-renewal`).
pub fn run(
    svc: &Service,
    listener: &std::net::TcpListener,
    opts: &ServeOptions,
    stop: &std::sync::atomic::AtomicBool,
    log: &(dyn Fn(&LogLine) + Sync),
) {
    use std::sync::atomic::Ordering;
    let cfg = crate::net::httpd::HttpConfig {
        workers: opts.workers.max(1),
        queue: opts.workers.max(1) * 32,
        read_timeout: opts.timeout,
        conn_lifetime: opts.timeout * 6,
        ..Default::default()
    };
    let line = |kind: &'static str, peer: String, status: u16, ca: Option<String>| LogLine {
        time: whole_seconds(OffsetDateTime::now_utc()),
        peer,
        method: "-".into(),
        path: "-".into(),
        status,
        kind,
        ocsp_status: None,
        ca,
        certs: Vec::new(),
        nonce: false,
        micros: 0,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut last = std::time::Instant::now();
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                if last.elapsed() < std::time::Duration::from_secs(60) {
                    continue;
                }
                last = std::time::Instant::now();
                match svc.renew_due(OffsetDateTime::now_utc()) {
                    Ok(done) => {
                        for ca in done {
                            log(&line("responder-renewal", "-".into(), 200, Some(ca)));
                        }
                    }
                    Err(e) => {
                        let mut l = line("responder-renewal", "-".into(), 500, None);
                        l.path = e.to_string();
                        log(&l);
                    }
                }
            }
        });
        let handler = |req: &HttpRequest| {
            let (resp, l) = svc.handle(req);
            log(&l);
            resp
        };
        let on_bad = |peer: std::net::SocketAddr, status: u16, why: &str| {
            let mut l = line("http", peer.to_string(), status, None);
            l.path = why.to_string();
            log(&l);
        };
        crate::net::httpd::serve(listener, &cfg, stop, &handler, &on_bad);
    });
}
