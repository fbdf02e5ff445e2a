//! The workspace lock through the real binary: the holder records itself in a 0600 lock
//! file, a waiting run names it at once and gives up after --wait, and a run killed while
//! it holds the lock leaves nothing that blocks the next one.

mod common;
use common::*;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn pass(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// Waits until the lock file names `pid` as its holder.
fn wait_for_holder(ws: &Ws, pid: u32) -> serde_json::Value {
    let t = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(ws.path(".mtlsctl.lock"))
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b)
            && v["pid"] == pid
        {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "pid {pid} never held the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `crl` whose passphrase file is a FIFO: it takes the lock, then blocks reading the
/// passphrase until the test writes it.
fn holder(ws: &Ws) -> (Child, std::path::PathBuf) {
    let fifo = ws.dir.path().join("pass.fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let child = ws
        .cmd()
        .args(["crl", "--env", "nonprod", "--ca-passphrase-file"])
        .arg(&fifo)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, fifo)
}

/// Runs `mtlsctl --wait WAIT ARGS`: how long it took, its exit code and stderr.
fn run_waiting(ws: &Ws, wait: &str, args: &[&str]) -> (Duration, Option<i32>, String) {
    let t = Instant::now();
    let out = ws.cmd().args(["--wait", wait]).args(args).output().unwrap();
    (t.elapsed(), out.status.code(), text(&out).1)
}

#[test]
fn a_waiting_run_names_the_holder_and_gives_up_after_wait() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass(&ws);
    let (mut child, fifo) = holder(&ws);
    let h = wait_for_holder(&ws, child.id());
    assert!(s(&h["command"]).starts_with("mtlsctl "), "{h}");
    assert!(s(&h["command"]).contains("crl --env nonprod"), "{h}");
    assert!(!s(&h["host"]).is_empty());
    assert!(s(&h["started"]).ends_with('Z'), "{h}");
    assert_eq!(mode(&ws.path(".mtlsctl.lock")), 0o600);

    let issue = [
        "issue",
        "--tenant",
        "acme",
        "--env",
        "nonprod",
        "--ca-passphrase-file",
        &pf,
    ];
    let (took, code, e) = run_waiting(&ws, "1s", &issue);
    assert_eq!(code, Some(1), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "did not wait: {took:?}");
    let pid = format!("pid {}", child.id());
    let first = e.lines().next().unwrap_or("");
    assert!(first.starts_with("waiting up to 1s"), "{e}");
    assert!(first.contains(&pid), "{e}");
    let last = e.lines().last().unwrap_or("");
    assert!(last.starts_with("error: ") && last.contains(&pid), "{e}");
    assert!(last.contains("crl --env nonprod"), "{e}");
    for advice in ["remove", "delete", "rm "] {
        assert!(
            !e.contains(advice),
            "advises to {advice} the lock file: {e}"
        );
    }
    assert!(!ws.path("pki/nonprod/acme").exists());

    // --wait 0s: no wait, no waiting notice
    let (took, code, e) = run_waiting(&ws, "0s", &issue);
    assert_eq!(code, Some(1), "{e}");
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!(!e.contains("waiting up to"), "{e}");
    assert!(e.contains(&pid) && e.contains("not waiting"), "{e}");

    // the holder finishes; the lock is free and the file holds no stale holder
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(format!("{CA_PASS}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(std::fs::read(ws.path(".mtlsctl.lock")).unwrap().is_empty());
    ws.ok(&["--wait", "0s"]
        .iter()
        .chain(issue.iter())
        .copied()
        .collect::<Vec<_>>());
}

#[test]
fn a_lock_held_by_something_else_is_named_as_unknown() {
    let ws = Ws::with_cas(&["acme"]);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.path(".mtlsctl.lock"))
        .unwrap();
    f.lock().unwrap();
    let out = ws.run(&["--wait", "0s", "crl", "--env", "prod"]);
    let (_, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("without saying who it is"), "{e}");
    assert!(e.contains("fuser"), "{e}");
}

#[test]
fn a_killed_holder_leaves_no_lock_behind() {
    let tenants: Vec<String> = (0..40).map(|i| format!("t{i:02}")).collect();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let ws = Ws::with_cas(&names);
    let pf = pass(&ws);
    let mut child = ws
        .cmd()
        .args(["issue", "--all", "-j", "1", "--ca-passphrase-file", &pf])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_holder(&ws, child.id());
    // mid-run: once the first certificates are in place
    let t = Instant::now();
    while std::fs::read_dir(ws.path("pki/nonprod"))
        .map(|rd| rd.flatten().filter(|e| e.file_name() != "ca").count())
        .unwrap_or(0)
        == 0
    {
        assert!(t.elapsed() < Duration::from_secs(60), "nothing issued");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "finished before it was killed: {status}"
    );
    // the dead run's record is still in the file, but the kernel released its lock
    wait_for_holder(&ws, child.id());

    let t = Instant::now();
    let out = ws.run(&[
        "--wait",
        "0s",
        "issue",
        "--all",
        "--ca-passphrase-file",
        &pf,
    ]);
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}{e}");
    assert!(!e.contains("waiting"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(60));
    // exactly one certificate per tenant and environment, and an audit trail that holds
    let all = ws.json(&["list", "--all"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 80, "{all}");
    let out = ws.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out).0);
}
