//! Who is called first: the recipients' order, rotated daily when asked.
//!
//! A small team shares the night: with `rotation: daily` the list starts at a different person
//! each day (day *d* starts at recipient *d* mod *n*, the others following in list order and
//! wrapping around), so that sequential calling wakes someone else first tomorrow. The day
//! changes at midnight in the `timezone` offset (e.g. `+09:00` for Japan), not at UTC midnight;
//! the offset is fixed (no daylight-saving rules), which is what an operator writes down for an
//! on-call rota. "Now" comes from [`common::clock::now_unix`], so tests and rehearsals can pin
//! the date with `PAGERPIPE_NOW`. With `rotation: none` (the default) the list order is kept.

use common::exit::{Code, Result};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// How the recipients' order changes over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Keep the configured order.
    None,
    /// Start at the next person every day, at midnight in the given UTC offset (seconds east).
    Daily {
        /// UTC offset in seconds east of Greenwich (`+09:00` → 32400).
        offset_secs: i32,
    },
}

impl Rotation {
    /// From the `rotation` (`none` / `daily`) and `timezone` settings. Errors (exit 78) name
    /// the setting: an unknown rotation, an offset that is not `±HH:MM` (or `±HHMM`, `±HH`,
    /// `Z`, `UTC`) within ±14:00.
    pub fn from_settings(rotation: &str, timezone: &str) -> Result<Rotation> {
        let offset_secs = parse_offset(timezone).ok_or_else(|| {
            Code::Config.msg(format!(
                "settings `twilio.timezone`: {} is not a UTC offset such as +09:00, -05:00 or UTC",
                common::config::shown(timezone)
            ))
        })?;
        match rotation.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(Rotation::None),
            "daily" => Ok(Rotation::Daily { offset_secs }),
            other => {
                Err(Code::Config.msg(format!("settings `twilio.rotation`: {} is not one of none, daily", common::config::shown(other))))
            }
        }
    }

    /// Index of the recipient who comes first at `now` (Unix seconds) in a list of `n`
    /// (0 for an empty list or no rotation).
    pub fn first(self, n: usize, now: u64) -> usize {
        match self.local_day(now) {
            Some(day) if n > 0 => day.rem_euclid(n as i64) as usize,
            _ => 0,
        }
    }

    /// Days since 1970-01-01 in the rotation's time zone (`None` without rotation).
    pub fn local_day(self, now: u64) -> Option<i64> {
        match self {
            Rotation::None => None,
            Rotation::Daily { offset_secs } => {
                Some(i64::try_from(now).unwrap_or(i64::MAX).saturating_add(i64::from(offset_secs)).div_euclid(DAY))
            }
        }
    }

    /// `items` starting at [`Rotation::first`], the rest following in order and wrapping.
    pub fn apply<T: Clone>(self, items: &[T], now: u64) -> Vec<T> {
        let start = self.first(items.len(), now);
        items[start..].iter().chain(&items[..start]).cloned().collect()
    }
}

/// Seconds east of UTC for `+09:00`, `-05:30`, `+0900`, `+9`, `Z`, `UTC`; `None` when malformed
/// or beyond ±14:00 (the widest offset in use, Kiribati's).
pub fn parse_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 3600 + m * 60;
    (m < 60 && total <= 14 * 3600).then_some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-21T00:00:00Z.
    const NOV21: u64 = 1_795_219_200;

    #[test]
    fn offsets() {
        for (s, secs) in [
            ("+09:00", 32400),
            ("-05:30", -19800),
            ("+0900", 32400),
            ("+9", 32400),
            ("Z", 0),
            ("UTC", 0),
            ("", 0),
            ("-00:00", 0),
            ("+14:00", 50400),
        ] {
            assert_eq!(parse_offset(s), Some(secs), "{s}");
        }
        for bad in ["09:00", "+9:60", "+15:00", "JST", "+09:00:00", "+123", "+ 9"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
        let err = Rotation::from_settings("daily", "Asia/Tokyo").expect_err("invalid");
        assert_eq!(err.code, Code::Config);
        assert!(err.to_string().contains("twilio.timezone"), "{err}");
        assert!(Rotation::from_settings("weekly", "+09:00").expect_err("invalid").to_string().contains("twilio.rotation"));
    }

    #[test]
    fn daily_rotation_changes_at_local_midnight() {
        assert_eq!(crate::rotation::DAY * 20_778, NOV21 as i64, "NOV21 is a midnight, day 20778");
        let list = ["a", "b", "c"];
        let none = Rotation::from_settings("none", "+09:00").expect("valid rotation");
        assert_eq!(none.apply(&list, NOV21), list);
        let utc = Rotation::from_settings("daily", "UTC").expect("valid rotation");
        // Day 20778 mod 3 = 0 → a first; the next day b, then c, then a again.
        assert_eq!(utc.apply(&list, NOV21), ["a", "b", "c"]);
        assert_eq!(utc.apply(&list, NOV21 + 86_399), ["a", "b", "c"]);
        assert_eq!(utc.apply(&list, NOV21 + 86_400), ["b", "c", "a"]);
        assert_eq!(utc.apply(&list, NOV21 + 2 * 86_400), ["c", "a", "b"]);
        assert_eq!(utc.apply(&list, NOV21 + 3 * 86_400), ["a", "b", "c"]);
        // In Tokyo (+09:00) the 22nd starts at 15:00 UTC on the 21st.
        let tokyo = Rotation::from_settings("daily", "+09:00").expect("valid rotation");
        assert_eq!(tokyo.apply(&list, NOV21 + 15 * 3600 - 1), ["a", "b", "c"]);
        assert_eq!(tokyo.apply(&list, NOV21 + 15 * 3600), ["b", "c", "a"]);
        // West of Greenwich the day starts later.
        let ny = Rotation::from_settings("daily", "-05:00").expect("valid rotation");
        assert_eq!(ny.apply(&list, NOV21 + 4 * 3600), ["c", "a", "b"], "still the 20th in New York");
        assert!(utc.apply::<&str>(&[], NOV21).is_empty());
        assert_eq!(utc.apply(&["only"], NOV21 + 86_400), ["only"]);
    }
}
