//! Per-recipient call caps, kept in the state store.
//!
//! Dedup stops one incident from calling twice within `refresh`, but a storm of *different*
//! incidents would still ring the same phones again and again — and a number that receives many
//! automated calls in a short time gets flagged as spam by carriers, so the page that matters
//! lands in a spam filter. So every call is counted per recipient, across incidents and
//! processes: at most 3 calls per 15 minutes and 7 per hour by default (`call_caps`,
//! `{"15m": 3, "1h": 7}`). A call over a cap is not placed; the caller logs one line instead.
//! SMS is not capped.
//!
//! The count lives in the state store under `recipient:<E.164 number>` (e.g.
//! `recipient:+15551234567`): incident keys are `{entity}/{check}` or Zabbix `{id}-{host}`, so
//! they do not take this shape. A call is *reserved* before it is placed, inside one
//! [`Store::update`] (read, prune, count, append under the key's lock), so concurrent handler
//! processes cannot both take the last slot; a call that Twilio refuses gives its slot back
//! ([`release`]).

use common::config::de::parse_duration;
use common::exit::{Code, Result};
use common::state::Store;
use serde_json::{Value, json};

/// The default caps: (window as written, window in seconds, at most this many calls in it).
pub const DEFAULT: [(&str, u64, u64); 2] = [("15m", 15 * 60, 3), ("1h", 60 * 60, 7)];

/// One cap: at most `max` calls per recipient in any `window_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// Window length in seconds.
    pub window_secs: u64,
    /// Calls allowed within the window.
    pub max: u64,
    /// The window as the operator wrote it (`15m`), for log lines.
    pub label: String,
}

/// The caps in force (may be empty: no cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    limits: Vec<Limit>,
}

/// The outcome of [`Caps::reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The call may be placed; its slot is recorded at `at` (Unix seconds).
    Granted {
        /// When the slot was taken, to [`release`] it.
        at: u64,
    },
    /// Over a cap: `count` calls already within `limit`'s window.
    Over {
        /// The cap that is full.
        limit: Limit,
        /// Calls already counted in its window.
        count: u64,
    },
}

/// State-store key of `phone`'s call record.
pub fn key(phone: &str) -> String {
    format!("recipient:{phone}")
}

impl Caps {
    /// From the `call_caps` setting: `null`/absent → [`DEFAULT`]; an object of window
    /// (humantime, `"15m"`, `"1h"`) → maximum calls (a whole number ≥ 1, or a string holding
    /// one); a window set to `null` is lifted; `{}` lifts them all. Errors exit 78 naming
    /// `twilio.call_caps.<window>`.
    pub fn from_setting(v: &Value) -> Result<Caps> {
        let obj = match v {
            Value::Null => {
                let limits = DEFAULT
                    .iter()
                    .map(|&(label, window_secs, max)| Limit { window_secs, max, label: label.to_string() })
                    .collect();
                return Ok(Caps { limits });
            }
            Value::Object(o) => o,
            other => {
                return Err(Code::Config.msg(format!(
                    "settings `twilio.call_caps`: expected an object such as {{\"15m\": 3, \"1h\": 7}}, found {other}"
                )));
            }
        };
        let mut limits = Vec::new();
        for (window, max) in obj {
            let bad = |why: String| Code::Config.msg(format!("settings `twilio.call_caps.{window}`: {why}"));
            let max = match max {
                Value::Null => continue,
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|m| *m >= 1)
            .ok_or_else(|| bad(format!("{max} is not a whole number of calls of at least 1 (null lifts this cap)")))?;
            let secs = parse_duration(window).map_err(bad)?.as_secs();
            if secs == 0 {
                return Err(bad("the window must be at least 1s".into()));
            }
            limits.push(Limit { window_secs: secs, max, label: window.trim().to_string() });
        }
        limits.sort_by_key(|l| l.window_secs);
        Ok(Caps { limits })
    }

    /// Take a call slot for `phone` at `now` (Unix seconds) unless a cap is full, atomically
    /// under the store's lock for [`key`]`(phone)`. Without caps nothing is stored. Errors are
    /// the store's.
    pub fn reserve(&self, store: &dyn Store, phone: &str, now: u64, notice: &mut dyn FnMut(String)) -> anyhow::Result<Reservation> {
        if self.limits.is_empty() {
            return Ok(Reservation::Granted { at: now });
        }
        let longest = self.limits.iter().map(|l| l.window_secs).max().unwrap_or(0);
        let mut outcome = Reservation::Granted { at: now };
        store.update(&key(phone), notice, &mut |current| {
            // Keep only what a window can still see.
            let mut calls: Vec<u64> = times(current.as_ref()).into_iter().filter(|&t| now.saturating_sub(t) < longest).collect();
            let over = self.limits.iter().find_map(|l| {
                let count = calls.iter().filter(|&&t| now.saturating_sub(t) < l.window_secs).count() as u64;
                (count >= l.max).then(|| Reservation::Over { limit: l.clone(), count })
            });
            match over {
                Some(o) => outcome = o,
                None => {
                    calls.push(now);
                    outcome = Reservation::Granted { at: now };
                }
            }
            if calls.is_empty() { None } else { Some(json!({ "phone": phone, "calls": calls })) }
        })?;
        Ok(outcome)
    }
}

/// Give back the slot taken at `at` for `phone` (the call was not placed).
pub fn release(store: &dyn Store, phone: &str, at: u64, notice: &mut dyn FnMut(String)) -> anyhow::Result<()> {
    store.update(&key(phone), notice, &mut |current| {
        let mut calls = times(current.as_ref());
        if let Some(i) = calls.iter().rposition(|&t| t == at) {
            calls.remove(i);
        }
        if calls.is_empty() { None } else { Some(json!({ "phone": phone, "calls": calls })) }
    })
}

/// The call times of a stored record (an unreadable record counts as none).
fn times(record: Option<&Value>) -> Vec<u64> {
    record
        .and_then(|r| r.get("calls"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::state::file::FileStore;

    fn caps(v: Value) -> Caps {
        Caps::from_setting(&v).expect("caps")
    }

    #[test]
    fn settings() {
        let d = caps(Value::Null);
        assert_eq!(d.limits.iter().map(|l| (l.window_secs, l.max, l.label.as_str())).collect::<Vec<_>>(), vec![(900, 3, "15m"), (3600, 7, "1h")]);
        let c = caps(json!({"1h": "5", "10m": 2, "15m": null}));
        assert_eq!(c.limits.iter().map(|l| (l.window_secs, l.max)).collect::<Vec<_>>(), vec![(600, 2), (3600, 5)]);
        assert!(caps(json!({})).limits.is_empty());
        for (bad, named) in [(json!({"15m": 0}), "call_caps.15m"), (json!({"soon": 3}), "call_caps.soon"), (json!({"1h": -1}), "call_caps.1h"), (json!([3, 7]), "call_caps")] {
            let err = Caps::from_setting(&bad).expect_err(&bad.to_string());
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains(named), "{err}");
        }
    }

    #[test]
    fn the_fourth_call_in_15_minutes_and_the_eighth_in_an_hour_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::at(dir.path().to_path_buf()).expect("store");
        let n = &mut |_| {};
        let c = caps(Value::Null);
        let phone = "+15551234567";
        let t0 = 1_000_000;
        for i in 0..3 {
            assert_eq!(c.reserve(&store, phone, t0 + i * 60, n).expect("store"), Reservation::Granted { at: t0 + i * 60 });
        }
        match c.reserve(&store, phone, t0 + 180, n).expect("store") {
            Reservation::Over { limit, count } => assert_eq!((limit.label.as_str(), count), ("15m", 3)),
            other => panic!("{other:?}"),
        }
        // Another number is counted apart.
        assert!(matches!(c.reserve(&store, "+15551234568", t0 + 180, n).expect("store"), Reservation::Granted { .. }));
        // 15 minutes after the first call one slot is free again (t0 has left the window).
        assert!(matches!(c.reserve(&store, phone, t0 + 900, n).expect("store"), Reservation::Granted { .. }));
        // Three more spread out: 7 in the hour, then the hourly cap holds.
        for t in [t0 + 1800, t0 + 2400, t0 + 3000] {
            assert!(matches!(c.reserve(&store, phone, t, n).expect("store"), Reservation::Granted { .. }), "{t}");
        }
        match c.reserve(&store, phone, t0 + 3500, n).expect("store") {
            Reservation::Over { limit, count } => assert_eq!((limit.label.as_str(), count), ("1h", 7)),
            other => panic!("{other:?}"),
        }
        // A refused call gives its slot back.
        release(&store, phone, t0 + 3000, n).expect("store");
        assert!(matches!(c.reserve(&store, phone, t0 + 3500, n).expect("store"), Reservation::Granted { .. }));
        // The record is stored apart from incidents, pruned to the longest window.
        let rec = store.get(&key(phone), n).expect("store").expect("a record");
        assert_eq!(rec["phone"], phone);
        assert!(rec["calls"].as_array().expect("calls").iter().all(|t| t.as_u64().expect("a time") > t0 + 3500 - 3600));
        // No caps: always granted, nothing counted.
        let none = caps(json!({}));
        assert!(matches!(none.reserve(&store, "+15550000000", t0, n).expect("store"), Reservation::Granted { .. }));
        assert_eq!(store.get(&key("+15550000000"), n).expect("store"), None);
    }
}
