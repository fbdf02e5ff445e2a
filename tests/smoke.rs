mod common;
use common::*;

#[test]
fn issue_verifies_with_openssl() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    let cert = s(&r["files"]["cert"]);
    let ca = ws.path("pki/prod/ca/ca.crt");
    openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca.to_str().unwrap(),
        cert,
    ]);
}
