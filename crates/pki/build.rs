//! Tells the code which OpenSSL it is compiled against: `ossl340` when the headers are
//! OpenSSL 3.4 or later (PBMAC1), read from what openssl-sys reports to its dependents.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(ossl340)");
    println!("cargo::rerun-if-env-changed=DEP_OPENSSL_VERSION_NUMBER");
    let version = std::env::var("DEP_OPENSSL_VERSION_NUMBER")
        .ok()
        .and_then(|v| u64::from_str_radix(&v, 16).ok());
    if version.is_some_and(|v| v >= 0x3040_0000) {
        println!("cargo::rustc-cfg=ossl340");
    }
}
