//! Prometheus text exposition (format 0.0.4), for node_exporter's textfile collector or a
//! CronJob that pushes it. Each metric family is written as one group with its HELP and
//! TYPE lines; label values are escaped; a label set repeated within a family is written
//! once. Samples are written straight to the output, never held as text.

use std::collections::HashSet;
use std::io::{self, Write};

use time::OffsetDateTime;

use crate::ops::expiry::{self, Finding, Status};

/// Escapes a label value: backslash, double quote and line feed (the text format's rule).
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes HELP text: backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Writes the HELP and TYPE lines of a gauge family.
pub fn gauge_header(out: &mut (impl Write + ?Sized), name: &str, help: &str) -> io::Result<()> {
    writeln!(out, "# HELP {name} {}", escape_help(help))?;
    writeln!(out, "# TYPE {name} gauge")
}

/// Writes one sample: `name{k="v",...} value`.
pub fn sample(
    out: &mut (impl Write + ?Sized),
    name: &str,
    labels: &[(&str, &str)],
    value: i64,
) -> io::Result<()> {
    out.write_all(name.as_bytes())?;
    if !labels.is_empty() {
        out.write_all(b"{")?;
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{k}=\"{}\"", escape_label_value(v))?;
        }
        out.write_all(b"}")?;
    }
    writeln!(out, " {value}")
}

fn labels_of(f: &Finding) -> [(&'static str, &str); 6] {
    [
        ("tenant", f.tenant.as_deref().unwrap_or("")),
        ("env", f.env.as_deref().unwrap_or("")),
        ("kind", f.kind),
        ("subject", f.subject.as_deref().unwrap_or("")),
        ("serial", f.serial.as_deref().unwrap_or("")),
        ("source", f.source.as_str()),
    ]
}

/// The expiry report as metrics:
/// - `mtlsctl_cert_not_after_timestamp_seconds` and `mtlsctl_cert_expiry_seconds` per
///   certificate,
/// - `mtlsctl_crl_next_update_timestamp_seconds` and `mtlsctl_crl_next_update_seconds`
///   per CRL,
/// - `mtlsctl_expiry_findings{status}` counts (every status, zeros included),
/// - `mtlsctl_expiry_unreadable{source}` per source that could not be read,
/// - `mtlsctl_expiry_last_run_timestamp_seconds`.
pub fn write_expiry(
    out: &mut (impl Write + ?Sized),
    findings: &[Finding],
    now: OffsetDateTime,
) -> io::Result<()> {
    // which findings carry a series: dated, and the first with their label set
    let mut seen: HashSet<[(&str, &str); 6]> = HashSet::new();
    let timed: Vec<&Finding> = findings
        .iter()
        .filter(|f| {
            f.status != Status::Unreadable && f.not_after.is_some() && f.seconds_left.is_some()
        })
        .filter(|f| seen.insert(labels_of(f)))
        .collect();
    drop(seen);
    let families: [(&str, &str, bool, bool); 4] = [
        (
            "mtlsctl_cert_not_after_timestamp_seconds",
            "Certificate notAfter as a Unix timestamp.",
            false,
            true,
        ),
        (
            "mtlsctl_cert_expiry_seconds",
            "Seconds until the certificate expires (negative once expired).",
            false,
            false,
        ),
        (
            "mtlsctl_crl_next_update_timestamp_seconds",
            "CRL nextUpdate as a Unix timestamp; gateways reject clients once it has passed.",
            true,
            true,
        ),
        (
            "mtlsctl_crl_next_update_seconds",
            "Seconds until the CRL's nextUpdate (negative once stale).",
            true,
            false,
        ),
    ];
    for (name, help, crl, timestamp) in families {
        gauge_header(out, name, help)?;
        for f in timed.iter().filter(|f| f.is_crl() == crl) {
            let value = if timestamp {
                f.not_after.map_or(0, |t| t.unix_timestamp())
            } else {
                f.seconds_left.unwrap_or(0)
            };
            sample(out, name, &labels_of(f), value)?;
        }
    }
    let name = "mtlsctl_expiry_findings";
    gauge_header(
        out,
        name,
        "Certificates, CRLs and unreadable sources by status in the last run.",
    )?;
    for (status, n) in expiry::counts(findings) {
        sample(out, name, &[("status", status.as_str())], n as i64)?;
    }
    let name = "mtlsctl_expiry_unreadable";
    gauge_header(
        out,
        name,
        "1 for each source (file, folder or endpoint) the last run could not read.",
    )?;
    let mut seen_sources = HashSet::new();
    for f in findings.iter().filter(|f| f.status == Status::Unreadable) {
        if seen_sources.insert(f.source.as_str()) {
            sample(out, name, &[("source", &f.source)], 1)?;
        }
    }
    let name = "mtlsctl_expiry_last_run_timestamp_seconds";
    gauge_header(
        out,
        name,
        "When the expiry report was made, as a Unix timestamp.",
    )?;
    sample(out, name, &[], now.unix_timestamp())
}

/// [`write_expiry`] into a string.
#[cfg(test)]
fn expiry(findings: &[Finding], now: OffsetDateTime) -> String {
    let mut v = Vec::new();
    let _ = write_expiry(&mut v, findings, now);
    String::from_utf8(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(
            escape_label_value("CN=a\\b,O=\"x\"\ny"),
            "CN=a\\\\b,O=\\\"x\\\"\\ny"
        );
    }

    #[test]
    fn samples_render_labels_in_order() {
        let mut v = Vec::new();
        sample(&mut v, "m", &[("a", "1"), ("b", "x\"y")], -5).unwrap();
        sample(&mut v, "m", &[], 7).unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "m{a=\"1\",b=\"x\\\"y\"} -5\nm 7\n"
        );
    }

    #[test]
    fn a_repeated_certificate_is_one_series_and_every_status_is_counted() {
        let now = OffsetDateTime::now_utc();
        let cert = Finding {
            source: "/x/chain.pem".into(),
            kind: "ca",
            tenant: None,
            env: None,
            subject: Some("CN=root".into()),
            issuer: Some("CN=root".into()),
            serial: Some("01".into()),
            not_after: Some(now + time::Duration::days(10)),
            days_left: Some(10),
            seconds_left: Some(864_000),
            status: Status::Due,
            within_seconds: Some(1),
            critical_seconds: Some(1),
            revoked_at: None,
            error: None,
            reason: None,
            current: None,
        };
        let text = expiry(&[cert.clone(), cert], now);
        assert_eq!(
            text.matches("mtlsctl_cert_expiry_seconds{").count(),
            1,
            "{text}"
        );
        for s in Status::ALL {
            assert!(
                text.contains(&format!("mtlsctl_expiry_findings{{status=\"{s}\"}}")),
                "{s}: {text}"
            );
        }
        assert!(text.contains("mtlsctl_expiry_findings{status=\"due\"} 2"));
    }
}
