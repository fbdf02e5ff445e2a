//! Plain text for people: times in RFC 3339 and as days left, and escaping of untrusted
//! strings (names taken from certificates) before they reach a terminal. Pure functions.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC, to the second: `2027-01-31T12:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Short date for tables: `2027-01-31`.
pub fn date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
}

/// Whole days left until `t` (negative once past), rounded down.
pub fn days_left(t: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (t - now).whole_seconds();
    secs.div_euclid(86_400)
}

/// Escapes control characters, bidi overrides and zero-width characters in text that came
/// from a certificate before it reaches a terminal.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bad = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if bad {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_terminal_tricks() {
        assert_eq!(sanitize("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(sanitize("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(sanitize("plain"), "plain");
    }

    #[test]
    fn days_left_rounds_down() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(days_left(now + time::Duration::hours(47), now), 1);
        assert_eq!(days_left(now - time::Duration::hours(1), now), -1);
    }
}
