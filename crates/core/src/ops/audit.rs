//! Reading the audit trail back: the lines an operator asks for. Verification of the
//! chain is [`crate::workspace::Workspace::audit_verify`].

use time::OffsetDateTime;

use super::Result;
use crate::workspace::Workspace;
use crate::workspace::audit::{BadLine, Record};

/// Which lines `audit` lists; every filter given must match.
#[derive(Debug, Default, Clone)]
pub struct Query<'a> {
    pub tenant: Option<&'a str>,
    pub env: Option<&'a str>,
    pub op: Option<&'a str>,
    /// Lines at or after this time.
    pub since: Option<OffsetDateTime>,
    /// The last N matching lines.
    pub limit: Option<usize>,
}

impl Query<'_> {
    fn matches(&self, r: &Record) -> bool {
        let is = |want: Option<&str>, have: &Option<String>| {
            want.is_none_or(|w| have.as_deref() == Some(w))
        };
        is(self.tenant, &r.tenant)
            && is(self.env, &r.env)
            && self.op.is_none_or(|o| r.op == o)
            && self.since.is_none_or(|s| r.time >= s)
    }
}

/// The matching lines, oldest first, and the lines that are not audit records, which
/// match nothing.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<Record>,
    pub unreadable: Vec<BadLine>,
}

pub fn list(ws: &Workspace, q: &Query<'_>) -> Result<Listing> {
    let mut out = Listing::default();
    for line in ws.audit_records()? {
        match line {
            Ok(r) if q.matches(&r) => out.records.push(r),
            Ok(_) => {}
            Err(bad) => out.unreadable.push(bad),
        }
    }
    if let Some(n) = q.limit {
        let skip = out.records.len().saturating_sub(n);
        out.records.drain(..skip);
    }
    Ok(out)
}
