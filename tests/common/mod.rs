//! Shared helpers for the integration tests: a throwaway workspace driven through the
//! real binary, and independent judges (openssl, keytool).
#![allow(dead_code)]

pub mod nginx;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

/// The CA passphrase every test workspace uses.
pub const CA_PASS: &str = "correct horse battery staple";

/// A temporary workspace; removed on drop.
pub struct Ws {
    pub dir: tempfile::TempDir,
    pub pass_file: PathBuf,
}

impl Ws {
    /// `init` with the given tenants and the default envs (nonprod, prod); no CA yet.
    pub fn new(tenants: &[&str]) -> Ws {
        Self::with_envs(tenants, &[])
    }

    /// `init` with the given tenants and envs, one-tier CAs (`ca.tiers: 1`: the root
    /// signs leaves), as the suites written before hierarchies expect; [`Ws::two_tier`]
    /// keeps the default.
    pub fn with_envs(tenants: &[&str], envs: &[&str]) -> Ws {
        Self::with_envs_tiers(tenants, envs, 1)
    }

    /// `init` with the default two tiers (a root and issuing CAs).
    pub fn two_tier(tenants: &[&str]) -> Ws {
        Self::with_envs_tiers(tenants, &[], 2)
    }

    /// [`Ws::two_tier`] plus an encrypted CA in nonprod and prod.
    pub fn two_tier_with_cas(tenants: &[&str]) -> Ws {
        let ws = Self::two_tier(tenants);
        for env in ["nonprod", "prod"] {
            ws.ok(&[
                "ca",
                "init",
                "--env",
                env,
                "--ca-passphrase-file",
                ws.pass_file.to_str().unwrap(),
            ]);
        }
        ws
    }

    fn with_envs_tiers(tenants: &[&str], envs: &[&str], tiers: u8) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let pass_file = dir.path().join("ca-pass.txt");
        std::fs::write(&pass_file, format!("{CA_PASS}\n")).unwrap();
        let ws = Ws { dir, pass_file };
        let mut args = vec![
            "init".to_string(),
            ws.root().display().to_string(),
            "--org".into(),
            "Example Platform".into(),
        ];
        for t in tenants {
            args.push("--tenant".into());
            args.push(t.to_string());
        }
        for e in envs {
            args.push("--env".into());
            args.push(e.to_string());
        }
        let out = ws.run_raw(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if tiers != 2 {
            let cfg = ws.path("mtlsctl.yaml");
            let text = std::fs::read_to_string(&cfg).unwrap();
            assert!(text.contains("  tiers: 2 "), "the template sets ca.tiers");
            std::fs::write(
                &cfg,
                text.replacen("  tiers: 2 ", &format!("  tiers: {tiers} "), 1),
            )
            .unwrap();
        }
        ws
    }

    /// `init` plus an encrypted CA in every listed env.
    pub fn with_cas(tenants: &[&str]) -> Ws {
        let ws = Self::new(tenants);
        for env in ["nonprod", "prod"] {
            ws.ok(&[
                "ca",
                "init",
                "--env",
                env,
                "--ca-passphrase-file",
                ws.pass_file.to_str().unwrap(),
            ]);
        }
        ws
    }

    /// The workspace folder (the temp dir's `ws` subfolder, so files beside it stay outside).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// A `mtlsctl` command bound to this workspace, with no inherited secrets.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("mtlsctl").unwrap();
        c.env_remove("MTLSCTL_CA_PASSPHRASE")
            .env_remove("MTLSCTL_PFX_PASSWORD")
            .env_remove("MTLSCTL_WORKSPACE")
            .env("MTLSCTL_NO_INPUT", "1")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path());
        c.arg("-C").arg(self.root());
        c
    }

    pub fn run_raw(&self, args: &[&str]) -> Output {
        let mut c = Command::cargo_bin("mtlsctl").unwrap();
        c.env("MTLSCTL_NO_INPUT", "1")
            .env_remove("MTLSCTL_WORKSPACE")
            .current_dir(self.dir.path());
        c.args(args).output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "mtlsctl {:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            args,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with -o json and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["-o", "json"];
        a.extend_from_slice(args);
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON ({e}): {s}"))
    }

    /// Issues tenant/env with the CA passphrase and returns the JSON report.
    pub fn issue(&self, tenant: &str, env: &str, extra: &[&str]) -> serde_json::Value {
        let pf = self.pass_file.to_str().unwrap().to_string();
        let mut a = vec![
            "issue",
            "--tenant",
            tenant,
            "--env",
            env,
            "--ca-passphrase-file",
            &pf,
        ];
        a.extend_from_slice(extra);
        self.json(&a)
    }

    /// Replaces a profile file's text (relative to the workspace root).
    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }
}

/// Runs an external tool; returns (success, stdout+stderr).
pub fn tool(prog: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// `openssl ARGS`, asserting success; returns the output.
pub fn openssl(args: &[&str]) -> String {
    let (ok, s) = tool("openssl", args);
    assert!(ok, "openssl {args:?} failed:\n{s}");
    s
}

pub fn has(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether the independent judge `prog` is here to run a check. Away from CI a missing
/// judge skips the check with a note; under CI (`CI` set, as .ci/run runs) it fails the
/// test, so a green run never hides a check that did not happen.
#[allow(dead_code)]
pub fn judge(prog: &str, package: &str) -> bool {
    if has(prog) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("`{prog}` is needed to judge this test and CI is set: apt-get install {package}");
    }
    eprintln!(
        "SKIPPED: `{prog}` is not installed (Debian package {package}); this check did not run"
    );
    false
}

/// Whether every program an end-to-end judge needs is installed (see [`judge`]).
#[allow(dead_code)]
pub fn judges_present(progs: &[&str]) -> bool {
    progs.iter().all(|p| {
        let package = match *p {
            "nginx" => "nginx-light",
            "node" => "nodejs",
            "promtool" => "prometheus",
            "keytool" => "default-jre-headless",
            other => other,
        };
        judge(p, package)
    })
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

pub fn s(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// stdout and stderr of a run, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails if stdout or stderr shows key material or any of `secrets`.
pub fn assert_no_secrets(out: &Output, secrets: &[&str]) {
    let (o, e) = text(out);
    for s in [&o, &e] {
        assert!(!s.contains("PRIVATE KEY"), "key material printed:\n{s}");
        for sec in secrets {
            assert!(!s.contains(sec), "a secret was printed:\n{s}");
        }
    }
}

/// A temporary folder where a test drives the openssl CLI: an independent CA, foreign
/// certificates, CRLs. Commands run inside it, so file names are relative; `cnf` is the
/// OpenSSL configuration the test gives.
pub struct OpensslDir {
    pub dir: tempfile::TempDir,
}

impl OpensslDir {
    pub fn new(cnf: &str) -> OpensslDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cnf"), cnf).unwrap();
        OpensslDir { dir }
    }

    pub fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ps(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }

    /// `openssl ARGS` in the folder, asserting success; returns stdout and stderr.
    pub fn ossl(&self, args: &[&str]) -> String {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "openssl {args:?} failed:\n{s}");
        s
    }

    /// A fresh P-256 key `name`.key and a request `name`.csr for `subj` (`/CN=...`).
    pub fn ec_key_and_csr(&self, name: &str, subj: &str) {
        self.ossl(&[
            "req",
            "-new",
            "-config",
            "cnf",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subj,
        ]);
    }

    /// Signs the request `csr` with the CA `ca`.crt/`ca`.key and the extension section
    /// `ext` of `cnf`, into `out`.
    pub fn sign_csr(&self, csr: &str, ca: &str, ext: &str, days: u32, out: &str) {
        self.ossl(&[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-extfile",
            "cnf",
            "-extensions",
            ext,
            "-out",
            out,
        ]);
    }
}
