//! The audit log: one JSON line per lifecycle operation, appended with O_APPEND,
//! hash-chained and anchored in `audit.head`.
//!
//! Each line carries `seq` (1, 2, ...) and `prev`, the SHA-256 (lowercase hex) of the
//! previous line's exact bytes without its newline: 64 zeros before the first line, or
//! the hash of the last line written before the chain existed (a legacy prefix, which is
//! accepted as it is). `audit.head` holds the seq and hash of the last line and is
//! replaced atomically after each append, so removing lines from the end is detected as
//! well as changing one. A run killed between the append and the head's rewrite leaves
//! the head behind: lines beyond it that chain are accepted, and the next append moves
//! the head on.
//!
//! Every writer holds an exclusive `flock` on audit.log from reading the tail to
//! rewriting the head (threads of one run, and `serve`, append without the workspace
//! lock); readers hold a shared one.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use super::fsutil::{self, PUBLIC};
use super::{Workspace, WsError, io_err};

/// The file that anchors the chain, beside audit.log.
pub const HEAD_FILE: &str = "audit.head";
/// `prev` of the first line when no line came before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One lifecycle operation, as the operation describes it; the writer adds `seq` and
/// `prev`.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// Random 128-bit hex naming the operation: [`Workspace::audit_has`] tells whether
    /// its line was written. [`Event::new`] draws one; an operation that recorded an
    /// intent beforehand sets the intent's.
    pub op_id: String,
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
}

impl<'a> Event<'a> {
    pub fn new(op: &'a str) -> Self {
        Event {
            op_id: new_op_id(),
            time: crate::pki::cert::whole_seconds(OffsetDateTime::now_utc()),
            user: current_user(),
            op,
            tenant: None,
            env: None,
            kind: None,
            serial: None,
            sha256: None,
            detail: None,
        }
    }
}

/// A fresh operation id: 128 random bits as 32 lowercase hex digits.
pub fn new_op_id() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        // the generator that signs certificates failed: still a unique id on this host
        let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u128;
        b = (t ^ (u128::from(std::process::id()) << 96)).to_be_bytes();
    }
    crate::pki::fingerprint::hex(&b)
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

/// What `audit.head` holds: the seq and SHA-256 of the last line written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub sha256: String,
}

/// One line of audit.log as read back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Its line number in audit.log, from 1.
    #[serde(skip_deserializing)]
    pub line: usize,
    /// Absent on lines written before the chain existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub user: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The audit trail cannot be written, or does not chain to its head.
#[derive(Debug, Error)]
#[error("{}", self.message())]
pub struct AuditError {
    pub path: PathBuf,
    pub reason: String,
    /// Raised before the operation took effect, which was therefore refused.
    pub refused: bool,
}

impl AuditError {
    fn message(&self) -> String {
        if self.refused {
            format!(
                "refusing to change the workspace (nothing was signed or written): the audit log {} {}; `mtlsctl audit verify` names the damage, docs/operations.md (\"Audit trail\") says how to repair it",
                self.path.display(),
                self.reason
            )
        } else {
            format!(
                "could not record the operation in the audit log {}: it {}",
                self.path.display(),
                self.reason
            )
        }
    }
}

/// The chain fields of a line, without the rest.
#[derive(Deserialize)]
struct Link {
    seq: Option<u64>,
    prev: Option<String>,
}

impl Link {
    /// None for a legacy line; an error (what is wrong with the line, as a predicate)
    /// when it is not JSON or only one of the two fields is there.
    fn parse(bytes: &[u8]) -> Result<Option<(u64, String)>, String> {
        let l: Link = serde_json::from_slice(bytes).map_err(|e| format!("is not JSON ({e})"))?;
        match (l.seq, l.prev) {
            (Some(s), Some(p)) => Ok(Some((s, p))),
            (None, None) => Ok(None),
            _ => Err("has only one of seq and prev".into()),
        }
    }
}

/// Lowercase hex SHA-256 of a line's bytes.
pub fn line_hash(line: &[u8]) -> String {
    crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(line))
}

/// A line as the writer puts it down: chain fields first, then the event.
#[derive(Serialize)]
struct Chained<'e, 'a> {
    seq: u64,
    prev: &'e str,
    #[serde(flatten)]
    event: &'e Event<'a>,
}

/// Reads a file's newline-separated segments from the end, a chunk at a time: the first
/// segment is what follows the last newline (empty when the file ends with one).
struct Backwards<'f> {
    f: &'f File,
    pos: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<'f> Backwards<'f> {
    const CHUNK: u64 = 8192;

    fn new(f: &'f File) -> std::io::Result<Self> {
        Ok(Backwards {
            f,
            pos: f.metadata()?.len(),
            buf: Vec::new(),
            done: false,
        })
    }

    fn next_segment(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        loop {
            if let Some(i) = self.buf.iter().rposition(|&b| b == b'\n') {
                let seg = self.buf.split_off(i + 1);
                self.buf.truncate(i);
                return Ok(Some(seg));
            }
            if self.pos == 0 {
                self.done = true;
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            let n = Self::CHUNK.min(self.pos);
            self.pos -= n;
            let mut chunk = vec![0u8; n as usize];
            self.f.read_exact_at(&mut chunk, self.pos)?;
            chunk.extend_from_slice(&self.buf);
            self.buf = chunk;
        }
    }
}

/// Where the next line goes: after `seq`, chained to `hash`; `torn_at` is where a final
/// line without its newline starts (a write cut short by a crash), which the next
/// append removes first.
#[derive(Debug)]
struct Tail {
    seq: u64,
    hash: String,
    torn_at: Option<u64>,
}

/// Checks the end of the log against the head: the last line must be the head's, or
/// chain back to it line by line. Reads only the lines beyond the head.
fn tail_state(log: &File, head: Option<&Head>) -> Result<Tail, String> {
    let io = |e: std::io::Error| format!("cannot be read ({e})");
    let len = log.metadata().map_err(io)?.len();
    let mut back = Backwards::new(log).map_err(io)?;
    let frag = back.next_segment().map_err(io)?.unwrap_or_default();
    let torn_at = (!frag.is_empty()).then(|| len - frag.len() as u64);
    let Some(last) = back.next_segment().map_err(io)? else {
        return match head {
            Some(h) if h.seq > 0 => Err(format!(
                "is empty while {HEAD_FILE} records line seq {}: it was truncated or replaced",
                h.seq
            )),
            _ => Ok(Tail {
                seq: 0,
                hash: GENESIS.into(),
                torn_at,
            }),
        };
    };
    let hash = line_hash(&last);
    let link = Link::parse(&last).map_err(|e| format!("ends with a line that {e}"))?;
    let Some((seq, mut prev)) = link else {
        return match head {
            None => Ok(Tail {
                seq: 0,
                hash,
                torn_at,
            }),
            Some(h) => Err(format!(
                "ends with a line without seq while {HEAD_FILE} records seq {}: chained lines were removed",
                h.seq
            )),
        };
    };
    let Some(h) = head else {
        return Err(format!(
            "has chained lines (up to seq {seq}) but {HEAD_FILE} is missing"
        ));
    };
    if seq < h.seq {
        return Err(format!(
            "ends at seq {seq} while {HEAD_FILE} records seq {}: lines were removed from the end",
            h.seq
        ));
    }
    // walk back from the last line to the one the head names
    let (mut at, mut at_hash) = (seq, hash.clone());
    while at > h.seq {
        let line = back
            .next_segment()
            .map_err(io)?
            .ok_or_else(|| format!("has no line seq {} before seq {at}", at - 1))?;
        let line_h = line_hash(&line);
        match Link::parse(&line) {
            Ok(Some((s, p))) if s + 1 == at && line_h == prev => {
                (at, at_hash, prev) = (s, line_h, p);
            }
            _ => {
                return Err(format!(
                    "does not chain from seq {at} back to {HEAD_FILE} (seq {})",
                    h.seq
                ));
            }
        }
    }
    if at_hash != h.sha256 {
        return Err(format!(
            "line seq {at} is not the line {HEAD_FILE} records: it was changed"
        ));
    }
    Ok(Tail { seq, hash, torn_at })
}

/// Opens audit.log for appending (creating it 0644): the test that it can be written.
fn open_for_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(PUBLIC)
        .open(path)
}

/// Opens audit.log to read it under a shared lock; None when there is none yet.
fn open_for_reading(path: &Path) -> Result<Option<File>, WsError> {
    match File::open(path) {
        Ok(f) => {
            f.lock_shared().map_err(|e| io_err(path, "lock", e))?;
            Ok(Some(f))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, "open", e)),
    }
}

/// The head as found: None when the file is missing, an error when it is not a head.
fn read_head(path: &Path) -> Result<Option<Head>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("has a head {} that is not one ({e})", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!(
            "has a head {} that cannot be read ({e})",
            path.display()
        )),
    }
}

impl Workspace {
    /// The file that anchors the audit chain.
    pub fn audit_head(&self) -> PathBuf {
        self.root().join(HEAD_FILE)
    }

    fn audit_err(&self, reason: String, refused: bool) -> WsError {
        WsError::Audit(AuditError {
            path: self.audit_log(),
            reason,
            refused,
        })
    }

    /// Checks, before an operation takes effect, that the audit log can be appended to
    /// and that its tail chains to `audit.head`. An operation calls it first thing
    /// (under the workspace lock): a line that could not be written afterwards would
    /// leave a change nobody can account for.
    pub fn audit_preflight(&self) -> Result<(), WsError> {
        let path = self.audit_log();
        let log = open_for_append(&path)
            .map_err(|e| self.audit_err(format!("cannot be opened for appending ({e})"), true))?;
        log.lock_shared().map_err(|e| io_err(&path, "lock", e))?;
        let head = read_head(&self.audit_head()).map_err(|r| self.audit_err(r, true))?;
        tail_state(&log, head.as_ref()).map_err(|r| self.audit_err(r, true))?;
        Ok(())
    }

    /// Appends one line and syncs it, then moves the head.
    pub fn audit(&self, ev: &Event<'_>) -> Result<(), WsError> {
        self.append_chained(std::slice::from_ref(ev), true)
    }

    /// Appends one line per event in a single write, for batches whose caller syncs the
    /// file system afterwards. The lines are flushed (one `fdatasync` of audit.log)
    /// before the head names them, so a crash can leave the head behind the log but
    /// never ahead of it.
    pub fn audit_many(&self, evs: &[Event<'_>]) -> Result<(), WsError> {
        self.append_chained(evs, false)
    }

    fn append_chained(&self, evs: &[Event<'_>], single: bool) -> Result<(), WsError> {
        if evs.is_empty() {
            return Ok(());
        }
        let path = self.audit_log();
        let log = open_for_append(&path)
            .map_err(|e| self.audit_err(format!("cannot be opened for appending ({e})"), false))?;
        log.lock().map_err(|e| io_err(&path, "lock", e))?;
        let head = read_head(&self.audit_head()).map_err(|r| self.audit_err(r, false))?;
        let tail = tail_state(&log, head.as_ref()).map_err(|r| self.audit_err(r, false))?;
        if let Some(at) = tail.torn_at {
            log.set_len(at)
                .map_err(|e| io_err(&path, "cut the unfinished last line of", e))?;
        }
        let (mut seq, mut prev) = (tail.seq, tail.hash);
        let mut lines = Vec::with_capacity(evs.len());
        for event in evs {
            seq += 1;
            let line = serde_json::to_string(&Chained {
                seq,
                prev: &prev,
                event,
            })
            .expect("audit event serialises");
            prev = line_hash(line.as_bytes());
            lines.push(line);
        }
        if single {
            fsutil::append_line(&path, &lines[0], PUBLIC)?;
        } else {
            fsutil::append_lines_unsynced(&path, &lines, PUBLIC)?;
            log.sync_data().map_err(|e| io_err(&path, "sync", e))?;
        }
        let head = Head { seq, sha256: prev };
        let mut json = serde_json::to_vec(&head).expect("head serialises");
        json.push(b'\n');
        fsutil::write_atomic(&self.audit_head(), &json, PUBLIC)
    }

    /// Whether a complete line of the audit log carries `op_id`, searching from the
    /// end: how a recovery tells whether an interrupted operation was recorded.
    pub fn audit_has(&self, op_id: &str) -> Result<bool, WsError> {
        #[derive(Deserialize)]
        struct Id {
            op_id: Option<String>,
        }
        let path = self.audit_log();
        let Some(log) = open_for_reading(&path)? else {
            return Ok(false);
        };
        let mut back = Backwards::new(&log).map_err(|e| io_err(&path, "read", e))?;
        // the first segment is an unfinished line (or nothing): it records nothing
        back.next_segment().map_err(|e| io_err(&path, "read", e))?;
        let needle = op_id.as_bytes();
        while let Some(line) = back.next_segment().map_err(|e| io_err(&path, "read", e))? {
            if !needle.is_empty() && line.windows(needle.len()).any(|w| w == needle) {
                let id: Option<Id> = serde_json::from_slice(&line).ok();
                if id.and_then(|i| i.op_id).as_deref() == Some(op_id) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Every line of the audit log, parsed, with its number; a line that is not an
    /// audit record comes back as the reason.
    pub fn audit_records(&self) -> Result<Vec<Result<Record, BadLine>>, WsError> {
        let path = self.audit_log();
        let Some(log) = open_for_reading(&path)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (i, line) in lines(&log, &path)?.into_iter().enumerate() {
            let no = i + 1;
            out.push(match serde_json::from_slice::<Record>(&line.bytes) {
                Ok(mut r) if line.complete => {
                    r.line = no;
                    Ok(r)
                }
                Ok(_) => Err(BadLine {
                    line: no,
                    reason: "unfinished (no newline at the end)".into(),
                }),
                Err(e) => Err(BadLine {
                    line: no,
                    reason: format!("not an audit record ({e})"),
                }),
            });
        }
        Ok(out)
    }
}

/// A line of audit.log that is not an audit record: its number and why.
#[derive(Debug, Clone)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// A line of the log read forward: its bytes without the newline, and whether the
/// newline was there.
struct Line {
    bytes: Vec<u8>,
    complete: bool,
}

fn lines(log: &File, path: &Path) -> Result<Vec<Line>, WsError> {
    let mut r = BufReader::new(log);
    let mut out = Vec::new();
    loop {
        let mut bytes = Vec::new();
        let n = r
            .read_until(b'\n', &mut bytes)
            .map_err(|e| io_err(path, "read", e))?;
        if n == 0 {
            return Ok(out);
        }
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        out.push(Line { bytes, complete });
    }
}

// ---------------------------------------------------------------------------------------
// verification

/// What is wrong with the first broken line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not JSON, or not an audit record.
    BadJson,
    /// The last line has no newline: a write cut short, or text added by hand.
    Incomplete,
    /// A line's `prev` is not the hash of the line before it.
    PrevMismatch,
    /// A line's `seq` does not follow the one before it.
    SeqGap,
    /// A line without seq/prev after chained lines.
    Unchained,
    /// The log ends before the line `audit.head` records.
    Truncated,
    /// Chained lines but no `audit.head`.
    HeadMissing,
    /// `audit.head` is not a head, or names a line that is not there as it was.
    HeadMismatch,
}

impl ProblemKind {
    /// The name JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::BadJson => "bad_json",
            ProblemKind::Incomplete => "incomplete",
            ProblemKind::PrevMismatch => "prev_mismatch",
            ProblemKind::SeqGap => "seq_gap",
            ProblemKind::Unchained => "unchained",
            ProblemKind::Truncated => "truncated",
            ProblemKind::HeadMissing => "head_missing",
            ProblemKind::HeadMismatch => "head_mismatch",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The line number in audit.log, from 1 (one past the last for lines missing at the
    /// end).
    pub line: usize,
    pub kind: ProblemKind,
    pub message: String,
    /// The start of the offending line as it is in the file (untrusted text: escape it
    /// before it reaches a terminal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// The last line: what to anchor elsewhere to detect a rewrite of the whole log.
#[derive(Debug, Clone, Serialize)]
pub struct Anchor {
    pub line: usize,
    /// Absent when the last line is a legacy one.
    pub seq: Option<u64>,
    pub sha256: String,
}

/// The verdict of [`Workspace::audit_verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub log: PathBuf,
    pub head_file: PathBuf,
    pub ok: bool,
    /// Lines in the file.
    pub lines: usize,
    /// Lines before the chain (no seq/prev), accepted as they are.
    pub legacy: usize,
    pub chained: usize,
    /// What audit.head records.
    pub head: Option<Head>,
    pub last: Option<Anchor>,
    /// Chained lines beyond the head (a run stopped between append and head rewrite).
    pub beyond_head: u64,
    pub problem: Option<Problem>,
}

/// A line reduced to what the chain needs.
struct Parsed {
    hash: String,
    link: Result<Option<(u64, String)>, String>,
    complete: bool,
    excerpt: String,
}

const EXCERPT: usize = 160;

fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    match s.char_indices().nth(EXCERPT) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}

fn parse_line(l: &Line) -> Parsed {
    let link = Link::parse(&l.bytes).and_then(|link| {
        serde_json::from_slice::<Record>(&l.bytes)
            .map(|_| link)
            .map_err(|e| format!("is not an audit record ({e})"))
    });
    Parsed {
        hash: line_hash(&l.bytes),
        link,
        complete: l.complete,
        excerpt: excerpt(&l.bytes),
    }
}

impl Workspace {
    /// Checks the whole audit log: every line parses, every chained line follows the one
    /// before it (seq and prev), and audit.head names a line that is there as written.
    pub fn audit_verify(&self) -> Result<Verdict, WsError> {
        let path = self.audit_log();
        let log = open_for_reading(&path)?;
        // the head before the lines: a writer appends before it moves the head, so the
        // lines read afterwards reach at least as far
        let head = read_head(&self.audit_head());
        let parsed: Vec<Parsed> = match &log {
            Some(f) => lines(f, &path)?.iter().map(parse_line).collect(),
            None => Vec::new(),
        };
        let mut v = Verdict {
            log: path,
            head_file: self.audit_head(),
            ok: false,
            lines: parsed.len(),
            legacy: 0,
            chained: 0,
            head: head.as_ref().ok().cloned().flatten(),
            last: None,
            beyond_head: 0,
            problem: None,
        };
        v.problem = match head {
            Err(reason) => Some(Problem {
                line: parsed.len().max(1),
                kind: ProblemKind::HeadMismatch,
                message: format!("the audit log {reason}"),
                excerpt: None,
            }),
            Ok(h) => check_chain(&parsed, h.as_ref(), &mut v),
        };
        v.ok = v.problem.is_none();
        Ok(v)
    }
}

fn problem(line: usize, kind: ProblemKind, message: String, p: Option<&Parsed>) -> Problem {
    Problem {
        line,
        kind,
        message,
        excerpt: p.map(|p| p.excerpt.clone()),
    }
}

/// Walks the lines in order and stops at the first broken one; fills in the counts.
fn check_chain(lines: &[Parsed], head: Option<&Head>, v: &mut Verdict) -> Option<Problem> {
    let mut last_hash = GENESIS.to_string();
    let mut last_seq: Option<u64> = None;
    for (i, p) in lines.iter().enumerate() {
        let no = i + 1;
        if !p.complete {
            let m = format!(
                "line {no} is unfinished (no newline at the end): a write cut short by a crash, which the next operation removes, or text added by hand"
            );
            return Some(problem(no, ProblemKind::Incomplete, m, Some(p)));
        }
        let (seq, prev) = match &p.link {
            Err(e) => {
                let m = format!("line {no} {e}");
                return Some(problem(no, ProblemKind::BadJson, m, Some(p)));
            }
            Ok(None) if last_seq.is_some() => {
                let m =
                    format!("line {no} has no seq/prev after chained lines: it was added by hand");
                return Some(problem(no, ProblemKind::Unchained, m, Some(p)));
            }
            Ok(None) => {
                v.legacy += 1;
                last_hash.clone_from(&p.hash);
                continue;
            }
            Ok(Some(link)) => link,
        };
        let expected = last_seq.map_or(1, |s| s + 1);
        if *seq != expected {
            let why = if *seq > expected {
                "a line before it is missing"
            } else {
                "lines are repeated or out of order"
            };
            let m = format!("line {no} has seq {seq} where {expected} was due: {why}");
            return Some(problem(no, ProblemKind::SeqGap, m, Some(p)));
        }
        if *prev != last_hash {
            return Some(prev_mismatch(lines, i, head));
        }
        if let Some(h) = head
            && h.seq == *seq
            && h.sha256 != p.hash
        {
            let m = format!(
                "line {no} (seq {seq}) is not the line {HEAD_FILE} records: it was changed"
            );
            return Some(problem(no, ProblemKind::HeadMismatch, m, Some(p)));
        }
        v.chained += 1;
        last_seq = Some(*seq);
        last_hash.clone_from(&p.hash);
    }
    v.last = lines.last().map(|p| Anchor {
        line: lines.len(),
        seq: last_seq,
        sha256: p.hash.clone(),
    });
    check_head(lines.len(), last_seq, head, v)
}

/// Line `i`'s prev does not match line `i - 1`. If the line after `i` (or the head)
/// vouches for line `i`, line `i - 1` is the one that changed; otherwise line `i` is.
fn prev_mismatch(lines: &[Parsed], i: usize, head: Option<&Head>) -> Problem {
    let no = i + 1;
    let this = &lines[i];
    let seq = this.link.as_ref().ok().cloned().flatten().map(|l| l.0);
    let vouched = match lines.get(i + 1) {
        Some(next) => matches!(&next.link, Ok(Some((_, p))) if *p == this.hash),
        None => head.is_some_and(|h| Some(h.seq) == seq && h.sha256 == this.hash),
    };
    if i > 0 && vouched {
        let m = format!(
            "line {} was changed: line {no} records a different hash for it",
            no - 1
        );
        problem(no - 1, ProblemKind::PrevMismatch, m, Some(&lines[i - 1]))
    } else {
        let m = format!(
            "line {no}'s prev is not the hash of {}: it was changed or inserted",
            if i == 0 {
                "nothing (64 zeros)".to_string()
            } else {
                format!("line {}", no - 1)
            }
        );
        problem(no, ProblemKind::PrevMismatch, m, Some(this))
    }
}

/// After the lines: the head must exist once there is a chain, and name a line that is
/// there.
fn check_head(
    n: usize,
    last_seq: Option<u64>,
    head: Option<&Head>,
    v: &mut Verdict,
) -> Option<Problem> {
    match (last_seq, head) {
        (None, None) => None,
        (Some(s), None) => Some(problem(
            n,
            ProblemKind::HeadMissing,
            format!(
                "{HEAD_FILE} is missing: nothing anchors the chain that ends at line {n} (seq {s})"
            ),
            None,
        )),
        (last, Some(h)) if last.unwrap_or(0) < h.seq => {
            let s = last.unwrap_or(0);
            Some(problem(
                n + 1,
                ProblemKind::Truncated,
                format!(
                    "the log ends at line {n} (seq {s}) while {HEAD_FILE} records seq {}: {} line(s) were removed from the end",
                    h.seq,
                    h.seq - s
                ),
                None,
            ))
        }
        (Some(s), Some(h)) if h.seq == 0 => Some(problem(
            n,
            ProblemKind::HeadMismatch,
            format!("{HEAD_FILE} records seq 0, which no line has (the log ends at seq {s})"),
            None,
        )),
        (Some(s), Some(h)) => {
            v.beyond_head = s - h.seq;
            None
        }
        (None, Some(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> (tempfile::TempDir, Workspace) {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        (d, ws)
    }

    fn log_lines(ws: &Workspace) -> Vec<String> {
        std::fs::read_to_string(ws.audit_log())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn write_lines(ws: &Workspace, lines: &[String]) {
        let mut s = lines.join("\n");
        s.push('\n');
        std::fs::write(ws.audit_log(), s).unwrap();
    }

    #[test]
    fn lines_chain_and_the_head_follows() {
        let (_d, ws) = ws();
        ws.audit_preflight().unwrap();
        ws.audit(&Event::new("issue")).unwrap();
        ws.audit_many(&[Event::new("renew"), Event::new("crl")])
            .unwrap();
        let lines = log_lines(&ws);
        assert_eq!(lines.len(), 3);
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["seq"], 1);
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(first["op_id"].as_str().unwrap().len(), 32);
        assert!(lines[0].starts_with("{\"seq\":1,\"prev\":"));
        let third: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(third["seq"], 3);
        assert_eq!(third["prev"], line_hash(lines[1].as_bytes()));
        let head: Head = serde_json::from_slice(&std::fs::read(ws.audit_head()).unwrap()).unwrap();
        assert_eq!(head.seq, 3);
        assert_eq!(head.sha256, line_hash(lines[2].as_bytes()));
        let v = ws.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!((v.lines, v.legacy, v.chained), (3, 0, 3));
    }

    #[test]
    fn a_legacy_prefix_is_covered_by_the_first_chained_line() {
        let (_d, ws) = ws();
        let legacy = [
            r#"{"time":"2025-01-01T00:00:00Z","user":"a","op":"ca-init","env":"prod"}"#,
            r#"{"time":"2025-01-02T00:00:00Z","user":"a","op":"issue","tenant":"t"}"#,
        ];
        write_lines(&ws, &legacy.map(String::from));
        ws.audit_preflight().unwrap();
        ws.audit(&Event::new("crl")).unwrap();
        let lines = log_lines(&ws);
        let third: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(third["seq"], 1);
        assert_eq!(third["prev"], line_hash(legacy[1].as_bytes()));
        let v = ws.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!((v.legacy, v.chained), (2, 1));
    }

    #[test]
    fn head_behind_is_accepted_and_moved_on() {
        let (_d, ws) = ws();
        ws.audit(&Event::new("issue")).unwrap();
        let old_head = std::fs::read(ws.audit_head()).unwrap();
        ws.audit(&Event::new("issue")).unwrap();
        ws.audit(&Event::new("issue")).unwrap();
        // as if killed before the head moved past the first line
        std::fs::write(ws.audit_head(), &old_head).unwrap();
        ws.audit_preflight().unwrap();
        let v = ws.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.beyond_head, 2);
        ws.audit(&Event::new("crl")).unwrap();
        let v = ws.audit_verify().unwrap();
        assert!(v.ok && v.beyond_head == 0, "{v:?}");
    }

    #[test]
    fn a_torn_last_line_is_reported_then_removed_by_the_next_append() {
        let (_d, ws) = ws();
        ws.audit(&Event::new("issue")).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(ws.audit_log())
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":2,\"prev\":\"ab").unwrap();
        let v = ws.audit_verify().unwrap();
        assert_eq!(v.problem.unwrap().kind, ProblemKind::Incomplete);
        ws.audit_preflight().unwrap();
        ws.audit(&Event::new("crl")).unwrap();
        assert!(ws.audit_verify().unwrap().ok);
        assert_eq!(log_lines(&ws).len(), 2);
    }

    #[test]
    fn damage_is_named_by_line() {
        let (_d, ws) = ws();
        for _ in 0..5 {
            ws.audit(&Event::new("issue")).unwrap();
        }
        let good = log_lines(&ws);
        let broken = |lines: Vec<String>| {
            write_lines(&ws, &lines);
            let v = ws.audit_verify().unwrap();
            let p = v.problem.expect("broken");
            (p.line, p.kind)
        };
        let mut edited = good.clone();
        edited[1] = edited[1].replace("\"op\":\"issue\"", "\"op\":\"issuE\"");
        assert_eq!(broken(edited), (2, ProblemKind::PrevMismatch));
        let mut missing = good.clone();
        missing.remove(2);
        assert_eq!(broken(missing), (3, ProblemKind::SeqGap));
        assert_eq!(broken(good[..4].to_vec()), (5, ProblemKind::Truncated));
        let mut garbage = good.clone();
        garbage.push("not json \u{1b}[31m".into());
        assert_eq!(broken(garbage), (6, ProblemKind::BadJson));
        let mut last = good.clone();
        last[4] = last[4].replace("issue", "renew");
        assert_eq!(broken(last), (5, ProblemKind::HeadMismatch));
        write_lines(&ws, &good);
        assert!(ws.audit_verify().unwrap().ok);
        std::fs::remove_file(ws.audit_head()).unwrap();
        let v = ws.audit_verify().unwrap();
        assert_eq!(v.problem.unwrap().kind, ProblemKind::HeadMissing);
        assert!(ws.audit_preflight().is_err());
    }

    #[test]
    fn problem_kinds_are_named_as_json_names_them() {
        for k in [
            ProblemKind::BadJson,
            ProblemKind::Incomplete,
            ProblemKind::PrevMismatch,
            ProblemKind::SeqGap,
            ProblemKind::Unchained,
            ProblemKind::Truncated,
            ProblemKind::HeadMissing,
            ProblemKind::HeadMismatch,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn preflight_refuses_a_broken_or_unwritable_log() {
        let (_d, ws) = ws();
        for _ in 0..3 {
            ws.audit(&Event::new("issue")).unwrap();
        }
        let good = log_lines(&ws);
        write_lines(&ws, &good[..2]);
        let e = ws.audit_preflight().unwrap_err().to_string();
        assert!(e.contains("refusing") && e.contains("removed"), "{e}");
        write_lines(&ws, &good);
        ws.audit_preflight().unwrap();
        std::fs::remove_file(ws.audit_log()).unwrap();
        std::fs::create_dir(ws.audit_log()).unwrap();
        let e = ws.audit_preflight().unwrap_err().to_string();
        assert!(e.contains("cannot be opened for appending"), "{e}");
    }

    #[test]
    fn audit_has_finds_an_operation_from_the_end() {
        let (_d, ws) = ws();
        assert!(!ws.audit_has("x").unwrap());
        let ev = Event::new("issue");
        let id = ev.op_id.clone();
        ws.audit(&ev).unwrap();
        for _ in 0..50 {
            ws.audit_many(&[Event::new("issue"), Event::new("issue")])
                .unwrap();
        }
        assert!(ws.audit_has(&id).unwrap());
        assert!(!ws.audit_has(&new_op_id()).unwrap());
    }

    #[test]
    fn backwards_reads_segments_across_chunks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let long = "x".repeat(20_000);
        std::fs::write(&p, format!("a\n{long}\nb")).unwrap();
        let f = File::open(&p).unwrap();
        let mut b = Backwards::new(&f).unwrap();
        assert_eq!(b.next_segment().unwrap().unwrap(), b"b");
        assert_eq!(b.next_segment().unwrap().unwrap(), long.as_bytes());
        assert_eq!(b.next_segment().unwrap().unwrap(), b"a");
        assert!(b.next_segment().unwrap().is_none());
    }
}
