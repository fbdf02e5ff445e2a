//! Staged rollover for gateways that pin our certificate (issue 13, part 3): `renew
//! --stage` (or `handoff.pinning: true`) issues the successor staged, `export` carries
//! both pins, `probe --staged` checks the gateway accepts it, `activate` switches, and
//! `renew` revokes the old one once `handoff.overlap` has passed. Judged by nginx
//! pinning a fingerprint with a `map $ssl_client_fingerprint` built from the export.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nginx::free_port;
use common::*;
use serde_json::Value;

fn pass(ws: &Ws) -> String {
    ws.pass_file.display().to_string()
}

fn current(ws: &Ws) -> String {
    std::fs::read_link(ws.path("pki/prod/acme/client/current"))
        .unwrap()
        .display()
        .to_string()
}

fn leaf(ws: &Ws, serial: &str, file: &str) -> PathBuf {
    ws.path(&format!("pki/prod/acme/client/{serial}/{file}"))
}

/// Makes acme's gateway a pinning one with the given overlap.
fn pinning(ws: &Ws, overlap: &str) {
    let p = "profiles/tenants/acme.yaml";
    let mut t = std::fs::read_to_string(ws.path(p)).unwrap();
    t.push_str(&format!(
        "handoff:\n  pinning: true\n  overlap: {overlap}\n"
    ));
    ws.write(p, &t);
}

fn export(ws: &Ws, out: &Path) -> Value {
    ws.json(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "nginx,iis,tyk,envoy",
        "--out",
        out.to_str().unwrap(),
        "--force",
    ])
}

/// nginx checking the chain and CRL of an export and pinning the fingerprints of its
/// `nginx/pinned-fingerprints.conf`: 200 to a pinned certificate, 403 to another.
struct PinningNginx {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
}

impl PinningNginx {
    fn conf(d: &Path, port: u16, export: &Path) -> String {
        format!(
            "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    include {e}/nginx/pinned-fingerprints.conf;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.crt;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {e}/ca-chain.pem;
        ssl_crl {e}/crl.pem;
        ssl_verify_client on;
        ssl_verify_depth 3;
        location / {{
            if ($mtls_pinned_acme = 0) {{ return 403; }}
            return 200 \"ok\";
        }}
    }}
}}
",
            d = d.display(),
            e = export.display(),
        )
    }

    fn start(export: &Path) -> PinningNginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        let (ok, out) = tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-days",
                "2",
                "-keyout",
                d.join("server.key").to_str().unwrap(),
                "-out",
                d.join("server.crt").to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        let port = free_port();
        std::fs::write(d.join("nginx.conf"), Self::conf(d, port, export)).unwrap();
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "nginx exited with {st}: {}",
                    std::fs::read_to_string(d.join("error.log")).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "nginx did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PinningNginx { dir, child, port }
    }

    /// Re-reads the export (the same folder, exported again).
    fn reload(&self) {
        let d = self.dir.path();
        let (ok, out) = tool(
            "nginx",
            &[
                "-p",
                d.to_str().unwrap(),
                "-c",
                d.join("nginx.conf").to_str().unwrap(),
                "-s",
                "reload",
            ],
        );
        assert!(ok, "{out}");
        std::thread::sleep(Duration::from_millis(700));
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    fn status(&self, cert: &Path, key: &Path) -> u16 {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg(self.url())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for PinningNginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ones(v: &Value) -> usize {
    v.as_array().map(Vec::len).unwrap_or(0)
}

#[test]
fn staged_rollover_through_a_pinning_nginx_iis_and_tyk() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass(&ws);
    pinning(&ws, "3s");
    let s1 = s(&ws.issue("acme", "prod", &[])["serial"]).to_string();
    // a second apart, so the staged successor is strictly the newer certificate
    std::thread::sleep(Duration::from_millis(1100));
    let r = ws.json(&["renew", "--force", "--ca-passphrase-file", &pf]);
    let item = &r["items"][0];
    assert_eq!(item["staged"], true, "{r:#}");
    assert_eq!(item["handoff"], "pinning");
    let s2 = s(&item["certificate"]["serial"]).to_string();
    assert!(r["next"].to_string().contains("activate"), "{r:#}");
    // the active one stays current; the successor is listed as staged
    assert_eq!(current(&ws), s1);
    let list = ws.json(&["list", "--all"]);
    let st = |serial: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["serial"] == serial)
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(st(&s2), "staged", "{list:#}");
    // plain `list` shows the staged one beside the active one; doctor accepts it
    let plain = ws.json(&["list"]);
    assert_eq!(ones(&plain), 2, "{plain:#}");
    let out = ws.run(&["-o", "json", "doctor"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errors"], 0, "{doc:#}");
    // a second renew does not stage another one
    let again = ws.json(&["renew", "--force", "--ca-passphrase-file", &pf]);
    assert_eq!(again["items"][0]["action"], "skipped", "{again:#}");

    let out = tempfile::tempdir().unwrap();
    let e = out.path().join("acme");
    export(&ws, &e);
    let web = std::fs::read_to_string(e.join("iis/web.config.xml")).unwrap();
    assert_eq!(web.matches("certificate=\"").count(), 2, "{web}");
    let api: Value =
        serde_json::from_slice(&std::fs::read(e.join("tyk/api-definition-snippet.json")).unwrap())
            .unwrap();
    assert_eq!(ones(&api["client_certificates"]), 2, "{api:#}");
    let envoy = std::fs::read_to_string(e.join("envoy/validation_context.yaml")).unwrap();
    let hashes = envoy
        .lines()
        .find(|l| l.contains("verify_certificate_hash"))
        .unwrap();
    assert_eq!(hashes.matches('"').count(), 4, "{hashes}");
    let readme = std::fs::read_to_string(e.join("README.txt")).unwrap();
    assert!(readme.contains("add the new pin by"), "{readme}");
    assert!(readme.contains("remove the old pin after"), "{readme}");

    let judged = judges_present(&["nginx", "curl", "openssl"]);
    let gw = judged.then(|| PinningNginx::start(&e));
    if let Some(gw) = &gw {
        // both pinned before activate
        assert_eq!(
            gw.status(&leaf(&ws, &s1, "fullchain.pem"), &leaf(&ws, &s1, "key.pem")),
            200
        );
        assert_eq!(
            gw.status(&leaf(&ws, &s2, "fullchain.pem"), &leaf(&ws, &s2, "key.pem")),
            200
        );
    }
    // activate refuses without a probe that passed
    let refused = ws.run(&["activate", "--tenant", "acme", "--env", "prod"]);
    assert!(!refused.status.success());
    let (_, err) = text(&refused);
    assert!(err.contains("--staged") && err.contains("--force"), "{err}");
    assert_eq!(current(&ws), s1);
    if let Some(gw) = &gw {
        let url = gw.url();
        let p = ws.run(&[
            "probe",
            &url,
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--staged",
            "--ca",
            gw.dir.path().join("server.crt").to_str().unwrap(),
        ]);
        assert!(p.status.success(), "{:?}", text(&p));
        ws.ok(&["activate", "--tenant", "acme", "--env", "prod"]);
    } else {
        ws.ok(&["activate", "--tenant", "acme", "--env", "prod", "--force"]);
    }
    assert_eq!(current(&ws), s2);
    let list = ws.json(&["list", "--all"]);
    let old = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == s1.as_str())
        .unwrap();
    assert_eq!(old["status"], "superseded", "{list:#}");
    // the overlap: both pins still exported
    export(&ws, &e);
    let api: Value =
        serde_json::from_slice(&std::fs::read(e.join("tyk/api-definition-snippet.json")).unwrap())
            .unwrap();
    assert_eq!(
        ones(&api["client_certificates"]),
        1,
        "the staged one is current now: {api:#}"
    );
    if let Some(gw) = &gw {
        gw.reload();
        assert_eq!(
            gw.status(&leaf(&ws, &s2, "fullchain.pem"), &leaf(&ws, &s2, "key.pem")),
            200
        );
        // once the pin is removed from the re-export, the old one is refused
        assert_eq!(
            gw.status(&leaf(&ws, &s1, "fullchain.pem"), &leaf(&ws, &s1, "key.pem")),
            403
        );
    }
    // after the overlap renew revokes the superseded one and says so
    std::thread::sleep(Duration::from_millis(3200));
    let r = ws.json(&["renew", "--ca-passphrase-file", &pf]);
    assert_eq!(r["retired"][0]["serial"], s1.as_str(), "{r:#}");
    assert_eq!(r["retired"][0]["action"], "revoked");
    assert!(r["next"][0].as_str().unwrap().contains("revoked"), "{r:#}");
    let list = ws.json(&["list", "--all"]);
    let old = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == s1.as_str())
        .unwrap();
    assert_eq!(old["status"], "revoked");
    assert_eq!(current(&ws), s2);
    export(&ws, &e);
    let web = std::fs::read_to_string(e.join("iis/web.config.xml")).unwrap();
    assert_eq!(web.matches("certificate=\"").count(), 1, "{web}");
    if let Some(gw) = &gw {
        gw.reload();
        assert_eq!(
            gw.status(&leaf(&ws, &s2, "fullchain.pem"), &leaf(&ws, &s2, "key.pem")),
            200
        );
        assert_ne!(
            gw.status(&leaf(&ws, &s1, "fullchain.pem"), &leaf(&ws, &s1, "key.pem")),
            200
        );
    }
}

#[test]
fn a_failed_probe_blocks_activate_unless_forced_and_ca_trust_needs_no_staging() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass(&ws);
    let s1 = s(&ws.issue("acme", "prod", &[])["serial"]).to_string();
    // no pinning in the profile: renew says the CA-trust case applies
    let r = ws.json(&["renew", "--force", "--dry-run"]);
    assert_eq!(r["items"][0]["handoff"], "ca-trust", "{r:#}");
    let r = ws.json(&["renew", "--force", "--stage", "--ca-passphrase-file", &pf]);
    let s2 = s(&r["items"][0]["certificate"]["serial"]).to_string();
    assert_eq!(current(&ws), s1);
    // a probe of nothing listening fails, and is recorded
    let url = format!("https://127.0.0.1:{}/", free_port());
    let p = ws.run(&[
        "probe",
        &url,
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--staged",
        "--timeout",
        "2s",
    ]);
    assert!(!p.status.success());
    let refused = ws.run(&["activate", "--tenant", "acme", "--env", "prod"]);
    assert!(!refused.status.success());
    let (_, err) = text(&refused);
    assert!(err.contains("probe failed"), "{err}");
    let a = ws.json(&["activate", "--tenant", "acme", "--env", "prod", "--force"]);
    assert_eq!(a["serial"], s2.as_str());
    assert_eq!(a["superseded"], s1.as_str());
    assert_eq!(current(&ws), s2);
    // nothing staged any more
    let again = ws.run(&["activate", "--tenant", "acme", "--env", "prod", "--force"]);
    assert!(!again.status.success());
}

#[test]
fn activate_killed_at_each_fault_point_leaves_one_active_certificate() {
    for point in [
        "after-journal",
        "after-supersede",
        "after-meta",
        "before-audit",
        "after-audit",
    ] {
        let ws = Ws::with_cas(&["acme"]);
        let pf = pass(&ws);
        ws.issue("acme", "prod", &[]);
        let r = ws.json(&["renew", "--force", "--stage", "--ca-passphrase-file", &pf]);
        let s2 = s(&r["items"][0]["certificate"]["serial"]).to_string();
        let out = ws
            .cmd()
            .args(["activate", "--tenant", "acme", "--env", "prod", "--force"])
            .env("MTLSCTL_FAULT", point)
            .output()
            .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "{point}: not killed: {:?}",
            text(&out)
        );
        // the next run that takes the lock recovers (rolls the activation forward): one
        // active certificate, the successor, and current on it
        ws.ok(&["renew", "--ca-passphrase-file", &pf]);
        let list = ws.json(&["list", "--all"]);
        let active: Vec<&Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "superseded" && r["status"] != "revoked")
            .collect();
        assert_eq!(active.len(), 1, "{point}: {list:#}");
        assert_eq!(active[0]["serial"], s2.as_str(), "{point}: {list:#}");
        assert_eq!(current(&ws), s2, "{point}");
        assert!(
            std::fs::read_dir(ws.path("journal"))
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        );
        let v = ws.run(&["audit", "verify"]);
        assert!(v.status.success(), "{point}: {:?}", text(&v));
    }
}
