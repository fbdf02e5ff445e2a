//! Lifecycle operations: they compose `pki` (what to build) with `workspace` (where it
//! goes) and return plain outcomes for the CLI to render. No printing, no prompting.

pub mod activate;
pub mod audit;
pub mod ca;
pub mod csr;
pub mod deliver;
pub mod doctor;
pub mod expiry;
pub mod export;
pub mod gateway_test;
pub mod inspect;
pub mod issue;
pub mod issue_all;
pub mod lifecycle;
pub mod ocsp;
pub mod offboard;
pub mod pfx;
pub mod probe;
pub mod serve;
pub mod setup;
pub mod verify;

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;
use time::OffsetDateTime;

use crate::net::NetError;
use crate::pki::text::{rfc3339, sanitize};
use crate::pki::verify::Finding;
use crate::pki::{Kind, PkiError};
use crate::profile::ProfileError;
use crate::workspace::WsError;

#[derive(Debug, Error)]
pub enum OpError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Workspace(#[from] WsError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// An environment without its CA: `ca init` makes it.
    #[error("environment '{env}' has no CA yet: run `mtlsctl ca init --env {env}`")]
    NoCa { env: String },
    /// A tenant whose leaves chain to a CA of its own (`ca.scope: tenant`) before it exists.
    #[error(
        "tenant '{tenant}' has its own CA in '{env}' (ca.scope: tenant) and it does not exist yet: run `mtlsctl ca init --env {env} --tenant {tenant}`"
    )]
    NoTenantCa { env: String, tenant: String },
    /// `--tenant` for a tenant that has no CAs of its own in the environment.
    #[error(
        "tenant '{tenant}' shares the {env} CA (ca.scope is env): leave out --tenant to act on the environment's CA, or set ca: {{scope: tenant}} under overrides.{env} in its profile to give it its own"
    )]
    TenantSharesCa { env: String, tenant: String },
    /// A CA file that is not what the set's records say.
    #[error("{}: {reason}", path.display())]
    CaHierarchy { path: PathBuf, reason: String },
    /// Two tiers, and no issuing CA for this kind of leaf yet.
    #[error(
        "environment '{env}' has no issuing CA for {kind} certificates yet: make one with `mtlsctl ca rotate --env {env}{tenant_flag} --tier issuing --kind {kind}`"
    )]
    NoIssuingCa {
        env: String,
        kind: Kind,
        tenant_flag: String,
    },
    /// An operation that signs with a root whose key is kept outside the workspace.
    #[error(
        "the {env} root CA key is kept offline, and {what} needs it: pass --root-key FILE (the file `ca init --root-key-out` wrote) with the CA passphrase"
    )]
    RootKeyNeeded { env: String, what: String },
    /// A root rotation of an offline root, without a place for the new root's key.
    #[error(
        "the {env} root CA key is kept offline, so the new root's key must be too: pass --root-key-out DIR (removable media or a vault), where it is written once"
    )]
    RootKeyOutNeeded { env: String },
    #[error("environment '{env}' has no CA with serial {serial}; its CAs: {}", known.join(", "))]
    NoSuchCa {
        env: String,
        serial: String,
        known: Vec<String>,
    },
    #[error("CA {serial} still has an active issuing CA below it: rotate that first with {fix}")]
    CaHasActiveChild { serial: String, fix: String },
    #[error("CA {serial} of '{env}' is active: {fix}")]
    CaActive {
        env: String,
        serial: String,
        fix: String,
    },
    #[error("CA {serial} still issued {} current certificate(s): {}; {fix}", leaves.len(), leaves.join(", "))]
    CaStillUsed {
        serial: String,
        leaves: Vec<String>,
        fix: String,
    },
    /// An environment whose CA is someone else's (`ca.external: true`).
    #[error(
        "environment '{env}' uses an external CA (ca.external in its profile): make a request with `mtlsctl csr --tenant T --env {env}` and bring the certificate back with `mtlsctl import`"
    )]
    ExternalCa { env: String },
    /// A tenant whose CA in `env` is its own (`overrides.<env>.ca.external: true`).
    #[error(
        "{tenant} uses its own external CA in {env} (overrides.{env}.ca.external in its profile): make a request with `mtlsctl csr --tenant {tenant} --env {env}` and bring the certificate back with `mtlsctl import`"
    )]
    TenantExternalCa { env: String, tenant: String },
    /// The CA certificate is there, its key is not.
    #[error("the CA key {} is missing: restore it from backup (the certificate alone cannot sign)", path.display())]
    CaKeyMissing { path: PathBuf },
    /// `var` is the environment's own passphrase variable (`MTLSCTL_CA_PASSPHRASE_PROD`).
    #[error("the passphrase does not decrypt the CA key {}: check --ca-passphrase-file, {var} or MTLSCTL_CA_PASSPHRASE", path.display())]
    WrongCaPassphrase { path: PathBuf, var: String },
    #[error("the CA key {} is encrypted: give its passphrase with --ca-passphrase-file FILE, {var} or MTLSCTL_CA_PASSPHRASE", path.display())]
    CaPassphraseNeeded { path: PathBuf, var: String },
    /// A file given on the command line that could not be used, and why.
    #[error("{}: {source}", path.display())]
    Input {
        path: PathBuf,
        #[source]
        source: Box<OpError>,
    },
    #[error(transparent)]
    Net(#[from] NetError),
    /// An output file that exists and was not to be replaced.
    #[error("{} exists; nothing was overwritten (use --force to replace it)", path.display())]
    OutputExists { path: PathBuf },
    /// A hand-off that would break a gateway's limits (each failed check named).
    #[error("the hand-off would not pass the gateway's limits, nothing was written: {}", failures.join("; "))]
    GatewayLimits { failures: Vec<String> },
    /// A key file that is not the certificate's key.
    #[error("the key {} does not belong to the certificate {}: pass the key the certificate was issued for", key.display(), cert.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{} is encrypted: give its passphrase with --key-passphrase-file FILE or MTLSCTL_KEY_PASSPHRASE", path.display())]
    KeyPassphraseNeeded { path: PathBuf },
    /// For a message that is genuinely one-off (an internal consistency check, a failure
    /// no caller tells apart): everything with a pattern or data has its own variant.
    #[error("{0}")]
    Msg(String),
    // -- the certificates of the workspace
    /// No current certificate of tenant/env (of `kind` when known) where `need` wanted one.
    #[error("{}", no_current(tenant, env, *kind, *need))]
    NoCurrentCert {
        tenant: String,
        env: String,
        kind: Option<Kind>,
        need: CertNeed,
    },
    #[error(
        "no certificate with serial {serial} in environment '{env}': `mtlsctl list --env {env}` shows the serials"
    )]
    NoSuchSerial { env: String, serial: String },
    /// A serial given with --tenant that is another tenant's certificate.
    #[error("serial {serial} belongs to tenant '{tenant}', not '{asked}'")]
    SerialOfOtherTenant {
        serial: String,
        tenant: String,
        asked: String,
    },
    /// A serial given with --kind that is a certificate of the other kind.
    #[error("serial {serial} is a {kind} certificate, not a {asked} one")]
    SerialOfOtherKind {
        serial: String,
        kind: Kind,
        asked: Kind,
    },
    #[error("name the certificate: --tenant T --env E, or --env E --serial HEX")]
    NoTargetNamed,
    #[error(
        "{tenant}/{env} has a client and a server certificate: say which with --kind client|server, or give --serial"
    )]
    KindAmbiguous { tenant: String, env: String },
    /// `renew --reuse-key` of a certificate whose key file is gone.
    #[error("--reuse-key: the current certificate has no key file {}: renew without --reuse-key", path.display())]
    ReuseKeyMissing { path: PathBuf },
    /// `reason` is part of the message, not a `#[source]` (the one-line rendering would
    /// repeat it).
    #[error("--reuse-key: cannot read {}: {reason}", path.display())]
    ReuseKeyUnreadable { path: PathBuf, reason: PkiError },
    /// A certificate whose key cannot be compared with a compromised one (`revoke`).
    #[error("{}: cannot compare its key with the compromised one: {reason}", path.display())]
    KeyCompare { path: PathBuf, reason: PkiError },
    #[error("the CRL number cannot grow any further")]
    CrlNumberExhausted,
    /// The environment's CRL file is not there.
    #[error("the CRL {} is missing: sign one with `mtlsctl crl --env {env}`", path.display())]
    CrlMissing { path: PathBuf, env: String },
    /// The CRL file holds no CRL of the CA named `subject`.
    #[error("{} holds no CRL signed by the CA '{subject}': gateways that check CRLs would refuse every client; sign one with `mtlsctl crl --env {env}`", path.display())]
    CrlNotSigned {
        path: PathBuf,
        subject: String,
        env: String,
    },
    /// A CRL past its nextUpdate, refused for a hand-off.
    #[error("the CRL of '{subject}' passed its nextUpdate on {}: gateways would refuse every client; re-sign it with `mtlsctl crl --env {env}` and export again", rfc3339(*next_update))]
    CrlExpired {
        subject: String,
        next_update: OffsetDateTime,
        env: String,
    },
    /// A CRL numbered below the highest one signed (an older CRL put back).
    #[error("{} is stale: its CRL number {number} is below {highest}, the highest signed (an older CRL was put back, or a run stopped before writing the new one); re-sign it with `mtlsctl crl --env {env}`", path.display())]
    StaleCrl {
        path: PathBuf,
        number: u64,
        highest: u64,
        env: String,
    },
    /// A problem of the CA or a certificate that `doctor` finds, refused by another command.
    #[error("{0}")]
    Integrity(Box<doctor::Problem>),

    // -- requests to an external CA (`csr`, `import`, `sign`)
    /// A server certificate without a DNS or IP name; `fix` says how to give it one.
    #[error("a server certificate needs a DNS or IP name{fix}")]
    ServerNeedsName { fix: NameFix },
    #[error("a request for {tenant}/{env}/{kind} is already pending in {}: bring its certificate back with `mtlsctl import`, or pass --force to replace it (the old key is deleted)", dir.display())]
    RequestPending {
        tenant: String,
        env: String,
        kind: Kind,
        dir: PathBuf,
    },
    /// `key` is the pending key file that is missing.
    #[error("no pending request for {tenant}/{env}/{kind} ({} is missing): run `mtlsctl csr --tenant {tenant} --env {env} --kind {kind}` first", key.display())]
    NoPendingRequest {
        tenant: String,
        env: String,
        kind: Kind,
        key: PathBuf,
    },
    /// A folder that cannot be removed; `imported` when the import itself succeeded.
    #[error("{}cannot remove {}: {reason}", if *imported { "imported, but " } else { "" }, path.display())]
    CannotRemove {
        path: PathBuf,
        reason: std::io::Error,
        imported: bool,
    },
    /// A certificate that is not for the pending key; `whose` names the request.
    #[error("{} does not belong to the pending request of {whose}: its public key differs from the pending key", cert.display())]
    NotForPendingKey { cert: PathBuf, whose: String },
    #[error(
        "the CA chain must end with the CA's root certificate: pass it with --chain FILE (intermediates and root, PEM)"
    )]
    ChainWithoutRoot,
    /// The subject of a request to sign that is not a usable name (shown sanitized).
    #[error(
        "the request's subject '{}' cannot be used ({reason}): give --tenant T to take the subject from that tenant's profile",
        sanitize(subject)
    )]
    UnusableSubject { subject: String, reason: String },

    // -- files given on the command line
    /// A file that does not hold what it was given as: `what` is its flag or role.
    #[error("{} ({what}): {reason}; give {expected}", path.display())]
    Unparsable {
        path: PathBuf,
        what: &'static str,
        reason: PkiError,
        expected: Expected,
    },
    /// No CA certificate to verify a tenant's certificate against.
    #[error("no CA certificate to verify against: {} is missing and {} holds no root", ca_cert.display(), chain.display())]
    NoTrustAnchor { ca_cert: PathBuf, chain: PathBuf },
    /// The workspace's certificate with no key beside it in `dir` (`probe`).
    #[error("{} has no key.pem beside it: probe with --cert and --key", dir.display())]
    NoKeyBeside { dir: PathBuf },
    /// An encrypted key for `probe` (whose flag takes no FILE in the advice).
    #[error("{} is encrypted: give its passphrase with --key-passphrase-file or MTLSCTL_KEY_PASSPHRASE", path.display())]
    ProbeKeyPassphraseNeeded { path: PathBuf },
    #[error("cannot open {}: wrong password (--password-file / MTLSCTL_PFX_PASSWORD) or not a PFX", path.display())]
    PfxPassword { path: PathBuf },
    #[error("{} holds no certificate with its key", path.display())]
    PfxIncomplete { path: PathBuf },
    /// A file given to a `serve` flag that could not be used.
    #[error("{flag} {}: {source}", path.display())]
    ServeFile {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: Box<OpError>,
    },
    #[error("--client-ca {} holds '{subject}', which is not a CA certificate: give the CA that issued the client certificates", path.display())]
    ClientCaNotCa { path: PathBuf, subject: String },
    /// An encrypted `serve --key`.
    #[error("--key {} is encrypted: serve takes an unencrypted key file, such as the key.pem that `mtlsctl issue --kind server` writes", path.display())]
    ServeKeyEncrypted { path: PathBuf },
    #[error(
        "--allow-fingerprint '{value}' is not a SHA-256 fingerprint: give 64 hex digits, with or without colons (`mtlsctl inspect` shows it)"
    )]
    BadFingerprint { value: String },
    /// A key (or bundle) given to `probe` whose key is not the certificate's.
    #[error("the key {} does not belong to the certificate", key.display())]
    KeyNotOfCert { key: PathBuf },

    // -- the workspace's own files (`init`, `tenant add`, `env add`)
    /// `config` is the name of the marker file that exists.
    #[error("{} is already a workspace ({config} exists); add to it with `mtlsctl tenant add` and `mtlsctl env add`", root.display())]
    AlreadyWorkspace { root: PathBuf, config: &'static str },
    #[error("tenant '{name}' already exists ({}); edit that file to change it", profile.display())]
    TenantExists { name: String, profile: PathBuf },
    #[error("environment '{name}' already exists")]
    EnvExists { name: String },
    #[error("{} is not UTF-8 text", path.display())]
    NotUtf8 { path: PathBuf },
    /// mtlsctl.yaml without an `environments:` list that `env add` can extend.
    #[error("could not find the `environments:` list in {}: add '{env}' to it by hand, then run this again", path.display())]
    NoEnvList { path: PathBuf, env: String },

    // -- CAs
    #[error(
        "the new CA passphrase has {chars} characters: use at least {min} (a generated one from your secret store is best)"
    )]
    PassphraseTooShort { chars: usize, min: usize },
    /// `ca init` for an environment that declares an external CA.
    #[error(
        "environment '{env}' declares an external CA (ca.external: true), so mtlsctl does not create one; use `mtlsctl csr` and `mtlsctl import`"
    )]
    ExternalCaNotCreated { env: String },
    /// An environment whose CA has no certificate to hand off.
    #[error("environment '{env}' has no CA certificate: run `mtlsctl ca init --env {env}`")]
    NoCaCert { env: String },

    // -- batches (`issue --all`)
    #[error("no signer was unlocked for environment '{env}'")]
    NoSigner { env: String },
    /// An error that stopped a whole batch, given to each of its items: its words, as an
    /// error cannot be cloned.
    #[error("{reason}")]
    BatchStopped { reason: String },
    #[error("cannot journal the batch: {reason}")]
    BatchNotJournaled { reason: String },
    /// A certificate placed but missing from the audit log.
    #[error("certificate {serial} was written to {} but not recorded: {reason}", cert.display())]
    NotRecorded {
        serial: String,
        cert: PathBuf,
        reason: String,
    },

    // -- hand-offs (`export`)
    #[error("{} is a folder: with --zip, --out names the zip file to write", path.display())]
    ZipOutIsDir { path: PathBuf },
    /// An --out to replace that does not look like an earlier hand-off.
    #[error("{} exists and is not an earlier hand-off ({}); nothing was overwritten: choose another --out", path.display(), if *zip { "not a zip file" } else { "no manifest.json in it" })]
    NotEarlierHandoff { path: PathBuf, zip: bool },
    /// `reason` is the zip writer's error, or the I/O error of writing an entry.
    #[error("cannot build the zip: {reason}")]
    Zip {
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A client key type without a JWK form (rfc8705); `what` describes the key.
    #[error(
        "rfc8705: the client certificate's key ({what}) has no JWK form here: use an ECDSA, RSA or Ed25519 key"
    )]
    NoJwk { what: String },
    /// `import` refused a certificate: `finding` is the first error verification found.
    #[error("{} was not imported: it fails verification [{}]", cert.display(), finding.code)]
    NotImported {
        cert: PathBuf,
        finding: Box<Finding>,
    },
}

impl OpError {
    /// `source`, as a problem of the input file `path`.
    pub fn input(path: &std::path::Path, source: impl Into<OpError>) -> OpError {
        OpError::Input {
            path: path.to_path_buf(),
            source: Box::new(source.into()),
        }
    }
}

/// The command that looked for a current certificate, for the advice of
/// [`OpError::NoCurrentCert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertNeed {
    /// `revoke` of tenant/env: an older one can be named by serial.
    Revoke,
    /// `verify --tenant`.
    Verify,
    /// `probe --tenant`: a certificate file can be given instead.
    Probe,
    /// `export`: the client certificate handed to a gateway.
    Handoff,
    /// `gateway-test`: the certificate the suite expects the gateway to accept.
    GatewayTest,
}

fn no_current(tenant: &str, env: &str, kind: Option<Kind>, need: CertNeed) -> String {
    let k = |after: &str| kind.map(|k| format!("{k}{after}")).unwrap_or_default();
    match need {
        CertNeed::Revoke => format!(
            "{tenant}/{env} has no current certificate{}: `mtlsctl list --tenant {tenant} --env {env}` shows its certificates; name an older one with --serial",
            kind.map(|k| format!(" of kind {k}")).unwrap_or_default()
        ),
        CertNeed::Verify => format!(
            "{tenant} has no current {}certificate in {env}: run `mtlsctl issue --tenant {tenant} --env {env}{}` (or `mtlsctl csr` / `mtlsctl import` for an external CA)",
            k(" "),
            kind.map(|k| format!(" --kind {k}")).unwrap_or_default()
        ),
        CertNeed::Probe => format!(
            "{tenant}/{env} has no current {}certificate: run `mtlsctl issue --tenant {tenant} --env {env}`, or probe with --cert/--key",
            k(" ")
        ),
        CertNeed::GatewayTest => format!(
            "{tenant}/{env} has no current {}certificate for the suite's `current` case: run `mtlsctl issue --tenant {tenant} --env {env}` first",
            k(" ")
        ),
        CertNeed::Handoff => format!(
            "{tenant}/{env} has no current {}certificate to hand off: run `mtlsctl issue --tenant {tenant} --env {env}`",
            k(" ")
        ),
    }
}

/// How a server certificate gets the DNS or IP name it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameFix {
    /// From the tenant's profile (`csr`).
    Profile { tenant: String },
    /// From the flags, the request having none (`sign`).
    Flags,
    /// From the flags, or the names the request asks for (`sign --accept-csr-sans`).
    FlagsOrRequest,
}

impl fmt::Display for NameFix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameFix::Profile { tenant } => {
                write!(f, ": set server.san.dns in {tenant}'s profile")
            }
            NameFix::Flags => f.write_str(" and the request has none: give --dns NAME or --ip ADDR"),
            NameFix::FlagsOrRequest => f.write_str(
                ": give --dns NAME / --ip ADDR, or pass --accept-csr-sans to take the names the request asks for",
            ),
        }
    }
}

/// What a file given on the command line should have held, for [`OpError::Unparsable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A certificate an external CA sent back (`import`).
    FromCa,
    Certificate,
    Crl,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expected::FromCa => "the PEM or DER file the CA sent",
            Expected::Certificate => "a PEM or DER certificate file",
            Expected::Crl => "a PEM or DER CRL",
        })
    }
}

pub type Result<T, E = OpError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn no_current(kind: Option<Kind>, need: CertNeed) -> String {
        OpError::NoCurrentCert {
            tenant: "acme".into(),
            env: "prod".into(),
            kind,
            need,
        }
        .to_string()
    }

    #[test]
    fn no_current_certificate_keeps_each_commands_words() {
        assert_eq!(
            no_current(None, CertNeed::Revoke),
            "acme/prod has no current certificate: `mtlsctl list --tenant acme --env prod` shows its certificates; name an older one with --serial"
        );
        assert_eq!(
            no_current(Some(Kind::Server), CertNeed::Revoke),
            "acme/prod has no current certificate of kind server: `mtlsctl list --tenant acme --env prod` shows its certificates; name an older one with --serial"
        );
        assert_eq!(
            no_current(Some(Kind::Server), CertNeed::Verify),
            "acme has no current server certificate in prod: run `mtlsctl issue --tenant acme --env prod --kind server` (or `mtlsctl csr` / `mtlsctl import` for an external CA)"
        );
        assert_eq!(
            no_current(Some(Kind::Client), CertNeed::Probe),
            "acme/prod has no current client certificate: run `mtlsctl issue --tenant acme --env prod`, or probe with --cert/--key"
        );
        assert_eq!(
            no_current(Some(Kind::Client), CertNeed::Handoff),
            "acme/prod has no current client certificate to hand off: run `mtlsctl issue --tenant acme --env prod`"
        );
    }

    #[test]
    fn grouped_messages_keep_their_words() {
        let e = OpError::ServerNeedsName {
            fix: NameFix::Profile {
                tenant: "acme".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "a server certificate needs a DNS or IP name: set server.san.dns in acme's profile"
        );
        let e = OpError::ServerNeedsName {
            fix: NameFix::Flags,
        };
        assert_eq!(
            e.to_string(),
            "a server certificate needs a DNS or IP name and the request has none: give --dns NAME or --ip ADDR"
        );
        let removed = |imported| OpError::CannotRemove {
            path: "p".into(),
            reason: std::io::Error::other("busy"),
            imported,
        };
        assert_eq!(removed(false).to_string(), "cannot remove p: busy");
        assert_eq!(
            removed(true).to_string(),
            "imported, but cannot remove p: busy"
        );
        let e = OpError::Unparsable {
            path: "c.pem".into(),
            what: "--crl",
            reason: PkiError::PfxPassword,
            expected: Expected::Crl,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "c.pem (--crl): {}; give a PEM or DER CRL",
                PkiError::PfxPassword
            )
        );
    }
}
