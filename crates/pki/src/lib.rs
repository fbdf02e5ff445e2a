//! Pure certificate logic: keys, CAs, leaves, PKCS#12, parsing. No file or terminal I/O.

pub mod cert;
pub mod crl;
pub mod csr;
pub mod dn;
pub mod fingerprint;
pub mod hierarchy;
pub mod inspect;
pub mod integrity;
pub mod keys;
pub mod ocsp;
pub mod pbe;
pub mod pkcs12;
pub mod pointers;
pub mod serial;
pub mod text;
pub mod verify;

use thiserror::Error;

/// What went wrong in certificate logic. Each variant says what to do where it can
/// without naming a program's commands or flags: the variants below `Invalid` carry the
/// data, and the program that shows them adds the advice its command line offers.
#[derive(Debug, Error)]
pub enum PkiError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("certificate builder: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the passphrase does not decrypt this key: check the passphrase file or variable")]
    WrongPassphrase,
    #[error("this key is encrypted: give its passphrase")]
    PassphraseNeeded,
    #[error("not a private key this tool can read: {0}")]
    BadKey(String),
    #[error(
        "unsupported key: {0}; use one of ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096"
    )]
    UnsupportedKey(String),
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the PFX password is wrong, or the file is not a PKCS#12 bundle")]
    PfxPassword,
    /// A path validation without a trust anchor.
    #[error("no trusted CA certificate given")]
    NoTrustAnchor,
    /// A path validation asked to match both a host name and an IP address.
    #[error("a certificate is checked against a host name or an IP address, not both")]
    HostnameAndIp,
    /// A server leaf without a DNS or IP name to be checked against.
    #[error("a server certificate needs at least one DNS or IP SAN (clients ignore the CN)")]
    ServerWithoutSan,
    /// The leaf asked for would end after its CA, and clipping was not allowed.
    #[error("the certificate would expire after its CA ({})", text::rfc3339(*ca_not_after))]
    OutlivesCa { ca_not_after: time::OffsetDateTime },
    /// The signing CA is past its notAfter.
    #[error("the CA has expired ({})", text::rfc3339(*not_after))]
    CaExpired { not_after: time::OffsetDateTime },
    /// A serial given by a person that is not hex.
    #[error("'{given}' is not a hex serial: give an even number of hex digits, e.g. 4f3a...")]
    BadSerial { given: String },
    /// A PEM block of a kind this crate does not read.
    #[error("PEM block '{label}' is not a certificate, request, CRL or key")]
    UnknownPemBlock { label: String },
    #[error(
        "the new {alg} key failed its pairwise self-test (sign a message, verify it with the public key): {reason}"
    )]
    KeySelfTest { alg: &'static str, reason: String },
    #[error(
        "{subject} asks for {} {unit} in its {what}, above the limit of {} that mtlsctl accepts: refusing to open it (such a file can stall its reader)",
        pbe::thousands(*count),
        pbe::thousands(*limit)
    )]
    CostLimit {
        subject: &'static str,
        what: String,
        count: u64,
        limit: u64,
        unit: &'static str,
    },
    #[error(
        "the {what} needs OpenSSL {needs} or later; this build uses OpenSSL {have}: build with the default features"
    )]
    OpenSslTooOld {
        what: &'static str,
        needs: &'static str,
        have: String,
    },
}

pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// PEM with 64-column lines, as OpenSSL writes it.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = openssl::base64::encode_block(der);
    let mut s = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    s.push_str("-----BEGIN ");
    s.push_str(label);
    s.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 is ASCII, so every chunk is valid UTF-8
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END ");
    s.push_str(label);
    s.push_str("-----\n");
    s
}

/// Whether a leaf certificate authenticates a client or a server.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Client,
    Server,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Server => "server",
        }
    }
    pub const ALL: [Kind; 2] = [Kind::Client, Kind::Server];
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "client" => Ok(Kind::Client),
            "server" => Ok(Kind::Server),
            other => Err(format!("unknown kind '{other}': use client or server")),
        }
    }
}
