//! The command-line contract as reviewed snapshots (tests/cmd/*.toml with their
//! .stdout/.stderr): the help of the main commands, and the one-line error of each kind
//! of bad input with its exit code. Paths in messages are redacted as [ROOT]/[CWD] or
//! `[..]`. Regenerate after an intended change with
//! `TRYCMD=overwrite cargo test --test cli_contract`, then review the diff.

#[test]
fn cli_contract() {
    trycmd::TestCases::new()
        .register_bin("mtlsctl", trycmd::cargo::cargo_bin!("mtlsctl"))
        .case("tests/cmd/*.toml");
}

fn mtlsctl(args: &[&str]) -> std::process::Output {
    std::process::Command::new(trycmd::cargo::cargo_bin!("mtlsctl"))
        .args(args)
        .env_remove("MTLSCTL_WORKSPACE")
        .output()
        .unwrap()
}

#[test]
fn completions_are_generated_from_the_clap_definition() {
    let out = mtlsctl(&["completions", "bash"]);
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for w in [
        "_mtlsctl()",
        "issue",
        "--tenant",
        "--ca-passphrase-file",
        "profile",
    ] {
        assert!(script.contains(w), "bash completion lacks {w}");
    }
    // bash itself accepts the script
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mtlsctl.bash");
    std::fs::write(&f, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = mtlsctl(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let s = String::from_utf8(out.stdout).unwrap();
        assert!(s.contains("mtlsctl") && s.contains("issue"), "{shell}");
    }
    let out = mtlsctl(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_for_the_whole_cli() {
    let out = mtlsctl(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH mtlsctl 1"), "{page}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    for cmd in ["issue", "inspect", "pfx", "list"] {
        assert!(page.contains(cmd), "the man page does not mention {cmd}");
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // the bash script is larger than a pipe's buffer, so the write meets the closed end
    let mut child = std::process::Command::new(trycmd::cargo::cargo_bin!("mtlsctl"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status.code());
    assert!(!err.contains("panicked"), "{err}");
}
