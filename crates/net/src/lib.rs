//! mtlsctl's network side: the live probe (TLS client), the chain fetcher of
//! `expiry --remote` and the local mTLS test gateway. TLS, HTTP and the OpenSSL calls the
//! openssl crate does not bind; what a certificate means to the workspace is the business
//! of `mtlsctl-core`'s operations, which call this crate and hand it plain data.
//!
//! It depends on `mtlsctl-pki` for certificate helpers and never on `mtlsctl-core`, so the
//! compiler keeps workspace reads and audit writes out of it.

pub mod http;
pub mod httpd;
pub mod ocsp_client;
pub mod probe;
pub mod serve;
pub mod tls;

use mtlsctl_pki as pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use openssl::error::ErrorStack;
use thiserror::Error;

/// What stops a network operation, with what a person needs to act on it: the address,
/// the timeout, the TLS alert, the flag to change. What goes wrong with one endpoint or
/// one client once the operation runs (a refused handshake, an HTTP error) is a finding
/// in its report, not a `NetError`.
#[derive(Debug, Error)]
pub enum NetError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] ErrorStack),

    // endpoints as the user wrote them
    #[error(
        "'{spec}' is not HOST:PORT[/SNI] ({why}), e.g. gw.example.com:443, 10.0.0.5:8443/api.example.com or [::1]:443"
    )]
    BadEndpoint { spec: String, why: &'static str },
    #[error(
        "'{url}' is not an https:// URL: probe speaks TLS, e.g. https://api.example.com/health"
    )]
    NotHttps { url: String },
    #[error("'{url}' has no valid host[:port]")]
    NoHost { url: String },
    #[error(
        "--upstream '{url}' must be a plain http:// URL (the test gateway terminates TLS itself)"
    )]
    UpstreamNotHttp { url: String },
    #[error("--upstream '{url}' has no valid host[:port]")]
    UpstreamNoHost { url: String },

    // reaching an endpoint
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("cannot set a timeout on the connection: {0}")]
    SetTimeout(std::io::Error),

    // TLS with an endpoint
    #[error("server name '{name}': {source}")]
    ServerName { name: String, source: ErrorStack },
    #[error("TLS setup failed: {0}")]
    TlsSetup(ErrorStack),
    /// The handshake ended (a TLS alert, a reset) before the server sent its chain.
    #[error("TLS handshake failed before the server sent a certificate: {reason}")]
    Handshake { reason: String },
    #[error("no whole TLS handshake within the {}s --timeout (is it a TLS port?)", .timeout.as_secs_f32())]
    NoTlsAnswer { timeout: Duration },
    #[error("the server sent no certificate")]
    NoCertificate,

    // the test gateway
    #[error(
        "cannot load the CRL {}: {source}; sign one with `mtlsctl crl --env {env}`",
        .path.display()
    )]
    Crl {
        path: PathBuf,
        env: String,
        source: ErrorStack,
    },
    #[error("cannot listen on {addr}: {source}; choose another --listen address")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot make the gateway's stop pipe: {0}")]
    Wake(std::io::Error),
    #[error(
        "the system refused every worker thread ({source}); raise the thread limit (ulimit -u) or stop other processes"
    )]
    Threads { source: std::io::Error },
    #[error("waiting for clients failed: {0}")]
    Poll(std::io::Error),
    #[error("cannot set up a client connection: {0}")]
    Socket(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;
