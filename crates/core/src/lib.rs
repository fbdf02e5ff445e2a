//! mtlsctl's core: the profile model, the workspace on disk and the lifecycle operations
//! that compose them with the certificate logic of `mtlsctl-pki`.
//!
//! This crate never prints, prompts or exits; the `mtlsctl` binary is the only part that
//! talks to a person. docs/architecture.md describes how the crates fit.

pub mod fault;
pub mod ops;
pub mod profile;
pub mod workspace;

// the core's own name for the certificate logic; the binary sees only `types`
pub(crate) use mtlsctl_pki as pki;

/// The certificate-logic types the binary names to parse flags and render reports: data
/// only. None of pki's functions is reachable from the binary, so it can build no key,
/// certificate, CRL or PFX itself: it asks an operation.
pub mod types {
    pub use mtlsctl_pki::crl::REASONS;
    pub use mtlsctl_pki::keys::KeyAlgorithm;
    pub use mtlsctl_pki::pkcs12::PfxCompat;
    pub use mtlsctl_pki::{Kind, PkiError, text};

    /// Path validation's findings, as `verify` reports them.
    pub mod verify {
        pub use mtlsctl_pki::verify::{
            BadConstraints, BadSan, CertRef, Code, Detail, Finding, OpensslVerdict, Outcome,
            PathCert, Purpose, Severity, WeakKey,
        };
    }

    /// What `inspect` describes.
    pub mod inspect {
        pub use mtlsctl_pki::inspect::CertInfo;
    }

    pub mod keys {
        pub use mtlsctl_pki::keys::KeyAlgorithm;
    }

    pub mod pkcs12 {
        pub use mtlsctl_pki::pkcs12::PfxCompat;
    }

    pub mod crl {
        pub use mtlsctl_pki::crl::REASONS;
    }
}
// the network side, for the operations only: the binary reaches it through `ops`
use mtlsctl_net as net;
