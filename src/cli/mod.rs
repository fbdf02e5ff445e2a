//! The command line: parsing (clap), rendering, prompts. Holds no crypto and no file
//! layout; each command lives in its own file with its `Args` and `run()`.

pub mod activate;
pub mod advice;
pub mod audit;
pub mod ca;
pub mod completions;
pub mod crl;
pub mod csr;
pub mod deliver;
pub mod doctor;
pub mod expiry;
pub mod export;
pub mod gateway_test;
pub mod import;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod list;
pub mod ocsp;
pub mod out;
pub mod pfx;
pub mod probe;
pub mod profile;
pub mod renew;
pub mod revoke;
pub mod secrets;
pub mod serve;
pub mod sign;
pub mod verify;

use std::cell::RefCell;
use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use crate::profile::{Dur, Profiles};
use crate::workspace::recover::{Action, Recovered};
use crate::workspace::{Holder, Lock, Workspace};

pub(crate) use out::say;
pub use out::{Exit, Out};

const AFTER_HELP: &str = "\
Exit codes: 0 success; 1 error (bad input, I/O, crypto) or, for verify, an invalid chain;
2 usage error; expiry: 3 something is due for renewal, 4 something is expired, critical,
revoked, or a CRL is past its next update.

Secrets never go on the command line: use --ca-passphrase-file / MTLSCTL_CA_PASSPHRASE and
--password-file / MTLSCTL_PFX_PASSWORD, or type them at the prompt on a terminal.";

#[derive(Debug, Parser)]
#[command(
    name = "mtlsctl",
    version,
    about = "The lifecycle of mutual-TLS certificates: private CAs, per-tenant client certificates, PFX, verification, expiry, revocation and gateway hand-off",
    after_help = AFTER_HELP,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Workspace folder (default: the nearest parent folder holding mtlsctl.yaml)
    #[arg(
        short = 'C',
        long = "workspace",
        env = "MTLSCTL_WORKSPACE",
        hide_env_values = true,
        global = true,
        value_name = "DIR"
    )]
    pub workspace: Option<PathBuf>,
    /// Output format (`prometheus` only for `expiry`)
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Print only errors and warnings
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// No colour (also NO_COLOR)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Never prompt, even at a terminal (also MTLSCTL_NO_INPUT)
    #[arg(long, global = true, env = "MTLSCTL_NO_INPUT", hide_env_values = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub no_input: bool,
    /// How long to wait for another run that holds the workspace lock (0s: do not wait)
    #[arg(long, global = true, value_name = "DUR", default_value = "2m")]
    pub wait: Dur,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Prometheus,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a workspace: mtlsctl.yaml and profiles for environments and tenants
    Init(init::InitArgs),
    /// Manage tenant profiles
    #[command(subcommand)]
    Tenant(init::TenantCmd),
    /// Manage environment profiles
    #[command(subcommand)]
    Env(init::EnvCmd),
    /// Show effective profile settings and where each came from
    #[command(subcommand)]
    Profile(profile::ProfileCmd),
    /// Create or show an environment's private CA
    #[command(subcommand)]
    Ca(ca::CaCmd),
    /// Issue a tenant's certificate: key, certificate, chain and PFX
    Issue(issue::Args),
    /// Bundle a key, certificate and chain into a password-protected PFX (PKCS#12)
    Pfx(pfx::Args),
    /// List issued certificates
    List(list::Args),
    /// Describe a certificate, chain, CSR, CRL, key or PFX (never printing secrets)
    Inspect(inspect::Args),
    /// Verify a certificate chain and explain any failure
    Verify(verify::Args),
    /// Make a key and a CSR from a tenant's profile, for an external CA
    Csr(csr::Args),
    /// Bring back a certificate an external CA signed for a pending CSR
    Import(import::Args),
    /// Sign a CSR from a partner or gateway operator with an environment's CA
    Sign(sign::Args),
    /// Report certificates and CRLs due for renewal (table, JSON, Prometheus)
    Expiry(expiry::Args),
    /// Reissue certificates that are due for renewal
    Renew(renew::Args),
    /// Make a staged successor (renew --stage) the current certificate
    Activate(activate::Args),
    /// Revoke a certificate and re-sign the environment's CRL
    Revoke(revoke::Args),
    /// Re-sign an environment's CRLs (only those due with --if-due), or publish them
    Crl(crl::Args),
    /// List the audit trail, or check its hash chain (`audit verify`)
    Audit(audit::Args),
    /// Pack the public trust material a gateway operator needs (never a private key)
    Export(export::Args),
    /// Write our platform's own credential, key included (PEM folder, PFX, k8s Secret)
    Deliver(deliver::Args),
    /// Check that the CA, certificates, revocations and CRL agree (--repair fixes some)
    Doctor(doctor::Args),
    /// Handshake with a live mTLS endpoint using a client certificate, and diagnose
    Probe(probe::Args),
    /// Judge a live mTLS gateway with a suite of good and bad client certificates
    GatewayTest(gateway_test::Args),
    /// Run a local mTLS test gateway that checks client certificates
    Serve(serve::Args),
    /// OCSP responder (and CRL server) for an environment's CAs
    #[command(subcommand)]
    Ocsp(ocsp::OcspCmd),
    /// Print a shell completion script
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff)
    Man(completions::ManArgs),
}

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub global: Global,
    pub stdout_tty: bool,
    pub out: Out,
    /// What recovery did when this command took the lock ([`Ctx::lock_for_write`]).
    pub recovered: RefCell<Vec<Recovered>>,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.global.output == Output::Json
    }

    pub fn color(&self) -> bool {
        self.stdout_tty && !self.global.no_color && std::env::var_os("NO_COLOR").is_none()
    }

    /// The workspace, from -C / MTLSCTL_WORKSPACE or found upwards from here; its lock
    /// waits as --wait says and tells on stderr whom it waits for.
    pub fn workspace(&self) -> Result<Workspace> {
        let ws = match &self.global.workspace {
            Some(d) => Workspace::open(d)?,
            None => Workspace::discover(&std::env::current_dir()?)?,
        };
        let wait = std::time::Duration::from_secs(self.global.wait.secs().max(0) as u64);
        Ok(ws.with_lock_wait(wait, Some(std::sync::Arc::new(tell_lock_wait))))
    }

    pub fn profiles(&self, ws: &Workspace) -> Result<Profiles> {
        Ok(Profiles::load(ws)?)
    }

    /// Takes the workspace lock for a command that changes the workspace: recovery first
    /// finishes or undoes what interrupted runs left. Table output prints what it did now,
    /// a line each ("recovered: ..."); JSON output carries it as `recovered`.
    pub fn lock_for_write(&self, ws: &Workspace) -> Result<Lock> {
        let (lock, done) = ws.lock_for_write()?;
        for d in &done {
            let line = format!("recovered: {}", crate::report::sanitize(&d.message));
            if !self.json() {
                self.out.line(&line)?;
            }
            if d.action == Action::CrlNeeded && (self.global.quiet || self.json()) {
                self.warn(&line);
            }
        }
        self.recovered.borrow_mut().extend(done);
        Ok(lock)
    }

    /// A report as JSON, with what recovery did as `recovered` when it did anything.
    pub fn emit_json<T: serde::Serialize + ?Sized>(&self, report: &T) -> Result<()> {
        let done = self.recovered.borrow();
        if done.is_empty() {
            return Ok(self.out.json(report)?);
        }
        let mut v = serde_json::to_value(report)?;
        if let Some(m) = v.as_object_mut() {
            m.insert("recovered".into(), serde_json::to_value(&*done)?);
        }
        Ok(self.out.json(&v)?)
    }

    /// Refuses output formats a command does not have.
    pub fn only_table_json(&self, cmd: &str) -> Result<()> {
        if self.global.output == Output::Prometheus {
            return Err(UsageError(format!(
                "`{cmd}` has no prometheus output: use -o table or -o json (prometheus is for `expiry`)"
            ))
            .into());
        }
        Ok(())
    }

    /// A line of progress or a note: table output only (dropped under --quiet).
    pub fn note(&self, msg: impl AsRef<str>) -> std::io::Result<()> {
        if self.json() {
            return Ok(());
        }
        self.out.line(msg.as_ref())
    }

    /// The one render path of a report: JSON as it is, or the command's table form.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        report: &T,
        table: impl FnOnce(&Out) -> Result<()>,
    ) -> Result<()> {
        match self.global.output {
            Output::Json => self.emit_json(report),
            Output::Table => table(&self.out),
            Output::Prometheus => Err(UsageError(
                "prometheus output is only for `expiry`: use -o table or -o json".into(),
            )
            .into()),
        }
    }

    /// A warning on stderr, escaped: warnings name files and folders whose names come
    /// from the file system.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", crate::report::sanitize(msg.as_ref()));
    }

    /// An error on stderr that does not end the command (one folder of many), escaped.
    pub fn error(&self, msg: impl AsRef<str>) {
        eprintln!("error: {}", crate::report::sanitize(msg.as_ref()));
    }
}

/// Said once when the workspace lock is taken by another run (the library decides when).
fn tell_lock_wait(holder: Option<&Holder>, wait: std::time::Duration) {
    let wait = Dur::from_secs(wait.as_secs() as i64);
    match holder {
        Some(h) => eprintln!("waiting up to {wait} for the workspace lock, held by {h}"),
        None => eprintln!(
            "waiting up to {wait} for the workspace lock, held by a process that has not said who it is"
        ),
    }
}

/// A misuse of the command line found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn exit_code_for(err: &anyhow::Error) -> Exit {
    if err.downcast_ref::<UsageError>().is_some() {
        Exit::Usage
    } else {
        Exit::Error
    }
}

/// One line: the error and its causes, joined, each with the advice of [`advice`].
pub fn render_error(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = advice::describe(cause);
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

pub fn run(cli: Cli) -> Result<Exit> {
    let ctx = Ctx {
        out: Out::new(cli.global.quiet),
        global: cli.global,
        stdout_tty: std::io::stdout().is_terminal(),
        recovered: RefCell::new(Vec::new()),
    };
    let code = match cli.command {
        Command::Init(a) => init::run_init(&ctx, a)?,
        Command::Tenant(c) => init::run_tenant(&ctx, c)?,
        Command::Env(c) => init::run_env(&ctx, c)?,
        Command::Profile(c) => profile::run(&ctx, c)?,
        Command::Ca(c) => ca::run(&ctx, c)?,
        Command::Issue(a) => issue::run(&ctx, a)?,
        Command::Pfx(a) => pfx::run(&ctx, a)?,
        Command::List(a) => list::run(&ctx, a)?,
        Command::Inspect(a) => inspect::run(&ctx, a)?,
        Command::Verify(a) => verify::run(&ctx, a)?,
        Command::Csr(a) => csr::run(&ctx, a)?,
        Command::Import(a) => import::run(&ctx, a)?,
        Command::Sign(a) => sign::run(&ctx, a)?,
        Command::Expiry(a) => expiry::run(&ctx, a)?,
        Command::Renew(a) => renew::run(&ctx, a)?,
        Command::Activate(a) => activate::run(&ctx, a)?,
        Command::Revoke(a) => revoke::run(&ctx, a)?,
        Command::Crl(a) => crl::run(&ctx, a)?,
        Command::Audit(a) => audit::run(&ctx, a)?,
        Command::Export(a) => export::run(&ctx, a)?,
        Command::Deliver(a) => deliver::run(&ctx, a)?,
        Command::Doctor(a) => doctor::run(&ctx, a)?,
        Command::Probe(a) => probe::run(&ctx, a)?,
        Command::GatewayTest(a) => gateway_test::run(&ctx, a)?,
        Command::Serve(a) => serve::run(&ctx, a)?,
        Command::Ocsp(c) => ocsp::run(&ctx, c)?,
        Command::Completions(a) => completions::run_completions(&ctx, a)?,
        Command::Man(a) => completions::run_man(&ctx, a)?,
    };
    Ok(code)
}

/// `--kind client|server`, with both values listed in help and completions.
pub fn kind_parser() -> impl clap::builder::TypedValueParser<Value = crate::pki::Kind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(crate::pki::Kind::ALL.map(|k| k.as_str()))
        .try_map(|s| s.parse::<crate::pki::Kind>())
}

/// `--pfx-target`: the PFX profiles by the name of who must open them.
pub fn pfx_target_parser()
-> impl clap::builder::TypedValueParser<Value = crate::pki::pkcs12::PfxCompat> {
    use crate::pki::pkcs12::PfxCompat;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(PfxCompat::NAMES.iter().map(|(n, _)| *n))
        .try_map(|s| s.parse::<PfxCompat>())
}
