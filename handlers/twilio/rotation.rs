//! Who is called first: the recipients' order, rotated daily when asked.
//!
//! A small team shares the night: with `rotation: daily` the list starts at a different person
//! each day (day *d* starts at recipient *d* mod *n*, the others following in list order and
//! wrapping around), so that sequential calling wakes someone else first tomorrow. The day
//! changes at midnight in `timezone`: an IANA time zone name (`Asia/Tokyo`, `Europe/Berlin`,
//! whose midnight follows daylight saving time), read from the system's tz database, or a fixed
//! UTC offset (`+09:00`). "Now" comes from [`common::clock::now_unix`], so tests and rehearsals
//! can pin the date with `PAGERPIPE_NOW`. With `rotation: none` (the default) the list order
//! is kept.

use std::path::Path;

use common::exit::{Code, Result};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};

/// How the recipients' order changes over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Keep the configured order.
    None,
    /// Start at the next person every day, at midnight in the given time zone.
    Daily {
        /// Where the day changes: a tz database zone or a fixed offset.
        zone: TimeZone,
    },
}

impl Rotation {
    /// From the `rotation` (`none` / `daily`) and `timezone` settings. Errors (exit 78) name
    /// the setting: an unknown rotation; a `timezone` that is neither an offset `±HH:MM` (or
    /// `±HHMM`, `±HH`, `Z`, `UTC`) within ±14:00 nor a zone in the system's tz database
    /// (`/usr/share/zoneinfo`, Debian's `tzdata`). The zone is only looked up for
    /// `rotation: daily`.
    pub fn from_settings(rotation: &str, timezone: &str) -> Result<Rotation> {
        match rotation.trim().to_ascii_lowercase().as_str() {
            "" | "none" => {
                // Still a typo in `timezone` is named now, not on the day rotation is turned on.
                if parse_offset(timezone).is_none() && !looks_like_zone_name(timezone) {
                    return Err(not_a_zone(timezone));
                }
                Ok(Rotation::None)
            }
            "daily" => Ok(Rotation::Daily { zone: zone(timezone)? }),
            other => {
                Err(Code::Config.msg(format!("settings `twilio.rotation`: {} is not one of none, daily", common::config::shown(other))))
            }
        }
    }

    /// Index of the recipient who comes first at `now` (Unix seconds) in a list of `n`
    /// (0 for an empty list or no rotation).
    pub fn first(&self, n: usize, now: u64) -> usize {
        match self.local_day(now) {
            Some(day) if n > 0 => day.rem_euclid(n as i64) as usize,
            _ => 0,
        }
    }

    /// Days since 1970-01-01 by the calendar of the rotation's time zone at `now` (Unix
    /// seconds; `None` without rotation).
    pub fn local_day(&self, now: u64) -> Option<i64> {
        let Rotation::Daily { zone } = self else { return None };
        let now = i64::try_from(now).ok().and_then(|s| Timestamp::from_second(s).ok()).unwrap_or(Timestamp::MAX);
        let date = zone.to_datetime(now).date();
        // Dates within jiff's range (years -9999..=9999) are at most 7.3 million days apart.
        Some(Date::constant(1970, 1, 1).until(date).map_or(0, |span| i64::from(span.get_days())))
    }

    /// `items` starting at [`Rotation::first`], the rest following in order and wrapping.
    pub fn apply<T: Clone>(&self, items: &[T], now: u64) -> Vec<T> {
        let start = self.first(items.len(), now);
        items[start..].iter().chain(&items[..start]).cloned().collect()
    }
}

/// The `timezone` setting as a time zone: a fixed offset ([`parse_offset`]), else a zone of
/// the system's tz database (`$TZDIR`, else `/usr/share/zoneinfo`: the zone's TZif file, such
/// as `Asia/Tokyo`).
fn zone(timezone: &str) -> Result<TimeZone> {
    if let Some(secs) = parse_offset(timezone) {
        return Offset::from_seconds(secs).map(TimeZone::fixed).map_err(|_| not_a_zone(timezone));
    }
    let name = timezone.trim();
    if !looks_like_zone_name(name) {
        return Err(not_a_zone(timezone));
    }
    let dir = std::env::var_os("TZDIR").filter(|d| !d.is_empty()).unwrap_or_else(|| "/usr/share/zoneinfo".into());
    named_zone(name, Path::new(&dir)).ok_or_else(|| {
        Code::Config.msg(format!(
            "settings `twilio.timezone`: {} is not a time zone of this host's tz database ({}; Debian's and Red Hat's package tzdata), nor a UTC offset such as +09:00",
            common::config::shown(timezone),
            Path::new(&dir).display()
        ))
    })
}

/// Largest TZif file read, in bytes: 256 KiB (the largest zones of tzdata are under 4 KiB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;

/// The zone `name` from the tz database in `dir` (its file `dir/name`, TZif); `None` when
/// there is no such file or it is no TZif. The name comes from a check's settings: a FIFO or
/// a device under `dir` is refused, never read ([`common::files::read_regular_followed`]), so
/// that no such name holds the handler up past its deadline.
fn named_zone(name: &str, dir: &Path) -> Option<TimeZone> {
    common::files::read_regular_followed(&dir.join(name), MAX_TZIF_BYTES).ok().and_then(|data| TimeZone::tzif(name, &data).ok())
}

/// Whether `s` could name a tz database zone: `Area/Location` style names of letters, digits,
/// `_`, `-`, `+` and `/` (`America/Argentina/Buenos_Aires`, `Etc/GMT+9`), never a path out of
/// the database.
fn looks_like_zone_name(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-+/".contains(&b))
        && s.split('/').all(|part| !part.is_empty() && !part.starts_with(['-', '+']))
}

/// The error for a `timezone` that is no offset or zone name.
fn not_a_zone(timezone: &str) -> common::exit::Failure {
    Code::Config.msg(format!(
        "settings `twilio.timezone`: {} is not a time zone name such as Asia/Tokyo or a UTC offset such as +09:00",
        common::config::shown(timezone)
    ))
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
        for bad in ["JST", "Europe/Berln", "../../etc/passwd", "/etc/localtime", "Asia//Tokyo", "+09:00:00", "Asia/Tokyo/"] {
            let err = Rotation::from_settings("daily", bad).expect_err(bad);
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains("twilio.timezone"), "{err}");
        }
        assert!(Rotation::from_settings("weekly", "+09:00").expect_err("invalid").to_string().contains("twilio.rotation"));
    }

    #[test]
    fn daily_rotation_changes_at_local_midnight() {
        assert_eq!(86_400 * 20_778, NOV21, "NOV21 is a midnight, day 20778");
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

    /// 2026-07-01T00:00:00Z, in Berlin's summer time (+02:00).
    const JUL1: u64 = 1_782_864_000;

    #[test]
    fn a_zone_with_daylight_saving_changes_the_day_at_its_own_midnight() {
        // Europe/Berlin's rule (tzdata is tests/twilio.rs's: no system database needed here).
        let berlin = Rotation::Daily { zone: TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap() };
        // Winter (+01:00): the 22nd of November starts at 23:00 UTC on the 21st.
        assert_eq!(berlin.local_day(NOV21 + 23 * 3600 - 1), Some(20_778));
        assert_eq!(berlin.local_day(NOV21 + 23 * 3600), Some(20_779));
        // Summer (+02:00): the 1st of July started at 22:00 UTC on the 30th of June. A fixed
        // +01:00 would still say the 30th then.
        assert_eq!(berlin.local_day(JUL1 - 2 * 3600 - 1), Some(20_634));
        assert_eq!(berlin.local_day(JUL1 - 2 * 3600), Some(20_635));
        let fixed = Rotation::from_settings("daily", "+01:00").expect("valid rotation");
        assert_eq!(fixed.local_day(JUL1 - 2 * 3600), Some(20_634));
    }

    #[test]
    fn a_zone_is_read_from_the_tz_database_given() {
        // A TZif version 1 file (RFC 8536 §3) of one local time type, +09:00 "JST".
        let mut tzif = b"TZif\0".to_vec();
        tzif.extend([0; 15]);
        for count in [0u32, 0, 0, 0, 1, 4] {
            tzif.extend(count.to_be_bytes());
        }
        tzif.extend(32_400i32.to_be_bytes());
        tzif.extend([0, 0]);
        tzif.extend(b"JST\0");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("Test")).unwrap();
        std::fs::write(dir.path().join("Test/Tokyo"), &tzif).unwrap();
        std::fs::write(dir.path().join("Test/Broken"), b"TZif but not really").unwrap();
        let tz = named_zone("Test/Tokyo", dir.path()).expect("a TZif file");
        assert_eq!(tz.to_offset(Timestamp::from_second(JUL1 as i64).unwrap()).seconds(), 9 * 3600);
        assert!(named_zone("Test/Broken", dir.path()).is_none());
        assert!(named_zone("Test", dir.path()).is_none(), "a directory");
        assert!(named_zone("Asia/Tokyo", dir.path()).is_none(), "only the database given");
    }
}
