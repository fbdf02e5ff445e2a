//! What the command line writes, and the exit codes it ends with.
//!
//! Every line a command prints goes through [`Out`], which returns I/O errors instead of
//! panicking as `println!` does. A reader that goes away (`mtlsctl expiry | head -1`) is
//! not an error of ours: from then on output is dropped, and the command still ends with
//! its verdict's exit code.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Write};

/// The exit codes, as `--help` and docs/exit-codes.md document them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success, or nothing due.
    Ok = 0,
    /// An error (bad input, I/O, crypto), or for `verify` an invalid chain.
    Error = 1,
    /// A misuse of the command line.
    Usage = 2,
    /// `expiry`: something is due for renewal.
    Due = 3,
    /// `expiry`: something is expired, within --critical, revoked, or a CRL is past its
    /// next update.
    Critical = 4,
}

impl Exit {
    /// How much an outcome weighs when several apply: critical, then error, then due.
    fn weight(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Due => 1,
            Exit::Usage => 2,
            Exit::Error => 3,
            Exit::Critical => 4,
        }
    }

    /// The weightier of two outcomes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.weight() > self.weight() {
            other
        } else {
            self
        }
    }

    pub fn is_ok(self) -> bool {
        self == Exit::Ok
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// Standard output for people (table mode) and programs (JSON).
pub struct Out {
    /// `-q`: table output is dropped (JSON, which was asked for by name, is not).
    quiet: Cell<bool>,
    /// The reader has gone away; nothing more is written.
    closed: Cell<bool>,
}

impl Out {
    pub fn new(quiet: bool) -> Self {
        Out {
            quiet: Cell::new(quiet),
            closed: Cell::new(false),
        }
    }

    /// A verdict that is not success is printed even under `-q`.
    pub fn unquiet(&self) {
        self.quiet.set(false);
    }

    /// One line of table output.
    pub fn line(&self, text: impl fmt::Display) -> io::Result<()> {
        if self.quiet.get() {
            return Ok(());
        }
        self.write(|w| writeln!(w, "{text}"))
    }

    /// A value as pretty JSON and a newline.
    pub fn json<T: serde::Serialize + ?Sized>(&self, v: &T) -> io::Result<()> {
        self.stream(|w| {
            serde_json::to_writer_pretty(&mut *w, v).map_err(io::Error::from)?;
            writeln!(w)
        })
    }

    /// Raw text as it is (completions, a man page).
    pub fn raw(&self, bytes: &[u8]) -> io::Result<()> {
        self.write(|w| w.write_all(bytes))
    }

    /// A long output written by `f` through a buffer: a report of thousands of lines
    /// would otherwise cost a write per line on a line-buffered stdout.
    pub fn stream(&self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        self.write(|w| {
            let mut b = io::BufWriter::with_capacity(1 << 16, w);
            f(&mut b)?;
            b.flush()
        })
    }

    fn write(&self, f: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        if self.closed.get() {
            return Ok(());
        }
        let mut w = io::stdout().lock();
        match f(&mut w).and_then(|()| w.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed.set(true);
                Ok(())
            }
            r => r,
        }
    }
}

/// `say!(out, "format", args)`: one line of table output through an [`Out`], `?` on the
/// I/O error.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))?
    };
}
pub(crate) use say;

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn critical_outweighs_error_which_outweighs_due() {
        assert_eq!(Exit::Due.worst(Exit::Critical), Exit::Critical);
        assert_eq!(Exit::Error.worst(Exit::Due), Exit::Error);
        assert_eq!(Exit::Critical.worst(Exit::Error), Exit::Critical);
        assert_eq!(Exit::Ok.worst(Exit::Due), Exit::Due);
        assert_eq!(Exit::Ok.worst(Exit::Ok), Exit::Ok);
    }
}
