//! What the cryptography costs on this machine: key generation, a PFX written and
//! checked (the combinations of writer and reader considered), a CA key encrypted and
//! decrypted. The figures in docs/architecture.md come from it:
//!
//!     cargo run --release -p mtlsctl-pki --example crypto_cost [--features vendored-openssl]
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::Instant;

use mtlsctl_pki::cert::{CaRequest, self_signed_ca};
use mtlsctl_pki::dn::Subject;
use mtlsctl_pki::keys::{KeyAlgorithm, PrivateKey};
use mtlsctl_pki::pkcs12::{self, PfxCompat, writer};
use openssl::pkcs12::Pkcs12;
use openssl::stack::Stack;
use openssl::x509::X509;
use secrecy::SecretString;

const PASSWORD: &str = "Kx7pQ2mN9vB4cR8tW3yZ6hJd";

/// Median and mean of `n` runs of `f`, in milliseconds.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut runs: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    (runs[n / 2], runs.iter().sum::<f64>() / n as f64)
}

fn report(what: &str, (median, mean): (f64, f64)) {
    println!("| {what} | {median:.2} | {mean:.2} |");
}

fn cert(key: &PrivateKey, cn: &str) -> X509 {
    let req = CaRequest {
        subject: Subject::parse(&format!("CN={cn}")).unwrap(),
        validity: time::Duration::days(30),
        path_length: 0,
    };
    X509::from_der(
        &self_signed_ca(&req, key, time::OffsetDateTime::now_utc())
            .unwrap()
            .der,
    )
    .unwrap()
}

fn keystore_write(key: &PrivateKey, leaf: &[u8], ca: &[u8]) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
    let chain = PrivateKeyChain::new(
        b"id".to_vec(),
        p12_keystore::PrivateKey::from_der(key.pkcs8_der().unwrap()).unwrap(),
        [
            Certificate::from_der(leaf).unwrap(),
            Certificate::from_der(ca).unwrap(),
        ],
    );
    let mut ks = KeyStore::new();
    ks.add_entry("leaf", KeyStoreEntry::PrivateKeyChain(chain));
    let w = ks
        .writer(PASSWORD)
        .encryption_iterations(2048)
        .mac_iterations(2048);
    w.write().unwrap()
}

fn keystore_read(der: &[u8]) {
    p12_keystore::Pkcs12Archive::from_pkcs12(der, PASSWORD).unwrap();
}

fn openssl_read(der: &[u8]) {
    Pkcs12::from_der(der).unwrap().parse2(PASSWORD).unwrap();
}

fn keygen() {
    let rsa = time(20, || {
        drop(PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap())
    });
    report("RSA-2048 key, generated and self-tested", rsa);
    let ec = time(500, || {
        drop(PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap())
    });
    report("ECDSA P-256 key, generated and self-tested", ec);
}

fn pfx() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let (leaf, ca) = (
        cert(&key, "leaf"),
        cert(
            &PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
            "CA",
        ),
    );
    let (leaf_der, ca_der) = (leaf.to_der().unwrap(), ca.to_der().unwrap());
    let chain = vec![ca_der.clone()];
    let mut stack = Stack::new().unwrap();
    stack.push(ca.clone()).unwrap();
    let pw = SecretString::from(PASSWORD.to_string());
    let n = 200;
    for compat in [PfxCompat::Modern, PfxCompat::Legacy, PfxCompat::Pbmac1] {
        if compat == PfxCompat::Pbmac1 && writer::pbmac1_available().is_err() {
            continue;
        }
        let t = time(n, || {
            pkcs12::build_der(&key, &leaf_der, &chain, "leaf", &pw, compat).unwrap();
        });
        report(
            &format!(
                "{} (chosen): OpenSSL writes, the check reopens",
                compat.as_str()
            ),
            t,
        );
        let w = time(n, || {
            writer::write(key.pkey(), &leaf, &stack, "leaf", PASSWORD, compat).unwrap();
        });
        report(
            &format!("{}: OpenSSL write alone (one MAC)", compat.as_str()),
            w,
        );
    }
    let modern = || {
        writer::write(
            key.pkey(),
            &leaf,
            &stack,
            "leaf",
            PASSWORD,
            PfxCompat::Modern,
        )
        .unwrap()
    };
    let der = modern();
    report(
        "modern: p12-keystore reopen alone",
        time(n, || keystore_read(&der)),
    );
    report(
        "modern: OpenSSL parse2 reopen alone",
        time(n, || openssl_read(&der)),
    );
    let build2 = || {
        let mut b = Pkcs12::builder();
        let mut s = Stack::new().unwrap();
        s.push(ca.clone()).unwrap();
        b.name("leaf").pkey(key.pkey()).cert(&leaf).ca(s);
        b.build2(PASSWORD).unwrap().to_der().unwrap()
    };
    report(
        "modern: openssl crate builder (MAC twice) alone",
        time(n, || drop(build2())),
    );
    report(
        "modern: builder + p12-keystore reopen",
        time(n, || keystore_read(&build2())),
    );
    report(
        "modern: OpenSSL write + OpenSSL reopen (same implementation)",
        time(n, || openssl_read(&modern())),
    );
    report(
        "modern: p12-keystore write + OpenSSL reopen",
        time(n, || {
            openssl_read(&keystore_write(&key, &leaf_der, &ca_der))
        }),
    );
    report(
        "modern: p12-keystore write + p12-keystore reopen (same implementation)",
        time(n, || {
            keystore_read(&keystore_write(&key, &leaf_der, &ca_der))
        }),
    );
}

fn ca_key() {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let pass = SecretString::from("a CA passphrase of some length".to_string());
    let pem = key.to_encrypted_pkcs8_pem(&pass).unwrap();
    report(
        "CA key encrypted (PBKDF2-HMAC-SHA-256, 600,000 iterations)",
        time(5, || drop(key.to_encrypted_pkcs8_pem(&pass).unwrap())),
    );
    report(
        "CA key decrypted (RustCrypto)",
        time(5, || {
            drop(mtlsctl_pki::keys::load(&pem, Some(&pass)).unwrap())
        }),
    );
    report(
        "CA key decrypted by OpenSSL, for comparison",
        time(5, || {
            openssl::pkey::PKey::private_key_from_pem_passphrase(
                &pem,
                b"a CA passphrase of some length",
            )
            .unwrap();
        }),
    );
}

fn main() {
    println!(
        "{} ({} cores)",
        openssl::version::version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("| what | median ms | mean ms |");
    println!("|---|---:|---:|");
    keygen();
    pfx();
    ca_key();
}
