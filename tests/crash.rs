//! Crash safety: every command that changes the workspace, killed with SIGKILL at each
//! of its fault points (`MTLSCTL_FAULT`, debug builds only), at random times, and at a
//! system call (strace fault injection), then run once more. After that second run:
//! no staging folder holds a key; every certificate ever written (staging folders seen
//! right after the kill included) is in the inventory or revoked; a tenant/env/kind has
//! at most one active certificate (exactly one where it had or got one); every serial of
//! the inventory has an audit line; the CRL signed next lists every revocation, judged by
//! openssl, with a greater number; the journal is empty.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

const TENANTS: [&str; 6] = ["t1", "t2", "t3", "t4", "t5", "t6"];
const ENVS: [&str; 2] = ["nonprod", "prod"];

fn pass(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// A workspace of six tenants in two environments, whose leaves live 800 days (so that
/// `renew --within 400d` is allowed), with both CAs unless `no_ca` names one, and with a
/// certificate of a year for each tenant x env when `issued`.
fn template(no_ca: Option<&str>, issued: bool) -> Ws {
    let ws = match no_ca {
        None => Ws::with_cas(&TENANTS),
        Some(_) => Ws::new(&TENANTS),
    };
    let pf = pass(&ws);
    for env in ENVS {
        let p = format!("profiles/environments/{env}.yaml");
        let text = std::fs::read_to_string(ws.path(&p)).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.trim_start().starts_with("validity:") {
                true => "  validity: 800d\n".to_string(),
                false => format!("{l}\n"),
            })
            .collect();
        ws.write(&p, &text);
        if no_ca.is_some_and(|n| n != env) {
            ws.ok(&["ca", "init", "--env", env, "--ca-passphrase-file", &pf]);
        }
    }
    if issued {
        // a year each: due within 400 days, while a renewal lives 800
        ws.ok(&argv("issue --all --validity 365d", &pf));
    }
    ws
}

/// The template of a test, with its passphrase file; None (the test is skipped) in a
/// release build, which has no fault points.
fn fixture(no_ca: Option<&str>, issued: bool) -> Option<(Ws, String)> {
    if !cfg!(debug_assertions) {
        eprintln!("SKIPPED: fault points exist only in debug builds");
        return None;
    }
    let t = template(no_ca, issued);
    let pf = pass(&t);
    Some((t, pf))
}

/// The words of `cmd` and the passphrase file flag.
fn argv<'a>(cmd: &'a str, pf: &'a str) -> Vec<&'a str> {
    cmd.split(' ').chain(["--ca-passphrase-file", pf]).collect()
}

/// A copy of `t` in a new temporary folder (the passphrase file beside it too).
fn copy(t: &Ws) -> Ws {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tool(
        "cp",
        &[
            "-a",
            &format!("{}/.", t.dir.path().display()),
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let pass_file = dir.path().join("ca-pass.txt");
    Ws { dir, pass_file }
}

fn mtlsctl(ws: &Ws, args: &[&str]) -> Command {
    let mut c = Command::cargo_bin("mtlsctl").unwrap();
    c.env_remove("MTLSCTL_CA_PASSPHRASE")
        .env_remove("MTLSCTL_FAULT")
        .env("MTLSCTL_NO_INPUT", "1")
        .arg("-C")
        .arg(ws.root())
        .args(args);
    c
}

/// Runs `args` with the fault point armed; returns whether the run was killed.
fn kill_at(ws: &Ws, args: &[&str], point: &str) -> bool {
    let out = mtlsctl(ws, args)
        .env("MTLSCTL_FAULT", point)
        .output()
        .unwrap();
    killed(&out)
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

/// Every file below `dir`, hidden folders included.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn files(ws: &Ws) -> Vec<PathBuf> {
    let mut v = Vec::new();
    walk(&ws.path("pki"), &mut v);
    v
}

/// The serial (lowercase hex) of a PEM certificate file, if it reads.
fn serial_of(p: &Path) -> Option<String> {
    let pem = std::fs::read(p).ok()?;
    let x = openssl::x509::X509::from_pem(&pem).ok()?;
    let hex = x.serial_number().to_bn().ok()?.to_hex_str().ok()?;
    Some(hex.to_lowercase())
}

/// The serial of every cert.pem below pki/, staging folders included.
fn cert_serials(ws: &Ws) -> BTreeSet<String> {
    files(ws)
        .iter()
        .filter(|p| p.file_name().unwrap() == "cert.pem")
        .filter_map(|p| serial_of(p))
        .collect()
}

fn is_staging(p: &Path, root: &Path) -> bool {
    p.strip_prefix(root).unwrap().components().any(|c| {
        let s = c.as_os_str().to_string_lossy();
        s.starts_with(".stage-") || s.starts_with(".tmp-")
    })
}

fn revoked(ws: &Ws, env: &str) -> Vec<String> {
    let Ok(b) = std::fs::read(ws.path(&format!("pki/{env}/ca/state.json"))) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    v["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["serial"]).to_string())
        .collect()
}

fn crl_text(ws: &Ws, env: &str) -> String {
    let p = ws.path(&format!("pki/{env}/ca/crl.pem"));
    openssl(&["crl", "-text", "-noout", "-in", p.to_str().unwrap()])
}

fn crl_number(ws: &Ws, env: &str) -> u64 {
    let t = crl_text(ws, env);
    let line = t
        .lines()
        .skip_while(|l| !l.contains("X509v3 CRL Number"))
        .nth(1)
        .unwrap_or_else(|| panic!("no CRL number:\n{t}"));
    line.trim().parse().unwrap_or_else(|_| panic!("{line}"))
}

/// What the checks need to know from before the kill.
struct Before {
    crl: BTreeMap<String, u64>,
    /// tenant/env/kind that had an active certificate.
    active: BTreeSet<String>,
}

fn before(ws: &Ws) -> Before {
    let crl = ENVS
        .iter()
        .filter(|e| ws.path(&format!("pki/{e}/ca/crl.pem")).is_file())
        .map(|e| (e.to_string(), crl_number(ws, e)))
        .collect();
    let active = actives(ws).into_keys().collect();
    Before { crl, active }
}

/// tenant/env/kind -> how many active certificates, from `list -o json --all`.
fn actives(ws: &Ws) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in ws.json(&["list", "--all"]).as_array().unwrap() {
        let key = format!("{}/{}/{}", s(&r["tenant"]), s(&r["env"]), s(&r["kind"]));
        let n = m.entry(key).or_insert(0);
        if ["valid", "due", "expired"].contains(&s(&r["status"])) {
            *n += 1;
        }
    }
    m
}

/// What the disk held right after the kill.
#[derive(Default)]
struct Seen {
    /// The serial of every cert.pem, staging folders included.
    certs: BTreeSet<String>,
    /// The number of each env's CRL.
    crl: BTreeMap<String, u64>,
    /// Whether the run left anything to recover (a journal, a staging folder).
    leftovers: bool,
}

fn seen(ws: &Ws) -> Seen {
    let journal = std::fs::read_dir(ws.path("journal")).is_ok_and(|mut d| d.next().is_some());
    let root = ws.path("pki");
    Seen {
        certs: cert_serials(ws),
        crl: before(ws).crl,
        leftovers: journal || files(ws).iter().any(|f| is_staging(f, &root)),
    }
}

/// The checks after the kill and one more run (see the top of this file); `want_one`
/// asks for exactly one active certificate per tenant/env/kind that has or had any
/// (issue, renew).
fn check(ws: &Ws, what: &str, b: &Before, seen: &Seen, want_one: bool) {
    let root = ws.path("pki");
    for f in files(ws) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !is_staging(&f, &root),
            "{what}: a staging folder is left: {}",
            f.display()
        );
        assert!(
            !(name == "key.pem" || name == "ca.key") || !is_staging(&f, &root),
            "{what}: a key outside its folder: {}",
            f.display()
        );
    }
    let journal: Vec<_> = std::fs::read_dir(ws.path("journal"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(journal.is_empty(), "{what}: journal left: {journal:?}");
    let list = ws.json(&["list", "--all"]);
    let listed: BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["serial"]).to_string())
        .collect();
    let revoked: BTreeSet<String> = ENVS.iter().flat_map(|e| revoked(ws, e)).collect();
    for sn in seen.certs.iter().chain(cert_serials(ws).iter()) {
        assert!(
            listed.contains(sn) || revoked.contains(sn),
            "{what}: certificate {sn} is neither listed nor revoked"
        );
    }
    // the stable `current` link designates the active certificate, and nothing else
    for r in list.as_array().unwrap() {
        let active = ["valid", "due", "expired"].contains(&s(&r["status"]));
        let own = !r["fixture"].as_bool().unwrap_or(false) && s(&r["tenant"]) != "_signed";
        assert_eq!(
            !r["current"].is_null(),
            active && own,
            "{what}: `current` of {}/{} does not follow {} ({})",
            s(&r["tenant"]),
            s(&r["env"]),
            s(&r["serial"]),
            s(&r["status"])
        );
    }
    let counts = actives(ws);
    for (k, n) in &counts {
        assert!(*n <= 1, "{what}: {k} has {n} active certificates");
    }
    if want_one {
        for k in b.active.iter().chain(counts.keys()) {
            assert_eq!(
                counts.get(k),
                Some(&1),
                "{what}: {k} has no active certificate"
            );
        }
    }
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap_or_default();
    let audited: BTreeSet<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["serial"].as_str().map(str::to_string))
        .collect();
    for sn in &listed {
        assert!(audited.contains(sn), "{what}: {sn} has no audit line");
    }
    for sn in &revoked {
        let line = "\"op\":\"revoke\"";
        assert!(
            audit
                .lines()
                .any(|l| l.contains(line) && l.contains(sn.as_str())),
            "{what}: the revocation of {sn} has no audit line"
        );
    }
    // a CRL that reached the disk has its audit line (ca init writes number 1)
    for (env, n) in seen.crl.iter().filter(|(_, n)| **n > 1) {
        let line = format!("crl_number {n}");
        assert!(
            audit
                .lines()
                .any(|l| l.contains(&line) && l.contains(env.as_str())),
            "{what}: the {env} CRL number {n} has no audit line"
        );
    }
    check_crls(ws, what, b);
}

/// `mtlsctl crl` for every env with a CA: the new CRL lists each revocation, numbered
/// above the one before the kill.
fn check_crls(ws: &Ws, what: &str, b: &Before) {
    for env in ENVS {
        if !ws.path(&format!("pki/{env}/ca/ca.crt")).is_file() {
            continue;
        }
        ws.ok(&["crl", "--env", env, "--ca-passphrase-file", &pass(ws)]);
        let text = crl_text(ws, env).to_lowercase();
        for sn in revoked(ws, env) {
            assert!(
                text.contains(&sn),
                "{what}: the {env} CRL does not list {sn}:\n{text}"
            );
        }
        let n = crl_number(ws, env);
        assert!(
            n > b.crl.get(env).copied().unwrap_or(0),
            "{what}: the {env} CRL number did not grow ({n})"
        );
    }
}

/// One scenario: a copy of `t`, `args` killed at `point`, the cert.pem files seen, then
/// `rerun` once, then the checks. Returns whether the point was reached.
fn scenario(t: &Ws, args: &[&str], point: &str, rerun: &[&str], want_one: bool) -> bool {
    let ws = copy(t);
    let b = before(&ws);
    let hit = kill_at(&ws, args, point);
    let seen = seen(&ws);
    let out = mtlsctl(&ws, rerun).output().unwrap();
    assert!(
        out.status.success(),
        "{point}: the run after the kill failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(
        &ws,
        &format!("{args:?} killed at {point}"),
        &b,
        &seen,
        want_one,
    );
    hit
}

/// Runs `args` killed at each of `points` (space-separated; each must be reached) in turn.
fn every_point(t: &Ws, args: &[&str], points: &str, rerun: &[&str], want_one: bool) {
    for p in points.split_whitespace() {
        assert!(
            scenario(t, args, p, rerun, want_one),
            "{args:?} never reached {p}"
        );
    }
}

/// A seed from the clock unless CRASH_SEED gives one; printed so a failure can be replayed.
fn seed() -> u64 {
    let s = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: {s} (CRASH_SEED={s} replays it)");
    s
}

/// xorshift64*: enough randomness for kill times.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn issue_all_killed_at_every_point_and_at_random_times() {
    let Some((t, pf)) = fixture(None, false) else {
        return;
    };
    let args = argv("issue --all", &pf);
    every_point(
        &t,
        &args,
        "after-journal after-sign stage-file stage-file:9 after-stage \
         after-place after-place:5 before-audit after-audit",
        &args,
        true,
    );
    let mut st = seed() | 1;
    let mut interrupted = 0;
    for _ in 0..10 {
        let ws = copy(&t);
        let b = before(&ws);
        let ms = 5 + next(&mut st) % 196;
        let mut child = mtlsctl(&ws, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        let seen = seen(&ws);
        interrupted += usize::from(seen.leftovers);
        ws.ok(&args);
        check(
            &ws,
            &format!("issue --all killed after {ms} ms"),
            &b,
            &seen,
            true,
        );
        // every tenant x env has its certificate now
        assert_eq!(actives(&ws).len(), TENANTS.len() * ENVS.len());
    }
    eprintln!("random kills that left something to recover: {interrupted} of 10");
}

#[test]
fn issue_force_killed_at_every_point() {
    let Some((t, pf)) = fixture(None, true) else {
        return;
    };
    let args = argv("issue --tenant t1 --env prod --force", &pf);
    let rerun = argv("issue --tenant t1 --env prod", &pf);
    every_point(
        &t,
        &args,
        "after-journal after-sign stage-file stage-file:4 after-stage \
         after-place after-supersede before-audit after-audit",
        &rerun,
        true,
    );
}

#[test]
fn renew_killed_at_every_point() {
    let Some((t, pf)) = fixture(None, true) else {
        return;
    };
    let args = argv("renew --within 400d", &pf);
    every_point(
        &t,
        &args,
        "after-journal after-journal:4 after-sign stage-file:2 \
         after-stage:3 after-place:2 after-supersede \
         after-supersede:7 before-audit after-audit:5",
        &args,
        true,
    );
}

#[test]
fn revoke_and_crl_killed_at_every_point() {
    let Some((t, pf)) = fixture(None, true) else {
        return;
    };
    let revoke = argv("revoke --tenant t2 --env prod --reason key-compromise", &pf);
    every_point(
        &t,
        &revoke,
        "after-journal after-record after-sign after-record:2 \
         after-crl after-meta before-audit after-audit",
        &revoke,
        false,
    );
    // the revocation is complete whatever the kill: the re-run says so
    let ws = copy(&t);
    assert!(kill_at(&ws, &revoke, "after-record"));
    let again = ws.json(&revoke);
    assert_eq!(again["action"], "unchanged", "{again}");
    assert_eq!(again["reason"], "key-compromise");
    assert!(
        crl_text(&ws, "prod")
            .to_lowercase()
            .contains(s(&again["serial"]))
    );

    ws.ok(&revoke);
    let crl = argv("crl --env prod", &pf);
    every_point(
        &ws,
        &crl,
        "after-journal after-sign after-record after-crl before-audit \
         after-audit",
        &crl,
        false,
    );
}

#[test]
fn ca_init_killed_at_every_point_can_run_again() {
    let Some((t, pf)) = fixture(Some("prod"), false) else {
        return;
    };
    let args = argv("ca init --env prod", &pf);
    let points = "after-journal after-sign stage-file stage-file:3 stage-file:4 \
                  after-stage after-place before-audit after-audit";
    for p in points.split_whitespace() {
        let ws = copy(&t);
        assert!(kill_at(&ws, &args, p), "ca init never reached {p}");
        let out = mtlsctl(&ws, &args).output().unwrap();
        let (o, e) = text(&out);
        assert!(out.status.success(), "{p}: ca init again failed: {o}{e}");
        assert!(!ws.path("pki/prod/.stage-ca").exists(), "{p}");
        ws.issue("t1", "prod", &[]);
        let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
        let inits = audit
            .lines()
            .filter(|l| l.contains("\"op\":\"ca-init\"") && l.contains("\"env\":\"prod\""))
            .count();
        assert_eq!(inits, 1, "{p}: {audit}");
        let b = before(&ws);
        check(
            &ws,
            &format!("ca init killed at {p}"),
            &b,
            &Seen::default(),
            false,
        );
    }
    // an older version's half-made CA (a key, no certificate) is moved aside, not deleted
    let ws = copy(&t);
    std::fs::create_dir_all(ws.path("pki/prod/ca")).unwrap();
    std::fs::write(ws.path("pki/prod/ca/ca.key"), "old key\n").unwrap();
    let j = ws.json(&args);
    let aside = PathBuf::from(s(&j["moved_aside"]));
    assert_eq!(std::fs::read(aside.join("ca.key")).unwrap(), b"old key\n");
    assert!(ws.path("pki/prod/ca/ca.crt").is_file());
}

#[test]
fn leftovers_of_older_versions_are_placed_or_revoked() {
    let t = template(None, true);
    let ws = copy(&t);
    let b = before(&ws);
    let list = ws.json(&["list", "--env", "prod"]);
    let dir = |i: usize| PathBuf::from(s(&list[i]["path"]));
    // a complete folder an old run staged as .tmp-* and never renamed: placed again
    let (a, a_serial) = (dir(0), s(&list[0]["serial"]).to_string());
    let a_tmp = a.parent().unwrap().join(".tmp-old1");
    std::fs::rename(&a, &a_tmp).unwrap();
    // one killed before its metadata: revoked, key destroyed
    let (c, c_serial) = (dir(1), s(&list[1]["serial"]).to_string());
    let c_tmp = c.parent().unwrap().join(".tmp-old2");
    std::fs::rename(&c, &c_tmp).unwrap();
    std::fs::remove_file(c_tmp.join("meta.json")).unwrap();
    let seen = seen(&ws);
    let j = ws.json(&["issue", "--all", "--ca-passphrase-file", &pass(&ws)]);
    let rec = j["recovered"].as_array().unwrap_or_else(|| panic!("{j}"));
    let action = |sn: &str| {
        rec.iter()
            .find(|r| r["serial"] == sn)
            .map(|r| s(&r["action"]).to_string())
    };
    assert_eq!(action(&a_serial).as_deref(), Some("placed"), "{j}");
    assert_eq!(action(&c_serial).as_deref(), Some("revoked"), "{j}");
    assert!(a.join("key.pem").is_file());
    assert!(!c_tmp.exists());
    assert!(revoked(&ws, "prod").contains(&c_serial));
    // the revoked one's tenant got a new certificate from the same run
    assert_eq!(j["issued"].as_array().unwrap().len(), 1, "{j}");
    check(&ws, "old leftovers", &b, &seen, true);
}

#[test]
fn issue_all_killed_by_strace_at_the_third_rename() {
    if !judge("strace", "strace") {
        return;
    }
    let t = template(None, false);
    let ws = copy(&t);
    let b = before(&ws);
    let pf = pass(&ws);
    let bin = Command::cargo_bin("mtlsctl").unwrap();
    let started = Instant::now();
    let out = Command::new("strace")
        .args([
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "inject=rename:signal=SIGKILL:when=3",
        ])
        .arg(bin.get_program())
        .arg("-C")
        .arg(ws.root())
        .args(["issue", "--all", "--ca-passphrase-file", &pf])
        .env("MTLSCTL_NO_INPUT", "1")
        .env_remove("MTLSCTL_FAULT")
        .output()
        .unwrap();
    let (o, e) = text(&out);
    assert!(
        !out.status.success(),
        "not killed ({:?}): {o}{e}",
        started.elapsed()
    );
    let seen = seen(&ws);
    assert!(seen.leftovers, "the kill left nothing to recover");
    ws.ok(&["issue", "--all", "--ca-passphrase-file", &pf]);
    check(&ws, "issue --all under strace", &b, &seen, true);
    assert_eq!(actives(&ws).len(), TENANTS.len() * ENVS.len());
}
