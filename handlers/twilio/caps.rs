//! Per-recipient call caps, kept in the state store.
//!
//! Dedup stops one incident from calling twice within `refresh`, but a storm of *different*
//! incidents would still ring the same phones again and again — and a number that receives many
//! automated calls in a short time gets flagged as spam by carriers, so the page that matters
//! lands in a spam filter. So every call is counted per recipient, across incidents and
//! processes: at most 3 calls per 15 minutes and 7 per hour by default (`call_caps`,
//! `{"15m": 3, "1h": 7}`). A call over a cap is not placed; the caller logs one line and texts
//! the page instead: SMS is not capped, and a cap that one host's storm (or a host writing
//! results for made-up checks to its Sensu socket) has filled must not keep another incident
//! from reaching anyone.
//!
//! The counts live in one state-store record, [`KEY`] (`recipients:calls`), beside the
//! incident records: incident keys are `{entity}/{check}` or Zabbix `{id}-{host}`, so they do not
//! take this shape. Its shape is `{"calls": {"+15551234567": [unix seconds, …], …}}`, pruned to
//! the longest window. Calls are *reserved* before they are placed, all recipients of a
//! broadcast in one [`Store::update`] (read, prune, count, append under the record's lock), so
//! concurrent handler processes cannot both take the last slot and no update is lost; a call
//! that Twilio refuses gives its slot back ([`release`]). One record rather than one per number:
//! every event calls the same few people, so per-number records would not spread the lock, and
//! each locked write costs a lock and a rename — one write per event instead of one per
//! recipient (bench/README.md has the numbers). The record is volatile
//! ([`Store::update_volatile`]: no fsync); after a machine crash the caps may start afresh. When
//! a lock-free read already shows every number over a cap (the storm case), nothing is written
//! at all.

use std::collections::BTreeMap;

use common::config;
use common::config::de::{DurationError, parse_duration};
use common::exit::{Code, Result};
use common::state::Store;
use serde_json::{Value, json};

/// The default caps: (window as written, window in seconds, at most this many calls in it).
pub const DEFAULT: [(&str, u64, u64); 2] = [("15m", 15 * 60, 3), ("1h", 60 * 60, 7)];

/// Longest cap window: 30 days (the record is pruned to the longest window).
pub const MAX_WINDOW_SECS: u64 = 30 * 86_400;
/// Largest number of calls a cap may allow per window.
pub const MAX_CALLS: u64 = 100_000;

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

/// State-store key of the call counts of every recipient.
pub const KEY: &str = "recipients:calls";

impl Caps {
    /// From the `call_caps` setting: `null`/absent → [`DEFAULT`]; an object of window
    /// (humantime, `"15m"`, `"1h"`) → maximum calls (a whole number ≥ 1, or a string holding
    /// one); a window set to `null` is lifted; `{}` lifts them all. Errors exit 78 naming
    /// `twilio.call_caps.<window>`.
    pub fn from_setting(v: &Value) -> Result<Caps> {
        let obj = match v {
            Value::Null => {
                let limits =
                    DEFAULT.iter().map(|&(label, window_secs, max)| Limit { window_secs, max, label: label.to_string() }).collect();
                return Ok(Caps { limits });
            }
            Value::Object(o) => o,
            other => {
                return Err(Code::Config.msg(format!(
                    "settings `twilio.call_caps`: expected an object such as {{\"15m\": 3, \"1h\": 7}}, found {}",
                    if other.is_array() { "an array" } else { "a single value" }
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
            .filter(|m| *m <= MAX_CALLS)
            .ok_or_else(|| bad(format!("give a whole number of calls from 1 to {MAX_CALLS} (null lifts this cap)")))?;
            let secs = match parse_duration(window) {
                Ok(d) if (1..=MAX_WINDOW_SECS).contains(&d.as_secs()) => d.as_secs(),
                Ok(_) | Err(DurationError::TooLarge) => {
                    return Err(bad(format!(
                        "the window must be between 1s and {}",
                        config::show_duration(std::time::Duration::from_secs(MAX_WINDOW_SECS))
                    )));
                }
                Err(DurationError::Invalid(why)) => return Err(bad(why)),
            };
            limits.push(Limit { window_secs: secs, max, label: window.trim().to_string() });
        }
        limits.sort_by_key(|l| l.window_secs);
        Ok(Caps { limits })
    }

    /// The first cap that `calls` (one number's call times) already fills at `now`.
    fn full(&self, calls: &[u64], now: u64) -> Option<Reservation> {
        self.limits.iter().find_map(|l| {
            let count = calls.iter().filter(|&&t| now.saturating_sub(t) < l.window_secs).count() as u64;
            (count >= l.max).then(|| Reservation::Over { limit: l.clone(), count })
        })
    }

    /// Take a call slot at `now` (Unix seconds) for each of `phones` whose caps are not full,
    /// atomically under the store's lock for [`KEY`]; one [`Reservation`] per phone, in order.
    /// Without caps nothing is read or stored. Errors are the store's.
    pub fn reserve(&self, store: &dyn Store, phones: &[&str], now: u64) -> anyhow::Result<Vec<Reservation>> {
        if self.limits.is_empty() {
            return Ok(phones.iter().map(|_| Reservation::Granted { at: now }).collect());
        }
        // Lock-free first look: when every number is already over a cap, there is nothing to
        // write (a slot freed meanwhile by a refused call is at worst noticed by the next event).
        if let Some(snapshot) = store.get(KEY)? {
            let calls = parse(Some(&snapshot));
            let over: Option<Vec<Reservation>> =
                phones.iter().map(|p| self.full(calls.get(*p).map_or(&[][..], Vec::as_slice), now)).collect();
            if let Some(over) = over {
                return Ok(over);
            }
        }
        let longest = self.limits.iter().map(|l| l.window_secs).max().unwrap_or(0);
        let mut out = Vec::new();
        store.update_volatile(KEY, &mut |current| {
            out.clear();
            let mut calls = parse(current.as_ref());
            for times in calls.values_mut() {
                times.retain(|&t| now.saturating_sub(t) < longest);
            }
            for phone in phones {
                let times = calls.entry((*phone).to_string()).or_default();
                match self.full(times, now) {
                    Some(over) => out.push(over),
                    None => {
                        times.push(now);
                        out.push(Reservation::Granted { at: now });
                    }
                }
            }
            render(calls)
        })?;
        Ok(out)
    }
}

/// Give back the slot taken at `at` for `phone` (the call was refused).
pub fn release(store: &dyn Store, phone: &str, at: u64) -> anyhow::Result<()> {
    store.update_volatile(KEY, &mut |current| {
        let mut calls = parse(current.as_ref());
        if let Some(times) = calls.get_mut(phone)
            && let Some(i) = times.iter().rposition(|&t| t == at)
        {
            times.remove(i);
        }
        render(calls)
    })
}

/// The call times per number of a stored record (unreadable parts count as none).
fn parse(record: Option<&Value>) -> BTreeMap<String, Vec<u64>> {
    record
        .and_then(|r| r.get("calls"))
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(phone, times)| {
                    let times = times.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
                    (phone.clone(), times)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The record for `calls`, numbers without calls left out; `None` (delete) when empty.
fn render(mut calls: BTreeMap<String, Vec<u64>>) -> Option<Value> {
    calls.retain(|_, times| !times.is_empty());
    if calls.is_empty() { None } else { Some(json!({ "calls": calls })) }
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
        assert_eq!(
            d.limits.iter().map(|l| (l.window_secs, l.max, l.label.as_str())).collect::<Vec<_>>(),
            vec![(900, 3, "15m"), (3600, 7, "1h")]
        );
        let c = caps(json!({"1h": "5", "10m": 2, "15m": null}));
        assert_eq!(c.limits.iter().map(|l| (l.window_secs, l.max)).collect::<Vec<_>>(), vec![(600, 2), (3600, 5)]);
        assert!(caps(json!({})).limits.is_empty());
        for (bad, named) in [
            (json!({"15m": 0}), "call_caps.15m"),
            (json!({"soon": 3}), "call_caps.soon"),
            (json!({"1h": -1}), "call_caps.1h"),
            (json!([3, 7]), "call_caps"),
        ] {
            let err = Caps::from_setting(&bad).expect_err(&bad.to_string());
            assert_eq!(err.code, Code::Config);
            assert!(err.to_string().contains(named), "{err}");
        }
        let err = Caps::from_setting(&json!({"31d": 3})).expect_err("too long").to_string();
        assert!(err.ends_with("settings `twilio.call_caps.31d`: the window must be between 1s and 30days"), "{err}");
    }

    #[test]
    fn the_fourth_call_in_15_minutes_and_the_eighth_in_an_hour_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::at(dir.path().to_path_buf()).expect("store");
        let c = caps(Value::Null);
        let (phone, other) = ("+15551234567", "+15551234568");
        let one = |now: u64| c.reserve(&store, &[phone], now).expect("store").remove(0);
        let t0 = 1_000_000;
        for i in 0..3 {
            assert_eq!(one(t0 + i * 60), Reservation::Granted { at: t0 + i * 60 });
        }
        match one(t0 + 180) {
            Reservation::Over { limit, count } => assert_eq!((limit.label.as_str(), count), ("15m", 3)),
            other => panic!("{other:?}"),
        }
        // Several numbers at once: each counted apart, in order.
        let both = c.reserve(&store, &[phone, other], t0 + 180).expect("store");
        assert!(matches!(both[..], [Reservation::Over { .. }, Reservation::Granted { at }] if at == t0 + 180), "{both:?}");
        // 15 minutes after the first call one slot is free again (t0 has left the window).
        assert!(matches!(one(t0 + 900), Reservation::Granted { .. }));
        // Three more spread out: 7 in the hour, then the hourly cap holds.
        for t in [t0 + 1800, t0 + 2400, t0 + 3000] {
            assert!(matches!(one(t), Reservation::Granted { .. }), "{t}");
        }
        match one(t0 + 3500) {
            Reservation::Over { limit, count } => assert_eq!((limit.label.as_str(), count), ("1h", 7)),
            other => panic!("{other:?}"),
        }
        // A refused call gives its slot back.
        release(&store, phone, t0 + 3000).expect("store");
        assert!(matches!(one(t0 + 3500), Reservation::Granted { .. }));
        // One record apart from the incidents, pruned to the longest window: the other
        // number's call (t0 + 180) has left it.
        let rec = store.get(KEY).expect("store").expect("a record");
        let times = rec["calls"][phone].as_array().expect("calls");
        assert_eq!(times.len(), 7);
        assert!(times.iter().all(|t| t.as_u64().expect("a time") > t0 + 3500 - 3600));
        assert_eq!(rec["calls"][other], json!([t0 + 180]), "pruned only when the record is next written");
        assert!(matches!(one(t0 + 180 + 3600), Reservation::Granted { .. }));
        assert_eq!(store.get(KEY).expect("store").expect("a record")["calls"].get(other), None);
    }

    #[test]
    fn without_caps_nothing_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::at(dir.path().to_path_buf()).expect("store");
        let none = caps(json!({}));
        let got = none.reserve(&store, &["+15550000000", "+15550000001"], 5).expect("store");
        assert_eq!(got, vec![Reservation::Granted { at: 5 }; 2]);
        assert_eq!(store.get(KEY).expect("store"), None);
    }
}
