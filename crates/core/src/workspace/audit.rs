//! The audit log: one JSON line per lifecycle operation, appended with O_APPEND.

use serde::Serialize;
use time::OffsetDateTime;

use super::fsutil::{self, PUBLIC};
use super::{Workspace, WsError};

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub user: String,
    pub op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The journal step this line records ([`super::journal`]): how recovery finds out
    /// whether it was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
}

impl<'a> Event<'a> {
    pub fn new(op: &'a str) -> Self {
        Event {
            time: crate::pki::cert::whole_seconds(OffsetDateTime::now_utc()),
            user: current_user(),
            op,
            tenant: None,
            env: None,
            kind: None,
            serial: None,
            sha256: None,
            detail: None,
            op_id: None,
        }
    }
}

/// The login name of whoever runs the command (for the audit trail).
pub fn current_user() -> String {
    for var in ["MTLSCTL_AUDIT_USER", "USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    format!("uid:{}", unsafe_free_uid())
}

fn unsafe_free_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

impl Workspace {
    pub fn audit(&self, ev: &Event<'_>) -> Result<(), WsError> {
        let line = serde_json::to_string(ev).expect("audit event serialises");
        fsutil::append_line(&self.audit_log(), &line, PUBLIC)
    }

    /// Whether the audit log has a line with this `op_id`. Scans from the end, where the
    /// lines of the run being recovered are; a line that does not parse (cut short) does
    /// not count.
    pub fn audit_has(&self, op_id: &str) -> Result<bool, WsError> {
        let path = self.audit_log();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(super::io_err(&path, "read", e)),
        };
        let needle = format!("\"op_id\":{}", serde_json::Value::from(op_id));
        Ok(text.lines().rev().filter(|l| l.contains(&needle)).any(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v.get("op_id").and_then(|o| o.as_str()) == Some(op_id))
        }))
    }

    /// Appends one line per event in a single write, without syncing: for batches,
    /// whose caller syncs the file system afterwards.
    pub fn audit_many(&self, evs: &[Event<'_>]) -> Result<(), WsError> {
        let lines: Vec<String> = evs
            .iter()
            .map(|e| serde_json::to_string(e).expect("audit event serialises"))
            .collect();
        fsutil::append_lines_unsynced(&self.audit_log(), &lines, PUBLIC)
    }
}
