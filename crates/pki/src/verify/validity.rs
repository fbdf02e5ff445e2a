//! Validity periods, on every certificate of the path (OpenSSL stops at the first).

use super::finding::{Detail, Finding};
use super::{Cert, Checks, Code};

/// Expired, not yet valid, or expiring within the renewal window.
pub(super) fn period(k: &Checks, c: &Cert) -> Option<Finding> {
    let i = &c.info;
    let (code, detail) = if k.at > i.not_after {
        let not_after = i.not_after;
        (Code::Expired, Detail::Expired { not_after })
    } else if k.at < i.not_before {
        let not_before = i.not_before;
        (Code::NotYetValid, Detail::NotYetValid { not_before })
    } else if i.not_after - k.at < k.inp.renew_before {
        let detail = Detail::ExpiresSoon {
            not_after: i.not_after,
            days_left: crate::text::days_left(i.not_after, k.at),
        };
        (Code::ExpiresSoon, detail)
    } else {
        return None;
    };
    Some(Finding::new(code, Some(c.r()), detail))
}

/// The leaf stops working when a CA of its path expires before it.
pub(super) fn leaf_outlives(k: &Checks, ca: &Cert) -> Option<Finding> {
    let leaf = &k.chain[0];
    (ca.depth > 0 && leaf.info.not_after > ca.info.not_after).then(|| {
        let detail = Detail::LeafOutlivesCa {
            leaf_not_after: leaf.info.not_after,
            ca: ca.r(),
            ca_not_after: ca.info.not_after,
        };
        Finding::new(Code::LeafOutlivesCa, Some(leaf.r()), detail)
    })
}
