//! `serve`: a local mTLS test gateway. It checks client certificates against the
//! environment's CA (and, when asked, a customer's CA), honours the environment's CRL
//! (re-read as soon as the file changes, so a `revoke` takes effect at once), reports each
//! attempt, and either echoes the request as JSON or forwards it to a plain-HTTP upstream.
//!
//! How it holds up: one event-loop thread accepts (a blocking `poll`, woken by a client or
//! by the stop pipe, never by a timer) and drives every TLS handshake and request read
//! without blocking, each against a deadline for the whole handshake and for the whole
//! request; a trickling client costs a file descriptor, not a thread. A complete request
//! goes to a bounded pool of workers, which answer it (and forward it upstream); when the
//! pool's queue is full the request gets a 503. Connections are capped (below the file
//! limit); at the cap the listener is not polled, so new clients wait in the kernel's
//! backlog. After a refused handshake the socket is shut for writing and read until the
//! client closes (or a short linger), so the TLS alert reaches a TLS 1.3 client instead of
//! a reset.
//!
//! Its server certificate comes from `ops::serve`: signed in memory with the environment
//! CA when the gateway starts, or one of ours given as files.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    ErrorCode, HandshakeError, MidHandshakeSslStream, Ssl, SslContext, SslContextBuilder,
    SslMethod, SslStream, SslVerifyMode,
};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509PurposeId};
use serde::Serialize;
use time::OffsetDateTime;

pub use super::http::HttpRequest;
use super::http::{self, Refusal};
use super::probe::{name_string, split_host_port};
use super::{NetError, Result};
use crate::pki::{fingerprint, serial};

/// Default cap on a request body.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long a refused or finished connection is read after we stop writing, so that the
/// client reads our alert or answer before the socket closes.
const LINGER: Duration = Duration::from_millis(250);
/// Workers answering complete requests, and how many requests may wait for one.
const WORKERS: usize = 8;
const QUEUE: usize = 64;

/// The gateway's server certificate and key: made in memory, or one of ours from files.
pub struct ServerIdentity {
    pub cert: X509,
    /// Sent after the certificate (intermediates).
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub sans: Vec<String>,
}

/// A plain-HTTP upstream to forward accepted requests to.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    /// Prefixed to each request path ("" for none).
    pub base_path: String,
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Upstream> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| NetError::UpstreamNotHttp { url: url.into() })?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let (host, port) = split_host_port(auth, 80)
            .ok_or_else(|| NetError::UpstreamNoHost { url: url.into() })?;
        Ok(Upstream {
            host,
            port,
            base_path: path,
        })
    }
}

/// Whether the TLS handshake demands a client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate, no connection (nginx `ssl_verify_client on`).
    Require,
    /// A certificate is checked when sent; HTTP decides (Express Gateway, Tyk fallback).
    Optional,
}

/// How the gateway runs.
pub struct Config {
    pub env: String,
    pub listen: SocketAddr,
    /// The environment's CA chain, trusted (with its CRL) unless `trust_env_ca` is false.
    pub ca: Vec<X509>,
    pub trust_env_ca: bool,
    /// The CRL of the CA that signs the environment's client certificates (watched: a
    /// new one takes effect on the next connection).
    pub crl: PathBuf,
    /// The CRLs of the other CAs of the trust bundle (the root, CAs being rotated out),
    /// checked too and watched the same way.
    pub other_crls: Vec<PathBuf>,
    /// Other trust anchors for client certificates (a customer's CA); no CRL is held
    /// for them.
    pub client_ca: Vec<X509>,
    pub identity: ServerIdentity,
    pub upstream: Option<Upstream>,
    /// Deadline for the whole handshake, then for the whole request; the upstream's
    /// connect and read timeout.
    pub timeout: Duration,
    pub client_auth: ClientAuth,
    /// Path prefixes that need a client certificate (answered 403 without one).
    pub require_cert_on: Vec<String>,
    /// When either list is set, a certificate must match one entry of either.
    pub allow_subjects: Vec<String>,
    /// SHA-256 fingerprints, lower-case hex without separators.
    pub allow_fingerprints: Vec<String>,
    pub max_connections: usize,
    pub max_body: usize,
    /// Ask the OCSP responder a client certificate names (its Authority Information
    /// Access) before answering, and refuse (403) unless it says good: a revoked,
    /// unknown or unanswered certificate is refused, as nginx's `ssl_ocsp on` does.
    pub ocsp: bool,
}

/// One connection attempt, as logged.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub peer: String,
    pub subject: Option<String>,
    pub serial: Option<String>,
    /// "accepted" or "refused" (the client certificate, at TLS), "forbidden" (refused at
    /// HTTP: no certificate on a path that needs one, or not on an allow-list), or
    /// "error" (a bad or timed-out request, an upstream failure).
    pub result: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// Stops a running gateway from another thread or a signal handler: [`Stop::stop`], or a
/// byte written to [`Stop::waker`] (what `signal_hook::low_level::pipe` does).
pub struct Stop {
    flag: AtomicBool,
    rx: UnixStream,
    tx: UnixStream,
}

impl Stop {
    pub fn new() -> Result<Stop> {
        let (rx, tx) = UnixStream::pair().map_err(NetError::Wake)?;
        rx.set_nonblocking(true).map_err(NetError::Wake)?;
        tx.set_nonblocking(true).map_err(NetError::Wake)?;
        Ok(Stop {
            flag: AtomicBool::new(false),
            rx,
            tx,
        })
    }

    /// A handle whose every written byte stops the gateway (for a signal's self-pipe).
    pub fn waker(&self) -> Result<UnixStream> {
        self.tx.try_clone().map_err(NetError::Wake)
    }

    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = (&self.tx).write(b"x");
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

#[derive(Default, Clone)]
struct VerifyFailure {
    reason: String,
    subject: Option<String>,
    serial: Option<String>,
}

/// The server side of TLS: certificate, trust store and CRL. Built once and again when
/// the CRL file changes (a `revoke` or `crl` rewrites it), so each connection is checked
/// against the CRL as it is on disk.
struct Tls {
    ctx: SslContext,
    stamp: Option<Vec<(i64, i64, u64, u64)>>,
}

fn crl_stamp(cfg: &Config) -> Option<Vec<(i64, i64, u64, u64)>> {
    if !cfg.trust_env_ca {
        return None;
    }
    std::iter::once(&cfg.crl)
        .chain(cfg.other_crls.iter())
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.mtime(), m.mtime_nsec(), m.len(), m.ino()))
        })
        .collect()
}

fn context(cfg: &Config) -> Result<SslContext> {
    let mut b = SslContextBuilder::new(SslMethod::tls_server())?;
    b.set_certificate(&cfg.identity.cert)?;
    b.set_private_key(&cfg.identity.key)?;
    for c in &cfg.identity.chain {
        b.add_extra_chain_cert(c.clone())?;
    }
    b.check_private_key()?;
    b.set_session_id_context(b"mtlsctl-serve")?;
    let anchors: Vec<&X509> = cfg
        .ca
        .iter()
        .filter(|_| cfg.trust_env_ca)
        .chain(cfg.client_ca.iter())
        .collect();
    let mut names = Stack::new()?;
    for c in &anchors {
        names.push(c.subject_name().to_owned()?)?;
    }
    b.set_client_ca_list(names);
    let mut sb = X509StoreBuilder::new()?;
    for c in &anchors {
        sb.add_cert((*c).clone())?;
    }
    if cfg.trust_env_ca {
        let lookup = sb.add_lookup(X509Lookup::file())?;
        // every CA of the chain is checked against its CRL (CRL_CHECK_ALL)
        for p in std::iter::once(&cfg.crl).chain(cfg.other_crls.iter()) {
            lookup
                .load_crl_file(p, openssl::ssl::SslFiletype::PEM)
                .map_err(|source| NetError::Crl {
                    path: p.clone(),
                    env: cfg.env.clone(),
                    source,
                })?;
        }
        sb.set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)?;
    }
    sb.set_purpose(X509PurposeId::SSL_CLIENT)?;
    b.set_verify_cert_store(sb.build())?;
    Ok(b.build())
}

impl Tls {
    fn new(cfg: &Config) -> Result<Tls> {
        let stamp = crl_stamp(cfg);
        Ok(Tls {
            ctx: context(cfg)?,
            stamp,
        })
    }

    /// The context for a new connection, rebuilt first if the CRL changed.
    fn current(&mut self, cfg: &Config) -> Result<&SslContext> {
        let stamp = crl_stamp(cfg);
        if stamp != self.stamp || (cfg.trust_env_ca && stamp.is_none()) {
            self.ctx = context(cfg)?;
            self.stamp = stamp;
        }
        Ok(&self.ctx)
    }
}

/// Checks the TLS set-up (key, CA, CRL) and binds the listening socket, so a bad CRL or
/// a busy port fails before the first client arrives.
pub fn bind(cfg: &Config) -> Result<TcpListener> {
    context(cfg)?;
    let addr = cfg.listen;
    let listener = TcpListener::bind(addr).map_err(|source| NetError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| NetError::Listen { addr, source })?;
    Ok(listener)
}

/// Reports every attempt; called from the event loop and the workers.
pub type Log = Arc<dyn Fn(&Attempt) + Send + Sync>;

enum Phase {
    Handshake(MidHandshakeSslStream<TcpStream>),
    Reading(SslStream<TcpStream>, Vec<u8>),
    /// Shut for writing; read until the client closes or the linger ends.
    Linger(Sock),
    Gone,
}

/// The socket of a connection whose TLS has ended, with what still owns it.
enum Sock {
    Mid(MidHandshakeSslStream<TcpStream>),
    Tls(SslStream<TcpStream>),
}

impl Sock {
    fn tcp(&self) -> &TcpStream {
        match self {
            Sock::Mid(m) => m.get_ref(),
            Sock::Tls(s) => s.get_ref(),
        }
    }
}

impl Phase {
    fn fd(&self) -> libc::c_int {
        match self {
            Phase::Handshake(m) => m.get_ref().as_raw_fd(),
            Phase::Reading(s, _) => s.get_ref().as_raw_fd(),
            Phase::Linger(s) => s.tcp().as_raw_fd(),
            Phase::Gone => -1,
        }
    }
}

struct Conn {
    phase: Phase,
    attempt: Attempt,
    failure: Arc<Mutex<Option<VerifyFailure>>>,
    deadline: Instant,
    want_write: bool,
    peer_der: Option<Vec<u8>>,
    /// Whether `100 Continue` was sent for an `Expect: 100-continue` request.
    continued: bool,
}

/// Reads one step does on a connection before it lets the others have their turn.
const READS_PER_STEP: usize = 16;

struct Job {
    tls: SslStream<TcpStream>,
    req: HttpRequest,
    attempt: Attempt,
    peer_der: Option<Vec<u8>>,
    deadline: Instant,
}

fn now_attempt(peer: SocketAddr) -> Attempt {
    Attempt {
        time: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        peer: peer.to_string(),
        subject: None,
        serial: None,
        result: "refused",
        reason: String::new(),
        method: None,
        path: None,
        status: None,
    }
}

/// The most connections this process can hold: the configured cap, below the file limit.
fn connection_cap(configured: usize) -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        usize::try_from(rl.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    // one descriptor a connection, one more for each request a worker forwards
    configured
        .min(soft.saturating_sub(64 + WORKERS + QUEUE))
        .max(1)
}

/// Serves on `listener` until `stop` is triggered; reports every attempt through `log`.
/// Returns within about half a second of the stop, whatever clients do: workers still
/// busy then are left to the process's exit.
pub fn run(cfg: Arc<Config>, listener: &TcpListener, stop: &Stop, log: Log) -> Result<()> {
    let mut tls = Tls::new(&cfg)?;
    let cap = connection_cap(cfg.max_connections);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let busy = Arc::new(AtomicUsize::new(0));
    let mut spawned = 0;
    let mut spawn_error = None;
    for i in 0..WORKERS {
        let (cfg, rx, log, busy) = (cfg.clone(), rx.clone(), log.clone(), busy.clone());
        match std::thread::Builder::new()
            .name(format!("serve-worker-{i}"))
            .spawn(move || worker(&cfg, &rx, &log, &busy))
        {
            Ok(_) => spawned += 1,
            Err(e) => {
                spawn_error = Some(e);
                break;
            }
        }
    }
    if spawned == 0 {
        return Err(NetError::Threads {
            source: spawn_error.unwrap_or_else(|| std::io::Error::other("no worker")),
        });
    }
    let mut conns: Vec<Conn> = Vec::new();
    let mut accept_paused_until: Option<Instant> = None;
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut wake_buf = [0u8; 64];
    loop {
        let now = Instant::now();
        if accept_paused_until.is_some_and(|t| t <= now) {
            accept_paused_until = None;
        }
        let listen = conns.len() < cap && accept_paused_until.is_none();
        fds.clear();
        fds.push(pollfd(stop.rx.as_raw_fd(), libc::POLLIN));
        fds.push(pollfd(
            listener.as_raw_fd(),
            if listen { libc::POLLIN } else { 0 },
        ));
        for c in &conns {
            let ev = if c.want_write {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            fds.push(pollfd(c.phase.fd(), ev));
        }
        let mut next = conns.iter().map(|c| c.deadline).min();
        if let Some(t) = accept_paused_until {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        let wait_ms = match next {
            // -1: no deadline pending, block until a client or the stop pipe
            None => -1,
            Some(t) => t
                .saturating_duration_since(now)
                .as_millis()
                .saturating_add(1)
                .min(60_000) as libc::c_int,
        };
        // SAFETY: `fds` is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(NetError::Poll(e));
        }
        if fds[0].revents != 0 {
            while matches!((&stop.rx).read(&mut wake_buf), Ok(n) if n > 0) {}
            stop.stop();
        }
        if stop.is_stopped() {
            break;
        }
        let now = Instant::now();
        // step connections from the last, so that swap_remove moves only stepped ones
        for i in (0..conns.len()).rev() {
            if fds[i + 2].revents != 0 {
                step(&cfg, &mut conns[i], &tx, &log);
            }
            // a client that trickles keeps its socket readable: the deadline is checked
            // whatever poll said
            if !matches!(conns[i].phase, Phase::Gone) && conns[i].deadline <= now {
                expire(&cfg, &mut conns[i], &log);
            }
            if matches!(conns[i].phase, Phase::Gone) {
                conns.swap_remove(i);
            }
        }
        if fds[1].revents != 0 {
            while conns.len() < cap {
                match listener.accept() {
                    Ok((tcp, peer)) => {
                        if let Some(mut c) = open(&cfg, &mut tls, tcp, peer, &log) {
                            step(&cfg, &mut c, &tx, &log);
                            if !matches!(c.phase, Phase::Gone) {
                                conns.push(c);
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        // out of descriptors or memory: try again shortly, serving the
                        // connections we hold meanwhile
                        accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
    drop(tx);
    drop(conns);
    let until = Instant::now() + Duration::from_millis(500);
    while busy.load(Ordering::SeqCst) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn pollfd(fd: libc::c_int, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A new connection: the TLS server side, with this connection's verify callback.
fn open(
    cfg: &Arc<Config>,
    tls: &mut Tls,
    tcp: TcpStream,
    peer: SocketAddr,
    log: &Log,
) -> Option<Conn> {
    let mut attempt = now_attempt(peer);
    let setup = (|| -> Result<Ssl> {
        tcp.set_nonblocking(true).map_err(NetError::Socket)?;
        let _ = tcp.set_nodelay(true);
        Ok(Ssl::new(tls.current(cfg)?)?)
    })();
    let mut ssl = match setup {
        Ok(x) => x,
        Err(e) => {
            attempt.result = "error";
            attempt.reason = e.to_string();
            log(&attempt);
            return None;
        }
    };
    let failure: Arc<Mutex<Option<VerifyFailure>>> = Arc::new(Mutex::new(None));
    let mode = match cfg.client_auth {
        ClientAuth::Require => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        ClientAuth::Optional => SslVerifyMode::PEER,
    };
    let f = failure.clone();
    let customer: Vec<Vec<u8>> = cfg
        .client_ca
        .iter()
        .filter_map(|c| c.to_der().ok())
        .collect();
    ssl.set_verify_callback(mode, move |ok, ctx| {
        if ok {
            return true;
        }
        // we hold no CRL for a customer's CA: its chains are not checked for revocation
        if ctx.error().as_raw() == openssl_sys::X509_V_ERR_UNABLE_TO_GET_CRL
            && ctx
                .chain()
                .and_then(|c| c.iter().last().and_then(|r| r.to_der().ok()))
                .is_some_and(|root| customer.contains(&root))
        {
            return true;
        }
        let mut fl = f.lock().unwrap_or_else(|p| p.into_inner());
        if fl.is_none() {
            // the leaf the client presented: first in the chain being built
            let leaf = ctx
                .chain()
                .and_then(|c| c.iter().next().map(|x| x.to_owned()));
            let cert = leaf.as_deref().or(ctx.current_cert());
            *fl = Some(VerifyFailure {
                reason: format!(
                    "{} (depth {})",
                    ctx.error().error_string(),
                    ctx.error_depth()
                ),
                subject: cert.map(|c| name_string(c.subject_name())),
                serial: cert.and_then(serial_of),
            });
        }
        false
    });
    let deadline = Instant::now() + cfg.timeout;
    let phase = match ssl.accept(tcp) {
        Ok(s) => {
            // cannot happen on a fresh non-blocking socket, but is fine
            let mut c = Conn {
                phase: Phase::Gone,
                attempt,
                failure,
                deadline,
                want_write: false,
                peer_der: None,
                continued: false,
            };
            handshake_done(cfg, &mut c, s);
            return Some(c);
        }
        Err(HandshakeError::WouldBlock(mid)) => Phase::Handshake(mid),
        Err(e) => {
            let mut c = Conn {
                phase: Phase::Gone,
                attempt,
                failure,
                deadline,
                want_write: false,
                peer_der: None,
                continued: false,
            };
            handshake_failed(&mut c, e, log);
            return Some(c);
        }
    };
    Some(Conn {
        phase,
        attempt,
        failure,
        deadline,
        want_write: false,
        peer_der: None,
        continued: false,
    })
}

/// Advances a connection that poll says is ready.
fn step(cfg: &Arc<Config>, c: &mut Conn, tx: &SyncSender<Job>, log: &Log) {
    match std::mem::replace(&mut c.phase, Phase::Gone) {
        Phase::Handshake(mid) => match mid.handshake() {
            Ok(s) => {
                handshake_done(cfg, c, s);
                if matches!(c.phase, Phase::Reading(..)) {
                    step(cfg, c, tx, log);
                }
            }
            Err(HandshakeError::WouldBlock(mid)) => {
                c.want_write = mid.error().code() == ErrorCode::WANT_WRITE;
                c.phase = Phase::Handshake(mid);
            }
            Err(e) => handshake_failed(c, e, log),
        },
        Phase::Reading(mut s, mut buf) => {
            let mut chunk = [0u8; 16 * 1024];
            for _ in 0..READS_PER_STEP {
                match s.ssl_read(&mut chunk) {
                    Ok(0) => {
                        close_early(
                            c,
                            "the client closed the connection before a full request",
                            log,
                        );
                        return;
                    }
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        match http::parse_request(&buf, cfg.max_body) {
                            Ok(None) => {
                                if !c.continued && http::wants_continue(&buf) {
                                    // small: fits the socket buffer of a fresh connection
                                    let _ = s.ssl_write(b"HTTP/1.1 100 Continue\r\n\r\n");
                                    c.continued = true;
                                }
                                continue;
                            }
                            Ok(Some(req)) => {
                                dispatch(c, s, req, tx, log);
                                return;
                            }
                            Err(r) => {
                                refuse_request(c, s, &r, log);
                                return;
                            }
                        }
                    }
                    Err(e)
                        if e.code() == ErrorCode::WANT_READ
                            || e.code() == ErrorCode::WANT_WRITE =>
                    {
                        c.want_write = e.code() == ErrorCode::WANT_WRITE;
                        c.phase = Phase::Reading(s, buf);
                        return;
                    }
                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                        close_early(
                            c,
                            "the client closed the connection before a full request",
                            log,
                        );
                        return;
                    }
                    Err(e) => {
                        let why = format!("reading the request failed: {}", ssl_error_text(&e));
                        close_early(c, &why, log);
                        return;
                    }
                }
            }
            // more to read: poll will say so again
            c.phase = Phase::Reading(s, buf);
        }
        Phase::Linger(sock) => {
            let mut sink = [0u8; 4096];
            for _ in 0..READS_PER_STEP {
                match sock.tcp().read(&mut sink) {
                    Ok(0) => return, // the client closed: Gone
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => return,
                }
            }
            c.phase = Phase::Linger(sock);
        }
        Phase::Gone => {}
    }
}

/// A deadline passed.
fn expire(cfg: &Config, c: &mut Conn, log: &Log) {
    let secs = cfg.timeout.as_secs_f32();
    match std::mem::replace(&mut c.phase, Phase::Gone) {
        Phase::Handshake(_) => {
            c.attempt.reason = format!("TLS handshake not completed within {secs}s");
            log(&c.attempt);
        }
        Phase::Reading(s, _) => {
            let r = Refusal {
                status: 408,
                reason: format!("no whole request within {secs}s"),
            };
            refuse_request(c, s, &r, log);
            // no linger for a client that does not finish its request
            c.phase = Phase::Gone;
        }
        Phase::Linger(_) | Phase::Gone => {}
    }
}

fn handshake_done(cfg: &Config, c: &mut Conn, s: SslStream<TcpStream>) {
    let a = &mut c.attempt;
    match s.ssl().peer_certificate() {
        Some(cert) => {
            a.subject = Some(name_string(cert.subject_name()));
            a.serial = serial_of(&cert);
            c.peer_der = cert.to_der().ok();
            a.reason = if cfg.client_ca.is_empty() {
                "client certificate verified against the CA and CRL".into()
            } else {
                "client certificate verified against the trusted CAs".into()
            };
        }
        None => a.reason = "no client certificate (optional at TLS)".into(),
    }
    a.result = "accepted";
    c.deadline = Instant::now() + cfg.timeout;
    c.want_write = false;
    c.phase = Phase::Reading(s, Vec::new());
}

/// Logs the refusal, then shuts the socket for writing and lingers, so the alert the
/// handshake wrote reaches the client before the close.
fn handshake_failed(c: &mut Conn, e: HandshakeError<TcpStream>, log: &Log) {
    let f = c.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
    refused(&mut c.attempt, f, &e);
    log(&c.attempt);
    match e {
        HandshakeError::Failure(m) | HandshakeError::WouldBlock(m) => linger(c, Sock::Mid(m)),
        HandshakeError::SetupFailure(_) => c.phase = Phase::Gone,
    }
}

fn linger(c: &mut Conn, sock: Sock) {
    let _ = sock.tcp().shutdown(Shutdown::Write);
    c.deadline = Instant::now() + LINGER;
    c.want_write = false;
    c.phase = Phase::Linger(sock);
}

fn close_early(c: &mut Conn, why: &str, log: &Log) {
    c.attempt.result = "error";
    c.attempt.reason = format!("accepted, then no valid HTTP request: {why}");
    log(&c.attempt);
    c.phase = Phase::Gone;
}

/// Answers a request we refuse to read or forward (400, 408, 413, 431), then lingers.
fn refuse_request(c: &mut Conn, mut s: SslStream<TcpStream>, r: &Refusal, log: &Log) {
    c.attempt.result = "error";
    c.attempt.status = Some(r.status);
    c.attempt.reason = format!("request refused: {}", r.reason);
    log(&c.attempt);
    let body = format!("{}: {}\n", http::reason_phrase(r.status), r.reason);
    // small enough for the socket buffer; best effort on a non-blocking socket
    let _ = s.ssl_write(&http::response(r.status, "text/plain", body.as_bytes()));
    let _ = s.shutdown();
    linger(c, Sock::Tls(s));
}

/// Hands a whole request to a worker; a 503 when all are busy and the queue is full.
fn dispatch(
    c: &mut Conn,
    s: SslStream<TcpStream>,
    req: HttpRequest,
    tx: &SyncSender<Job>,
    log: &Log,
) {
    let job = Job {
        tls: s,
        req,
        attempt: c.attempt.clone(),
        peer_der: c.peer_der.take(),
        deadline: c.deadline,
    };
    match tx.try_send(job) {
        Ok(()) => c.phase = Phase::Gone,
        Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
            let r = Refusal {
                status: 503,
                reason: format!("all {WORKERS} workers busy and {QUEUE} requests waiting"),
            };
            c.attempt.method = Some(job.req.method.clone());
            c.attempt.path = Some(job.req.path.clone());
            refuse_request(c, job.tls, &r, log);
        }
    }
}

fn worker(cfg: &Config, rx: &Mutex<Receiver<Job>>, log: &Log, busy: &AtomicUsize) {
    loop {
        let job = {
            let r = rx.lock().unwrap_or_else(|p| p.into_inner());
            r.recv()
        };
        let Ok(job) = job else { return };
        busy.fetch_add(1, Ordering::SeqCst);
        let a = answer_job(cfg, job);
        log(&a);
        busy.fetch_sub(1, Ordering::SeqCst);
    }
}

fn answer_job(cfg: &Config, job: Job) -> Attempt {
    let Job {
        mut tls,
        req,
        mut attempt,
        peer_der,
        deadline,
    } = job;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    {
        let raw = tls.get_ref();
        let _ = raw.set_nonblocking(false);
        let _ = raw.set_write_timeout(Some(left));
        let _ = raw.set_read_timeout(Some(LINGER));
    }
    attempt.method = Some(req.method.clone());
    attempt.path = Some(req.path.clone());
    let status = match authorize(cfg, &req, peer_der.as_deref()) {
        Err(why) => {
            attempt.result = "forbidden";
            attempt.reason = why.clone();
            let _ = write_all(
                &mut tls,
                &http::response(403, "text/plain", format!("Forbidden: {why}\n").as_bytes()),
            );
            403
        }
        Ok(()) => match ocsp_refusal(cfg, peer_der.as_deref()) {
            Some(why) => {
                attempt.result = "forbidden";
                attempt.reason = why.clone();
                let _ = write_all(
                    &mut tls,
                    &http::response(403, "text/plain", format!("Forbidden: {why}\n").as_bytes()),
                );
                403
            }
            None => answer(cfg, &mut tls, &req, &mut attempt),
        },
    };
    attempt.status = Some(status);
    let _ = tls.shutdown();
    // read until the client closes (briefly), so our last bytes are not lost to a reset
    let mut raw: &TcpStream = tls.get_ref();
    let _ = raw.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    while Instant::now() < until {
        match raw.read(&mut sink) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    attempt
}

fn write_all(tls: &mut SslStream<TcpStream>, b: &[u8]) -> std::io::Result<()> {
    tls.write_all(b)?;
    tls.flush()
}

/// Whether a path falls under a prefix, segment-wise: `/private` covers `/private`,
/// `/private/x` and `/private?q`, not `/privateer`.
fn under(path: &str, prefix: &str) -> bool {
    let p = path.split(['?', '#']).next().unwrap_or("");
    if prefix.ends_with('/') {
        return p.starts_with(prefix) || p == prefix.trim_end_matches('/');
    }
    p == prefix || p.strip_prefix(prefix).is_some_and(|r| r.starts_with('/'))
}

/// Why the OCSP responder the client certificate names does not let it in, if it does
/// not (and OCSP checking is on and the certificate names one).
fn ocsp_refusal(cfg: &Config, peer: Option<&[u8]>) -> Option<String> {
    if !cfg.ocsp {
        return None;
    }
    let leaf = X509::from_der(peer?).ok()?;
    let url = crate::ocsp_client::responder_url(&leaf)?;
    let issuer = cfg.ca.iter().chain(cfg.client_ca.iter()).find(|c| {
        c.public_key()
            .and_then(|k| leaf.verify(&k))
            .unwrap_or(false)
    })?;
    let trust: Vec<X509> = cfg.ca.iter().chain(cfg.client_ca.iter()).cloned().collect();
    match crate::ocsp_client::check(&leaf, issuer, &trust, &url, cfg.timeout) {
        crate::ocsp_client::Verdict::Good => None,
        crate::ocsp_client::Verdict::Revoked { reason } => Some(format!(
            "the client certificate is revoked (OCSP, {reason})"
        )),
        crate::ocsp_client::Verdict::Unknown => {
            Some("the OCSP responder does not know the client certificate".into())
        }
        crate::ocsp_client::Verdict::NoAnswer(why) => Some(format!(
            "no OCSP answer for the client certificate ({why}); refused, as a gateway with OCSP checking on does"
        )),
    }
}

/// Authorization after authentication: a certificate on the paths that need one, and on
/// the allow-lists when there are any. The error is the reason, for the 403 and the log.
fn authorize(
    cfg: &Config,
    req: &HttpRequest,
    peer: Option<&[u8]>,
) -> std::result::Result<(), String> {
    let needs_cert = cfg.client_auth == ClientAuth::Require
        || cfg.require_cert_on.iter().any(|p| under(&req.path, p));
    let Some(der) = peer else {
        if needs_cert {
            return Err(format!(
                "a client certificate is required for {}",
                crate::pki::text::sanitize(req.path.split('?').next().unwrap_or(""))
            ));
        }
        return Ok(());
    };
    if cfg.allow_subjects.is_empty() && cfg.allow_fingerprints.is_empty() {
        return Ok(());
    }
    let fp = fingerprint::hex(&fingerprint::sha256(der)).to_ascii_lowercase();
    if cfg.allow_fingerprints.contains(&fp) {
        return Ok(());
    }
    let subject = X509::from_der(der)
        .map(|x| name_string(x.subject_name()))
        .unwrap_or_default();
    if cfg.allow_subjects.iter().any(|s| same_dn(s, &subject)) {
        return Ok(());
    }
    Err(format!(
        "certificate '{}' (SHA-256 {fp}) is not on --allow-subject/--allow-fingerprint",
        crate::pki::text::sanitize(&subject)
    ))
}

/// The parts of a DN string, spaces around separators dropped, attribute names in upper
/// case (escaped commas kept inside their part).
fn dn_parts(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for ch in s.chars() {
        if esc {
            cur.push(ch);
            esc = false;
        } else if ch == '\\' {
            cur.push(ch);
            esc = true;
        } else if ch == ',' {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{}={}", k.trim().to_ascii_uppercase(), v.trim()),
            None => p.trim().to_string(),
        })
        .collect()
}

/// Whether two DNs name the same subject, in either order (RFC 4514 writes the most
/// specific part first, OpenSSL's one-line form the least).
pub fn same_dn(a: &str, b: &str) -> bool {
    let (pa, mut pb) = (dn_parts(a), dn_parts(b));
    if pa.is_empty() {
        return false;
    }
    if pa == pb {
        return true;
    }
    pb.reverse();
    pa == pb
}

/// Why the handshake failed: our verification's finding when it refused the client's
/// certificate (naming that certificate), else what the TLS layer says.
fn refused<S>(a: &mut Attempt, failure: Option<VerifyFailure>, e: &HandshakeError<S>) {
    let Some(f) = failure else {
        let msg = handshake_reason(e);
        a.reason = if msg.contains("did not return a certificate")
            || msg.contains("certificate required")
        {
            "no client certificate".into()
        } else {
            format!("TLS handshake failed: {msg}")
        };
        return;
    };
    a.reason = format!("client certificate refused: {}", f.reason);
    let leaf = match e {
        HandshakeError::Failure(m) => m.ssl().peer_certificate(),
        _ => None,
    };
    match leaf {
        Some(c) => {
            a.subject = Some(name_string(c.subject_name()));
            a.serial = serial_of(&c);
        }
        None => {
            a.subject = f.subject;
            a.serial = f.serial;
        }
    }
}

/// Answers an authorized request: echoes it, or forwards it and relays the upstream's
/// answer (a 502 when the upstream fails). Returns the status sent.
fn answer(cfg: &Config, tls: &mut SslStream<TcpStream>, req: &HttpRequest, a: &mut Attempt) -> u16 {
    let Some(up) = &cfg.upstream else {
        let body = echo_json(req, a.subject.as_deref(), a.serial.as_deref());
        let _ = write_all(tls, &http::response(200, "application/json", &body));
        return 200;
    };
    match forward(up, req, a.subject.as_deref(), a.serial.as_deref(), cfg) {
        Ok(resp) => {
            let st = http::status_of(&resp).unwrap_or(502);
            let _ = write_all(tls, &resp);
            st
        }
        Err(e) => {
            a.result = "error";
            a.reason = format!("accepted; upstream failed: {e}");
            let _ = write_all(
                tls,
                &http::response(
                    502,
                    "text/plain",
                    format!("upstream failed: {e}\n").as_bytes(),
                ),
            );
            502
        }
    }
}

fn serial_of(c: &openssl::x509::X509Ref) -> Option<String> {
    c.serial_number()
        .to_bn()
        .ok()
        .map(|b| serial::to_hex(&b.to_vec()))
}

fn ssl_error_text(e: &openssl::ssl::Error) -> String {
    if let Some(s) = e.ssl_error() {
        let parts: Vec<String> = s
            .errors()
            .iter()
            .map(|x| x.reason().unwrap_or("unknown").to_string())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    e.io_error()
        .map(|i| i.to_string())
        .unwrap_or_else(|| e.to_string())
}

fn handshake_reason<S>(e: &HandshakeError<S>) -> String {
    match e {
        HandshakeError::Failure(m) => ssl_error_text(m.error()),
        HandshakeError::SetupFailure(e) => e.to_string(),
        HandshakeError::WouldBlock(_) => "timed out".into(),
    }
}

fn echo_json(req: &HttpRequest, subject: Option<&str>, serial: Option<&str>) -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for (k, v) in &req.headers {
        match headers.get_mut(k) {
            Some(serde_json::Value::String(s)) => {
                s.push_str(", ");
                s.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), v.clone().into());
            }
        }
    }
    let v = serde_json::json!({
        "method": req.method,
        "path": req.path,
        "version": req.version,
        "headers": headers,
        "body_bytes": req.body.len(),
        "client": { "subject": subject, "serial": serial },
    });
    let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Headers the gateway sets itself; a client's own copies are dropped.
const CLIENT_SUBJECT_HEADER: &str = "X-Client-Subject";
const CLIENT_SERIAL_HEADER: &str = "X-Client-Serial";

/// Hop-by-hop and framing headers, which the gateway sets itself towards the upstream.
fn not_forwarded(k: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
        CLIENT_SUBJECT_HEADER,
        CLIENT_SERIAL_HEADER,
    ]
    .iter()
    .any(|h| k.eq_ignore_ascii_case(h))
}

fn forward(
    up: &Upstream,
    req: &HttpRequest,
    subject: Option<&str>,
    serial: Option<&str>,
    cfg: &Config,
) -> std::result::Result<Vec<u8>, String> {
    let timeout = cfg.timeout;
    let addr = (up.host.as_str(), up.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", up.host))?
        .next()
        .ok_or_else(|| format!("no address for {}", up.host))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let deadline = Instant::now() + timeout;
    // the parser refused CR, LF and NUL in the method, target and every header
    let mut head = format!(
        "{} {}{} {}\r\n",
        req.method, up.base_path, req.path, "HTTP/1.1"
    );
    for (k, v) in &req.headers {
        if not_forwarded(k) {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(sub) = subject {
        head.push_str(&format!(
            "{CLIENT_SUBJECT_HEADER}: {}\r\n",
            sub.replace(['\r', '\n', '\0'], " ")
        ));
    }
    if let Some(ser) = serial {
        head.push_str(&format!("{CLIENT_SERIAL_HEADER}: {ser}\r\n"));
    }
    if !req.body.is_empty() || !matches!(req.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS")
    {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(&req.body))
        .and_then(|_| s.flush())
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut resp = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let limit = cfg.max_body + http::MAX_HEAD;
    loop {
        if Instant::now() >= deadline {
            if resp.is_empty() {
                return Err(format!(
                    "{addr} sent no answer within {}s",
                    timeout.as_secs_f32()
                ));
            }
            break;
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&chunk[..n]);
                if resp.len() > limit {
                    return Err("upstream response too large".into());
                }
                if http::response_complete(&resp) {
                    break;
                }
            }
            Err(e) if resp.is_empty() => return Err(format!("reading from {addr}: {e}")),
            Err(_) => break,
        }
    }
    if resp.is_empty() {
        return Err(format!("{addr} closed the connection without answering"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = Upstream::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base_path.as_str()),
            ("127.0.0.1", 8080, "/api")
        );
        assert_eq!(Upstream::parse("http://backend").unwrap().port, 80);
        assert!(Upstream::parse("https://x").is_err());
    }

    #[test]
    fn echoes_a_request() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic dTpw\r\nContent-Length: 3\r\n\r\nabc";
        let r = http::parse_request(raw, MAX_BODY).unwrap().unwrap();
        let j: serde_json::Value =
            serde_json::from_slice(&echo_json(&r, Some("CN=a"), Some("01"))).unwrap();
        assert_eq!(j["headers"]["Authorization"], "Basic dTpw");
        assert_eq!(j["client"]["subject"], "CN=a");
    }

    #[test]
    fn path_prefixes_go_by_segment() {
        assert!(under("/private", "/private"));
        assert!(under("/private/x?y", "/private"));
        assert!(under("/private?y", "/private"));
        assert!(!under("/privateer", "/private"));
        assert!(!under("/public", "/private"));
        assert!(under("/private/x", "/private/"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn dns_compare_in_either_order() {
        assert!(same_dn(
            "CN=platform-prod,OU=acme,O=Example Platform",
            "CN=platform-prod, OU=acme, O=Example Platform"
        ));
        assert!(same_dn(
            "O = Example Platform, OU = acme, CN = platform-prod",
            "CN=platform-prod,OU=acme,O=Example Platform"
        ));
        assert!(!same_dn("CN=platform-prod", "CN=platform-prod,OU=acme"));
        assert!(!same_dn("", "CN=a"));
        assert!(same_dn("cn=a,o=b", "CN=a,O=b"));
    }
}
