//! A small TLS client that fetches the certificate chain a live endpoint presents, the way
//! a gateway serves it, for `expiry --remote`. It trusts nothing and checks nothing: the
//! point is to read the chain, even an expired or self-signed one.

use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use openssl::ssl::{HandshakeError, Ssl, SslContext, SslMethod, SslRef, SslVerifyMode};

use super::{NetError, Result};

/// `HOST:PORT[/SNI]`: where to connect and which server name to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The server name sent in the handshake; by default the host when it is a name.
    pub sni: Option<String>,
    /// The text as the user wrote it, used to name the source in reports.
    pub spec: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl std::str::FromStr for Target {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &'static str| NetError::BadEndpoint {
            spec: s.to_string(),
            why,
        };
        let spec = s.trim();
        let (hostport, sni) = match spec.find('/') {
            Some(i) => (&spec[..i], Some(&spec[i + 1..])),
            None => (spec, None),
        };
        let bracketed = hostport.starts_with('[');
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ']'"))?;
            let port = rest[end + 1..]
                .strip_prefix(':')
                .ok_or_else(|| bad("the port is missing"))?;
            (&rest[..end], port)
        } else {
            let i = hostport
                .rfind(':')
                .ok_or_else(|| bad("the port is missing"))?;
            (&hostport[..i], &hostport[i + 1..])
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if !bracketed && host.contains(':') {
            return Err(bad("write an IPv6 address in brackets"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        let sni = match sni {
            Some("") => return Err(bad("the server name after '/' is empty")),
            Some(n) => Some(n.to_string()),
            None if host.parse::<IpAddr>().is_ok() => None,
            None => Some(host.to_string()),
        };
        Ok(Target {
            host: host.to_string(),
            port,
            sni,
            spec: spec.to_string(),
        })
    }
}

/// A TCP stream that gives up at one instant: every read and write waits at most for
/// what is left of the deadline, so a peer trickling a byte at a time cannot stretch an
/// exchange past it (a per-read timeout would restart with each byte).
pub struct DeadlineStream {
    tcp: TcpStream,
    at: Instant,
    timeout: Duration,
}

impl DeadlineStream {
    pub fn new(tcp: TcpStream, at: Instant, timeout: Duration) -> DeadlineStream {
        DeadlineStream { tcp, at, timeout }
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    fn left(&self) -> std::io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(self.ran_out())
        } else {
            Ok(left)
        }
    }

    fn ran_out(&self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, timeout_text(self.timeout))
    }

    fn map(&self, e: std::io::Error) -> std::io::Error {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => self.ran_out(),
            _ => e,
        }
    }
}

/// How a run-out deadline reads in a report.
pub fn timeout_text(timeout: Duration) -> String {
    format!(
        "no answer within the {}s --timeout, which bounds the whole exchange",
        timeout.as_secs_f32()
    )
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_read_timeout(Some(left))?;
        self.tcp.read(buf).map_err(|e| self.map(e))
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf).map_err(|e| self.map(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Connects to the first of `addrs` that answers before `at`; the error of the last
/// attempt otherwise.
pub fn connect_by(
    addrs: &[SocketAddr],
    at: Instant,
    timeout: Duration,
) -> std::result::Result<(TcpStream, SocketAddr), String> {
    let mut last = String::from("no address");
    for a in addrs {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{a}: {}", timeout_text(timeout)));
        }
        match TcpStream::connect_timeout(a, left) {
            Ok(s) => return Ok((s, *a)),
            Err(e) => last = format!("{a}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// Connects to `t`, completes (or at least starts) a TLS handshake, and returns the
/// certificates the server sent, leaf first, as DER. `timeout` bounds all of it, from
/// the name lookup to the last byte. The error says why the chain could not be had
/// (resolution, refusal, timeout, not TLS).
pub fn fetch_chain(t: &Target, timeout: Duration) -> Result<Vec<Vec<u8>>> {
    let at = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|source| NetError::Resolve {
            host: t.host.clone(),
            source,
        })?
        .collect();
    let mut last_err = NetError::NoAddress {
        host: t.host.clone(),
    };
    let mut stream = None;
    for a in &addrs {
        let left = at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NetError::NoTlsAnswer { timeout });
        }
        match TcpStream::connect_timeout(a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => {
                last_err = NetError::Connect {
                    addr: *a,
                    reason: io_reason(&e),
                }
            }
        }
    }
    let stream = DeadlineStream::new(stream.ok_or(last_err)?, at, timeout);
    let mut ctx = SslContext::builder(SslMethod::tls_client())?;
    // We read the chain; judging it is what the report does.
    ctx.set_verify(SslVerifyMode::NONE);
    let ctx = ctx.build();
    let mut ssl = Ssl::new(&ctx)?;
    if let Some(name) = &t.sni {
        ssl.set_hostname(name)
            .map_err(|source| NetError::ServerName {
                name: name.clone(),
                source,
            })?;
    }
    match ssl.connect(stream) {
        Ok(mut s) => {
            let chain = chain_of(s.ssl());
            let _ = s.shutdown();
            let _ = s.get_mut().flush();
            non_empty(chain)
        }
        // A server that wants a client certificate may end the handshake after it has
        // sent its own chain: what it sent is still what we came for.
        Err(HandshakeError::Failure(mid)) => {
            let chain = chain_of(mid.ssl());
            let ran_out = mid
                .error()
                .io_error()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
            if chain.is_empty() && ran_out {
                Err(NetError::NoTlsAnswer { timeout })
            } else if chain.is_empty() {
                Err(NetError::Handshake {
                    reason: handshake_reason(mid.error()),
                })
            } else {
                Ok(chain)
            }
        }
        Err(HandshakeError::WouldBlock(mid)) => {
            let chain = chain_of(mid.ssl());
            if chain.is_empty() {
                Err(NetError::NoTlsAnswer { timeout })
            } else {
                Ok(chain)
            }
        }
        Err(HandshakeError::SetupFailure(e)) => Err(NetError::TlsSetup(e)),
    }
}

fn non_empty(chain: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>> {
    if chain.is_empty() {
        Err(NetError::NoCertificate)
    } else {
        Ok(chain)
    }
}

fn chain_of(ssl: &SslRef) -> Vec<Vec<u8>> {
    ssl.peer_cert_chain()
        .map(|st| st.iter().filter_map(|c| c.to_der().ok()).collect())
        .unwrap_or_default()
}

fn handshake_reason(e: &openssl::ssl::Error) -> String {
    if let Some(io) = e.io_error() {
        return io_reason(io);
    }
    match e.ssl_error() {
        Some(st) => crate::pki::keys::short_ssl_error(st),
        None => e.to_string(),
    }
}

pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => "timed out".into(),
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by the server".into(),
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t: Target = "gw.example.com:443".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port), ("gw.example.com", 443));
        assert_eq!(t.sni.as_deref(), Some("gw.example.com"));
        let t: Target = "10.0.0.5:8443/api.example.com".parse().unwrap();
        assert_eq!(t.host, "10.0.0.5");
        assert_eq!(t.sni.as_deref(), Some("api.example.com"));
        let t: Target = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(t.sni, None);
        let t: Target = "[::1]:443".parse().unwrap();
        assert_eq!((t.host.as_str(), t.port, t.sni.clone()), ("::1", 443, None));
        for bad in [
            "example.com",
            ":443",
            "h:0",
            "h:99999",
            "h:443/",
            "::1:443",
            "[::1:443",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refused_port_is_an_error_not_a_panic() {
        // bind then drop to find a port nobody listens on
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t: Target = format!("127.0.0.1:{port}").parse().unwrap();
        let e = fetch_chain(&t, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(e, NetError::Connect { .. }), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
