# Everyday recipes. Each is a plain command too: nothing requires `just`.

# Run the whole test suite (what CI runs)
test:
    ./scripts/test.sh

# Format check and lints, as CI runs them
lint:
    cargo fmt --all -- --check
    . scripts/env.sh && cargo clippy --all-targets $MTLSCTL_CARGO_FEATURES -- -D warnings

# Build and run the main job in a throwaway workspace
demo:
    ./scripts/demo.sh

# Benchmarks (issue, expiry, crl, ocsp against OpenSSL; serve against nginx); rewrites
# docs/performance.md, or only the named sections: `just bench serve`
bench *SECTIONS:
    ./scripts/bench.sh {{SECTIONS}}

# Only the CRL benchmark (10,000 revocations); replaces its section of docs/performance.md
bench-crl:
    ./scripts/bench.sh crl

# Only the OCSP responder benchmark (20,000 requests, 16 clients); replaces its section
bench-ocsp:
    ./scripts/bench.sh ocsp

# x509-limbo conformance of `mtlsctl verify` (fails below 145 passed; -v lists failures)
conformance *ARGS:
    ./scripts/conformance.sh {{ARGS}}

# Man page and shell completions into target/docs
docs:
    . scripts/env.sh && cargo build --release $MTLSCTL_CARGO_FEATURES
    mkdir -p target/docs
    ./target/release/mtlsctl man > target/docs/mtlsctl.1
    ./target/release/mtlsctl completions bash > target/docs/mtlsctl.bash
    ./target/release/mtlsctl completions zsh > target/docs/_mtlsctl
    ./target/release/mtlsctl completions fish > target/docs/mtlsctl.fish
