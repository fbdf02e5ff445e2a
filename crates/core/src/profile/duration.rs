//! Durations as operators write them: 45s, 30m, 12h, 90d, 2w, 1y (365 days).

use std::fmt;
use std::str::FromStr;

/// A whole number of seconds, written with one unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur {
    secs: i64,
    text_unit: char,
}

impl Dur {
    pub fn from_secs(secs: i64) -> Dur {
        let unit = if secs % (365 * 86_400) == 0 && secs != 0 {
            'y'
        } else if secs % (7 * 86_400) == 0 && secs != 0 {
            'w'
        } else if secs % 86_400 == 0 {
            'd'
        } else if secs % 3600 == 0 {
            'h'
        } else if secs % 60 == 0 {
            'm'
        } else {
            's'
        };
        Dur {
            secs,
            text_unit: unit,
        }
    }

    pub fn days(d: i64) -> Dur {
        Dur {
            secs: d * 86_400,
            text_unit: 'd',
        }
    }

    pub fn secs(self) -> i64 {
        self.secs
    }

    pub fn to_time(self) -> time::Duration {
        time::Duration::seconds(self.secs)
    }
}

fn unit_secs(u: char) -> Option<i64> {
    Some(match u {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'y' => 365 * 86_400,
        _ => return None,
    })
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        let t = s.trim();
        let bad = || {
            format!(
                "invalid duration '{s}': write a whole number and one unit, e.g. 45s, 30m, 12h, 90d, 2w or 1y"
            )
        };
        let unit = t.chars().last().ok_or_else(bad)?;
        let mult = unit_secs(unit).ok_or_else(bad)?;
        let num = &t[..t.len() - 1];
        if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        let secs = n
            .checked_mul(mult)
            .filter(|v| *v <= 200 * 365 * 86_400)
            .ok_or_else(|| format!("duration '{s}' is longer than 200 years"))?;
        Ok(Dur {
            secs,
            text_unit: unit,
        })
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = unit_secs(self.text_unit).unwrap_or(1);
        if self.secs % m == 0 {
            write!(f, "{}{}", self.secs / m, self.text_unit)
        } else {
            write!(f, "{}s", self.secs)
        }
    }
}

impl<'de> serde::Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 90d")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "invalid duration '{v}': add a unit, e.g. {v}d for days"
                )))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Dur, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        for (t, s) in [
            ("45s", 45),
            ("30m", 1800),
            ("12h", 43_200),
            ("90d", 7_776_000),
            ("2w", 1_209_600),
            ("1y", 31_536_000),
        ] {
            let d: Dur = t.parse().unwrap();
            assert_eq!(d.secs(), s);
            assert_eq!(d.to_string(), t);
        }
    }

    #[test]
    fn rejects_bad_durations() {
        for t in ["", "d", "90", "90x", "-5d", "1.5d", "9999999999y"] {
            assert!(t.parse::<Dur>().is_err(), "{t}");
        }
    }
}
