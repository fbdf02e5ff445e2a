//! `expiry`: each exit code, each source kind (workspace, folders of foreign PEM/DER,
//! live TLS endpoints), broken files, stale CRLs, and the Prometheus output judged by
//! promtool.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throwaway CA run by `openssl ca`, to make certificates with any dates and CRLs.
struct ForeignCa {
    dir: PathBuf,
}

impl ForeignCa {
    fn new(dir: &Path, name: &str) -> ForeignCa {
        let dir = dir.join(name);
        std::fs::create_dir_all(dir.join("newcerts")).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = dflt\n[dflt]\ndir = {d}\ndatabase = {d}/index.txt\n\
                 new_certs_dir = {d}/newcerts\ncertificate = {d}/ca.crt\nprivate_key = {d}/ca.key\n\
                 serial = {d}/serial\ncrlnumber = {d}/crlnumber\ndefault_md = sha256\n\
                 policy = any\nunique_subject = no\ndefault_crl_days = 30\n\
                 [any]\ncommonName = supplied\norganizationName = optional\n"
            ),
        )
        .unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            dir.join("ca.key").to_str().unwrap(),
            "-out",
            dir.join("ca.crt").to_str().unwrap(),
            "-subj",
            &format!("/CN={name} root"),
            "-days",
            "3650",
        ]);
        ForeignCa { dir }
    }

    fn p(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// Signs a new leaf valid from `start` to `end` (YYYYMMDDHHMMSSZ) or for `days`;
    /// returns the PEM path.
    fn leaf(&self, name: &str, subj: &str, dates: Dates) -> String {
        let key = self.p(&format!("{name}.key"));
        let csr = self.p(&format!("{name}.csr"));
        let crt = self.p(&format!("{name}.crt"));
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subj,
        ]);
        let cnf = self.p("ca.cnf");
        let mut args = vec![
            "ca", "-batch", "-notext", "-config", &cnf, "-in", &csr, "-out", &crt,
        ];
        let days;
        match dates {
            Dates::Days(d) => {
                days = d.to_string();
                args.extend(["-days", &days]);
            }
            Dates::Range(s, e) => args.extend(["-startdate", s, "-enddate", e]),
        }
        openssl(&args);
        crt
    }

    fn revoke(&self, crt: &str) {
        openssl(&[
            "ca",
            "-config",
            &self.p("ca.cnf"),
            "-revoke",
            crt,
            "-crl_reason",
            "keyCompromise",
        ]);
    }

    /// A CRL with the given nextUpdate (YYYYMMDDHHMMSSZ), or 30 days.
    fn crl(&self, out: &str, window: Option<(&str, &str)>) {
        let cnf = self.p("ca.cnf");
        let mut args = vec!["ca", "-gencrl", "-config", &cnf, "-out", out];
        if let Some((last, next)) = window {
            args.extend(["-crl_lastupdate", last, "-crl_nextupdate", next]);
        }
        openssl(&args);
    }
}

enum Dates<'a> {
    Days(u32),
    Range(&'a str, &'a str),
}

fn expiry(ws: &Ws, args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["-o", "json", "expiry"];
    a.extend_from_slice(args);
    let out = ws.run(&a);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("bad JSON ({e}): {stdout}"));
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn find(v: &Value, pred: impl Fn(&Value) -> bool) -> &Value {
    v.as_array()
        .unwrap()
        .iter()
        .find(|f| pred(f))
        .unwrap_or_else(|| panic!("no such finding in {v:#}"))
}

fn statuses(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["status"]).to_string())
        .collect()
}

/// Appends top-level keys to a tenant's profile.
fn tenant_set(ws: &Ws, tenant: &str, yaml: &str) {
    let p = ws.path(&format!("profiles/tenants/{tenant}.yaml"));
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(yaml);
    std::fs::write(p, text).unwrap();
}

#[test]
fn workspace_exit_codes_follow_profile_windows_and_flags() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    ws.issue("acme", "prod", &[]);
    ws.issue("beta", "prod", &[]);
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 0, "{v:#}");
    // 2 leaves, 2 CAs, 2 CRLs
    assert_eq!(v.as_array().unwrap().len(), 6, "{v:#}");
    assert!(statuses(&v).iter().all(|x| x == "ok"), "{v:#}");
    for kind in ["ca", "crl", "client"] {
        find(&v, |f| f["kind"] == kind);
    }
    let acme = find(&v, |f| f["tenant"] == "acme");
    assert_eq!(acme["env"], "prod");
    assert_eq!(acme["within_seconds"], 30 * 86_400, "profile default");

    // a 15-day certificate, then the profile asks for 20 days of notice: due (3)
    tenant_set(&ws, "acme", "renew_before: 1d\n");
    let r = ws.issue("acme", "prod", &["--validity", "15d", "--force"]);
    let p = ws.path("profiles/tenants/acme.yaml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("renew_before: 1d", "renew_before: 20d");
    std::fs::write(&p, text).unwrap();
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 3, "{v:#}");
    let acme = find(&v, |f| f["tenant"] == "acme");
    assert_eq!(acme["status"], "due");
    assert_eq!(
        acme["serial"], r["serial"],
        "the current leaf, not the superseded one"
    );
    assert_eq!(acme["within_seconds"], 20 * 86_400);
    // whole days, rounded down
    assert_eq!(acme["days_left"], 14);
    // the table says the same, sorted by time left, without colour off a terminal
    let out = ws.run(&["expiry"]);
    assert_eq!(out.status.code(), Some(3));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(!table.contains('\u{1b}'), "{table}");
    let row = |needle: &str| {
        table
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in\n{table}"))
    };
    assert!(table.lines().nth(row("acme/prod")).unwrap().contains("due"));
    // sorted by time left: the 7-day CRL, acme (15d), beta (365d), the CAs (10y)
    assert!(row("crl.pem") < row("acme/prod"), "{table}");
    assert!(row("acme/prod") < row("beta/prod"), "{table}");
    assert!(row("beta/prod") < row("ca.crt"), "{table}");

    // --within overrides the profile: 10 days of notice, 15 left: ok again
    let (code, v, _) = expiry(&ws, &["--within", "10d"]);
    assert_eq!(code, 0, "{v:#}");
    // --critical wider than what is left: 4
    let (code, v, _) = expiry(&ws, &["--critical", "16d"]);
    assert_eq!(code, 4, "{v:#}");
    assert_eq!(find(&v, |f| f["tenant"] == "acme")["status"], "critical");

    // a 2-day certificate is critical under the default 7 days
    tenant_set(&ws, "beta", "renew_before: 1d\n");
    ws.issue("beta", "prod", &["--validity", "2d", "--force"]);
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 4, "{v:#}");
    assert_eq!(find(&v, |f| f["tenant"] == "beta")["status"], "critical");
    // sorted by time left: beta (2d) before acme (15d)
    let order: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["tenant"].as_str())
        .collect();
    assert_eq!(order, ["beta", "acme"]);
}

#[test]
fn folder_of_foreign_pem_and_der_certificates() {
    let ws = Ws::new(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "partner");
    let watch = tmp.path().join("watch");
    std::fs::create_dir_all(watch.join("deep/er")).unwrap();
    let ok = ca.leaf("ok", "/CN=ok.partner/O=Partner", Dates::Days(200));
    let due = ca.leaf("due", "/CN=due.partner", Dates::Days(20));
    let old = ca.leaf(
        "old",
        "/CN=old.partner",
        Dates::Range("20200101000000Z", "20210101000000Z"),
    );
    std::fs::copy(&ok, watch.join("ok.pem")).unwrap();
    // DER, deeper down
    openssl(&[
        "x509",
        "-in",
        &due,
        "-outform",
        "DER",
        "-out",
        watch.join("deep/er/due.der").to_str().unwrap(),
    ]);
    // a chain: leaf + CA in one file
    let mut chain = std::fs::read(&old).unwrap();
    chain.extend(std::fs::read(ca.p("ca.crt")).unwrap());
    std::fs::write(watch.join("deep/chain.crt"), chain).unwrap();
    // things a walk skips: a key, a README, a hidden file
    std::fs::copy(ca.p("ok.key"), watch.join("ok.key")).unwrap();
    std::fs::copy(ca.p("ok.key"), watch.join("key.pem")).unwrap();
    std::fs::write(watch.join("README"), "not a certificate").unwrap();
    std::fs::write(watch.join(".hidden.pem"), "garbage").unwrap();

    let (code, v, stderr) = expiry(&ws, &[watch.to_str().unwrap()]);
    assert_eq!(code, 4, "{v:#}\n{stderr}");
    assert_eq!(v.as_array().unwrap().len(), 4, "{v:#}");
    let okf = find(&v, |f| {
        f["subject"]
            .as_str()
            .is_some_and(|x| x.contains("CN=ok.partner") && x.contains("O=Partner"))
    });
    assert_eq!(okf["status"], "ok");
    assert_eq!(okf["kind"], "leaf");
    assert!(okf["tenant"].is_null());
    assert_eq!(okf["within_seconds"], 30 * 86_400, "foreign default window");
    assert_eq!(s(&okf["source"]), watch.join("ok.pem").to_str().unwrap());
    // serial as openssl prints it
    let serial = openssl(&["x509", "-noout", "-serial", "-in", &ok]);
    assert_eq!(
        serial.trim().trim_start_matches("serial=").to_lowercase(),
        s(&okf["serial"])
    );
    let duef = find(&v, |f| f["subject"] == "CN=due.partner");
    assert_eq!(duef["status"], "due");
    assert!(s(&duef["source"]).ends_with("due.der"));
    let oldf = find(&v, |f| f["subject"] == "CN=old.partner");
    assert_eq!(oldf["status"], "expired");
    assert_eq!(oldf["not_after"], "2021-01-01T00:00:00Z");
    assert!(oldf["days_left"].as_i64().unwrap() < -365);
    let caf = find(&v, |f| f["kind"] == "ca");
    assert_eq!(caf["status"], "ok");

    // without the expired one, the due DER file sets the code: 3
    std::fs::remove_file(watch.join("deep/chain.crt")).unwrap();
    let (code, v, _) = expiry(&ws, &[watch.to_str().unwrap()]);
    assert_eq!(code, 3, "{v:#}");
    // a file named on the command line works too, whatever its name
    std::fs::copy(&ok, tmp.path().join("plain")).unwrap();
    let (code, v, _) = expiry(&ws, &[tmp.path().join("plain").to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn broken_file_is_named_and_the_rest_still_reported() {
    let ws = Ws::new(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "p");
    let good = ca.leaf("good", "/CN=good", Dates::Days(200));
    let dir = tmp.path().join("certs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&good, dir.join("good.pem")).unwrap();
    let pem = std::fs::read_to_string(&good).unwrap();
    // a PEM certificate whose body is cut short
    let broken: String =
        pem.lines().take(4).collect::<Vec<_>>().join("\n") + "\n-----END CERTIFICATE-----\n";
    std::fs::write(dir.join("broken.pem"), broken).unwrap();
    std::fs::write(dir.join("zero.crt"), "").unwrap();

    let (code, v, stderr) = expiry(&ws, &[dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{v:#}\n{stderr}");
    assert!(stderr.contains("broken.pem"), "{stderr}");
    assert!(
        stderr.contains("zero.crt") && stderr.contains("empty"),
        "{stderr}"
    );
    let g = find(&v, |f| f["subject"] == "CN=good");
    assert_eq!(g["status"], "ok");
    let b = find(&v, |f| s(&f["source"]).ends_with("broken.pem"));
    assert_eq!(b["status"], "unreadable");
    assert!(!s(&b["error"]).is_empty());
    // the table still lists the good one
    let out = ws.run(&["expiry", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CN=good"));
    // a missing path is unreadable too
    let (code, _, stderr) = expiry(&ws, &[tmp.path().join("nope").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("nope") && stderr.contains("no such"),
        "{stderr}"
    );
    // urgent outranks unreadable: an expired certificate beside a broken one is 4
    let old = ca.leaf(
        "old",
        "/CN=old",
        Dates::Range("20200101000000Z", "20210101000000Z"),
    );
    std::fs::copy(&old, dir.join("old.pem")).unwrap();
    let (code, _, stderr) = expiry(&ws, &[dir.to_str().unwrap()]);
    assert_eq!(code, 4);
    assert!(stderr.contains("broken.pem"), "{stderr}");
}

#[test]
fn stale_and_current_crls_and_revoked_foreign_certificates() {
    let ws = Ws::new(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "crlca");
    let dir = tmp.path().join("gw");
    std::fs::create_dir(&dir).unwrap();
    let a = ca.leaf("a", "/CN=a", Dates::Days(300));
    let b = ca.leaf("b", "/CN=b", Dates::Days(300));
    std::fs::copy(&a, dir.join("a.pem")).unwrap();
    std::fs::copy(&b, dir.join("b.pem")).unwrap();
    ca.crl(dir.join("current.crl").to_str().unwrap(), None);
    let (code, v, _) = expiry(&ws, &[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{v:#}");
    let crl = find(&v, |f| f["kind"] == "crl");
    assert_eq!(crl["status"], "ok");
    assert_eq!(crl["subject"], "CN=crlca root");

    // b revoked: a CRL in the same scan lists it
    ca.revoke(&b);
    ca.crl(dir.join("current.crl").to_str().unwrap(), None);
    let (code, v, _) = expiry(&ws, &[dir.to_str().unwrap()]);
    assert_eq!(code, 4, "{v:#}");
    assert_eq!(find(&v, |f| f["subject"] == "CN=b")["status"], "revoked");
    assert!(!find(&v, |f| f["subject"] == "CN=b")["revoked_at"].is_null());
    assert_eq!(find(&v, |f| f["subject"] == "CN=a")["status"], "ok");

    // a CRL past its nextUpdate, in DER
    std::fs::remove_file(dir.join("current.crl")).unwrap();
    std::fs::remove_file(dir.join("b.pem")).unwrap();
    let stale_pem = tmp.path().join("stale.pem");
    ca.crl(
        stale_pem.to_str().unwrap(),
        Some(("20240101000000Z", "20240108000000Z")),
    );
    openssl(&[
        "crl",
        "-in",
        stale_pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        dir.join("stale.crl").to_str().unwrap(),
    ]);
    let (code, v, _) = expiry(&ws, &[dir.to_str().unwrap()]);
    assert_eq!(code, 4, "{v:#}");
    let crl = find(&v, |f| f["kind"] == "crl");
    assert_eq!(crl["status"], "stale-crl");
    assert_eq!(crl["not_after"], "2024-01-08T00:00:00Z");
}

#[test]
fn workspace_crl_nearing_next_update_is_due_then_stale() {
    let ws = Ws::with_cas(&["acme"]);
    // swap the prod CRL for one with a day left of a 7-day life: due; then one past it
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "x");
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    };
    let out = ws.path("pki/prod/ca/crl.pem");
    let (last, next) = (
        fmt(now - time::Duration::days(6)),
        fmt(now + time::Duration::days(1)),
    );
    ca.crl(out.to_str().unwrap(), Some((&last, &next)));
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 3, "{v:#}");
    let crl = find(&v, |f| f["kind"] == "crl" && f["env"] == "prod");
    assert_eq!(crl["status"], "due");
    let (last, next) = (
        fmt(now - time::Duration::days(8)),
        fmt(now - time::Duration::days(1)),
    );
    ca.crl(out.to_str().unwrap(), Some((&last, &next)));
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 4, "{v:#}");
    assert_eq!(
        find(&v, |f| f["kind"] == "crl" && f["env"] == "prod")["status"],
        "stale-crl"
    );
    // re-signing it from the workspace clears it
    ws.ok(&[
        "crl",
        "--env",
        "prod",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    let (code, v, _) = expiry(&ws, &[]);
    assert_eq!(code, 0, "{v:#}");
}

/// An `openssl s_server` on a free loopback port; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s_server(cert: &str, key: &str, chain: &str) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new("openssl")
            .args([
                "s_server",
                "-quiet",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-cert",
                cert,
                "-key",
                key,
                "-cert_chain",
                chain,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut srv = Server { child, port };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return srv;
            }
            if let Ok(Some(_)) = srv.child.try_wait() {
                break; // port taken meanwhile: try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("openssl s_server did not start");
}

#[test]
fn live_endpoint_chain_and_an_unreachable_one() {
    let ws = Ws::new(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "gwca");
    let crt = ca.leaf("gw", "/CN=gw.example.test", Dates::Days(20));
    let srv = s_server(&crt, &ca.p("gw.key"), &ca.p("ca.crt"));
    let target = format!("127.0.0.1:{}/gw.example.test", srv.port);
    let (code, v, stderr) = expiry(&ws, &["--remote", &target]);
    assert_eq!(code, 3, "{v:#}\n{stderr}");
    assert_eq!(v.as_array().unwrap().len(), 2, "leaf and CA: {v:#}");
    let leaf = find(&v, |f| f["subject"] == "CN=gw.example.test");
    assert_eq!(leaf["status"], "due");
    assert_eq!(leaf["source"], target.as_str());
    assert_eq!(find(&v, |f| f["kind"] == "ca")["status"], "ok");

    // one endpoint down: reported, not fatal to the other
    let dead = format!("127.0.0.1:{}", free_port());
    let (code, v, stderr) = expiry(
        &ws,
        &["--remote", &target, "--remote", &dead, "--timeout", "3s"],
    );
    assert_eq!(code, 1, "{v:#}\n{stderr}");
    assert!(stderr.contains(&dead), "{stderr}");
    let d = find(&v, |f| f["source"] == dead.as_str());
    assert_eq!(d["status"], "unreadable");
    assert!(s(&d["error"]).contains("refused"), "{d}");
    find(&v, |f| f["subject"] == "CN=gw.example.test");

    // a bad HOST:PORT is a usage error
    let out = ws.run(&["expiry", "--remote", "no-port"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn prometheus_output_passes_promtool() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let tmp = tempfile::tempdir().unwrap();
    let ca = ForeignCa::new(tmp.path(), "odd");
    // a subject with a quote and a backslash, which label values must escape
    let crt = ca.leaf("odd", "/CN=we\"ird\\\\name/O=A, B", Dates::Days(100));
    let out = ws.run(&["-o", "prometheus", "expiry"]);
    assert_eq!(out.status.code(), Some(0));
    let ws_text = String::from_utf8(out.stdout).unwrap();
    let out = ws.run(&["-o", "prometheus", "expiry", &crt, "/nonexistent.pem"]);
    assert_eq!(out.status.code(), Some(1));
    let foreign = String::from_utf8(out.stdout).unwrap();
    for text in [&ws_text, &foreign] {
        assert!(
            text.contains("# TYPE mtlsctl_cert_expiry_seconds gauge"),
            "{text}"
        );
        assert!(text.contains("mtlsctl_expiry_last_run_timestamp_seconds "));
    }
    assert!(ws_text.contains("tenant=\"acme\",env=\"prod\",kind=\"client\""));
    assert!(ws_text.contains("mtlsctl_crl_next_update_seconds{"));
    // RFC 4514 escapes the subject, then the label value escapes that
    assert!(
        foreign.contains(r#"subject="O=A\\, B,CN=we\\\"ird\\\\name""#),
        "{foreign}"
    );
    assert!(foreign.contains("mtlsctl_expiry_unreadable{source=\"/nonexistent.pem\"} 1"));
    assert!(foreign.contains("mtlsctl_expiry_findings{status=\"unreadable\"} 1"));
    // the not-after timestamp is the certificate's, as openssl reads it
    let end = openssl(&[
        "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", &crt,
    ]);
    let end = end.trim().trim_start_matches("notAfter=");
    let t = time::OffsetDateTime::parse(
        &end.replace(' ', "T"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        foreign.contains(&format!("}} {}\n", t.unix_timestamp())),
        "{foreign}"
    );
    if !judge("promtool", "prometheus") {
        return;
    }
    for text in [&ws_text, &foreign] {
        let mut c = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn prometheus_is_refused_by_other_commands() {
    let ws = Ws::new(&["acme"]);
    for cmd in ["renew", "crl"] {
        let mut a = vec!["-o", "prometheus", cmd];
        if cmd == "crl" {
            a.extend(["--env", "prod"]);
        }
        let out = ws.run(&a);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
    }
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if !judge("script", "util-linux") {
        return;
    }
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let bin = assert_cmd::cargo::cargo_bin("mtlsctl");
    let run_tty = |extra: &str, no_color_env: bool| {
        let mut c = Command::new("script");
        c.args([
            "-qec",
            &format!(
                "{} -C {} expiry {extra}",
                bin.display(),
                ws.root().display()
            ),
            "/dev/null",
        ]);
        c.env_remove("NO_COLOR").env("MTLSCTL_NO_INPUT", "1");
        if no_color_env {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run_tty("", false);
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    assert!(coloured.contains("ok"), "{coloured}");
    assert!(!run_tty("--no-color", false).contains("\u{1b}["));
    assert!(!run_tty("", true).contains("\u{1b}["));
    // piped: never
    let out = ws
        .cmd()
        .env_remove("NO_COLOR")
        .arg("expiry")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{1b}'));
}
