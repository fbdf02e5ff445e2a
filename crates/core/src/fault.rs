//! Fault injection for the crash tests: named points where a debug build kills itself.
//!
//! `MTLSCTL_FAULT=<point>[:<n>]` makes the process send itself SIGKILL the n-th time (1 by
//! default) it reaches `<point>`, exactly as a power cut or `kill -9` would stop it: no
//! destructor, no flush, no unwinding. Only debug builds (`cfg(debug_assertions)`, which
//! the integration tests run) read the variable; in a release build [`hit`] is empty and
//! the variable means nothing.

/// The places a run can be killed at, in the order a run reaches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The intent journal is written and synced; nothing is signed yet.
    AfterJournal,
    /// A certificate (or CA, or CRL) is signed, in memory only.
    AfterSign,
    /// One file of a staged folder is written (leaf folders: cert.pem first, meta.json
    /// last; the CA folder: ca.key first, ca.crt last).
    StageFile,
    /// Every folder of the run is staged, not yet renamed into place.
    AfterStage,
    /// One staged folder is renamed into place.
    AfterPlace,
    /// The previous active certificate is marked superseded.
    AfterSupersede,
    /// A revocation is recorded in the CA state (state.json).
    AfterRecord,
    /// The CRL is signed and written.
    AfterCrl,
    /// A revoked leaf's meta.json says so.
    AfterMeta,
    /// Every step is done but the audit lines.
    BeforeAudit,
    /// The audit lines are written; the journal is not yet removed.
    AfterAudit,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::AfterJournal,
        Fault::AfterSign,
        Fault::StageFile,
        Fault::AfterStage,
        Fault::AfterPlace,
        Fault::AfterSupersede,
        Fault::AfterRecord,
        Fault::AfterCrl,
        Fault::AfterMeta,
        Fault::BeforeAudit,
        Fault::AfterAudit,
    ];

    /// The name `MTLSCTL_FAULT` uses.
    pub fn name(self) -> &'static str {
        match self {
            Fault::AfterJournal => "after-journal",
            Fault::AfterSign => "after-sign",
            Fault::StageFile => "stage-file",
            Fault::AfterStage => "after-stage",
            Fault::AfterPlace => "after-place",
            Fault::AfterSupersede => "after-supersede",
            Fault::AfterRecord => "after-record",
            Fault::AfterCrl => "after-crl",
            Fault::AfterMeta => "after-meta",
            Fault::BeforeAudit => "before-audit",
            Fault::AfterAudit => "after-audit",
        }
    }
}

/// Kills the process here if `MTLSCTL_FAULT` names this point and this is its n-th hit.
#[cfg(debug_assertions)]
pub fn hit(point: Fault) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static WANTED: OnceLock<Option<(Fault, usize)>> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let wanted = WANTED.get_or_init(|| std::env::var("MTLSCTL_FAULT").ok().and_then(|v| parse(&v)));
    if let Some((p, n)) = *wanted
        && p == point
        && HITS.fetch_add(1, Ordering::SeqCst) + 1 == n
    {
        // SAFETY: kill and getpid take no pointers; SIGKILL ends the process here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Release builds have no fault points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_point: Fault) {}

/// `point` or `point:n` (n from 1).
#[cfg_attr(not(debug_assertions), allow(dead_code))]
fn parse(v: &str) -> Option<(Fault, usize)> {
    let (name, n) = match v.split_once(':') {
        Some((name, n)) => (name, n.parse().ok().filter(|n| *n > 0)?),
        None => (v, 1),
    };
    Fault::ALL
        .into_iter()
        .find(|f| f.name() == name)
        .map(|f| (f, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_with_and_without_a_count() {
        assert_eq!(parse("after-place"), Some((Fault::AfterPlace, 1)));
        assert_eq!(parse("stage-file:3"), Some((Fault::StageFile, 3)));
        assert_eq!(parse("stage-file:0"), None);
        assert_eq!(parse("nowhere"), None);
        for f in Fault::ALL {
            assert_eq!(parse(f.name()), Some((f, 1)));
        }
    }
}
