//! Waits of an invocation that holds a lease, and the renewal that starts only when one of
//! them would outlast it.
//!
//! A hold in the Redis store is a lease that lapses unless renewed
//! ([`crate::state::redis`]); a thread of the holder's process renews it. Starting that
//! thread costs a delivery about a quarter of a millisecond (a stack, a malloc arena, a
//! signal stack, another runnable thread beside Redis and the service: bench/HISTORY.md,
//! session 12), while most holds end within milliseconds, long before their first renewal
//! is due. So the store asks for the renewal to start by a time ([`start_by`]: a third of the
//! lease after the hold was taken), and every wait of the holder's thread goes through here:
//!
//! - a wait that can be resumed is cut at that time ([`slice()`]; then [`now_due`] starts the
//!   renewal and the rest of the wait follows): a response awaited from the service, a
//!   connection being made, a host name being resolved ([`crate::http`]);
//! - a wait that cannot be cut starts, before it begins, every renewal that falls due within
//!   it ([`before_wait`]): a retry's backoff, a Twilio run's polling, a lock waited for
//!   ([`sleep`]), a large write to a slow peer, a disk flush (`fsync` of a spool entry written
//!   under a hold: [`crate::files::write_atomic`]), which has no bound at all.
//!
//! What is left unwatched is the holder's own work between waits (milliseconds; a stopped
//! process stalls a running renewal thread as much), and commands to Redis itself, each
//! answered within the store's budget (at most 1 s; the renewal starts at a third of the
//! lease, which then has two thirds, 3.3 s by default, left).
//!
//! One registry per process: the renewals of every store with holds not yet renewed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What keeps a process's leases alive once started: the Redis store's renewal thread.
pub trait Renewal: Send + Sync {
    /// Start renewing every live hold now; nothing when the renewal runs already or no hold
    /// is left.
    fn start(&self);
}

/// A renewal to start by a time.
struct Due {
    by: Instant,
    renewal: Arc<dyn Renewal>,
}

/// Renewals registered and not yet started, in no order.
struct Registry(Mutex<Vec<Due>>);

impl Registry {
    const fn new() -> Registry {
        Registry(Mutex::new(Vec::new()))
    }

    fn due(&self) -> std::sync::MutexGuard<'_, Vec<Due>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn start_by(&self, by: Instant, renewal: Arc<dyn Renewal>) {
        self.due().push(Due { by, renewal });
    }

    /// Start every renewal due by `until` (taken off the registry first, so that a renewal's
    /// own start may register again).
    fn start_due_by(&self, until: Instant) {
        let starting: Vec<Arc<dyn Renewal>> = {
            let mut due = self.due();
            if due.is_empty() {
                return;
            }
            let (now, later): (Vec<Due>, Vec<Due>) = due.drain(..).partition(|d| d.by <= until);
            *due = later;
            now.into_iter().map(|d| d.renewal).collect()
        };
        for renewal in starting {
            renewal.start();
        }
    }

    fn before_wait(&self, max: Duration) {
        self.start_due_by(Instant::now().checked_add(max).unwrap_or_else(far_future));
    }

    fn slice(&self, max: Duration) -> Duration {
        match self.due().iter().map(|d| d.by).min() {
            Some(by) => max.min(by.saturating_duration_since(Instant::now())),
            None => max,
        }
    }
}

/// The process's registry.
static REGISTRY: Registry = Registry::new();

/// Ask for `renewal` to be started by `by` at the latest: by the first wait that reaches that
/// time.
pub fn start_by(by: Instant, renewal: Arc<dyn Renewal>) {
    REGISTRY.start_by(by, renewal);
}

/// Before a wait of up to `max` that cannot be cut short: start every renewal that falls due
/// within it.
pub fn before_wait(max: Duration) {
    REGISTRY.before_wait(max);
}

/// A wait (cut by [`slice()`]) reached its end: start every renewal due by now.
pub fn now_due() {
    REGISTRY.start_due_by(Instant::now());
}

/// How much of a wait of up to `max` may pass before a renewal falls due: `max` when none
/// falls due within it (zero when one is due already). A wait cut at this length calls
/// [`now_due`] and waits for the rest.
pub fn slice(max: Duration) -> Duration {
    REGISTRY.slice(max)
}

/// Sleep `d`, having started every renewal that falls due meanwhile.
pub fn sleep(d: Duration) {
    before_wait(d);
    std::thread::sleep(d);
}

/// A time no wait reaches (for a `max` too large to add to now).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 60 * 60)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Default)]
    struct Counting(AtomicU32);

    impl Renewal for Counting {
        fn start(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    // A registry of the test's own: the process's is shared with every test of the crate
    // (a durable write anywhere starts what is due).
    #[test]
    fn a_renewal_starts_at_the_first_wait_that_reaches_its_time_and_once() {
        let soon = Arc::new(Counting::default());
        let later = Arc::new(Counting::default());
        let registry = Registry::new();
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        registry.start_by(now + hour, Arc::clone(&soon) as Arc<dyn Renewal>);
        registry.start_by(now + 3 * hour, Arc::clone(&later) as Arc<dyn Renewal>);

        // A wait that ends before the earliest time is cut at nothing and starts nothing.
        assert_eq!(registry.slice(Duration::from_secs(1)), Duration::from_secs(1));
        registry.before_wait(Duration::from_secs(60));
        registry.start_due_by(Instant::now());
        assert_eq!((soon.0.load(Ordering::SeqCst), later.0.load(Ordering::SeqCst)), (0, 0));

        // A longer one is cut at the earliest time (within the hour, less what has passed).
        let cut = registry.slice(10 * hour);
        assert!(cut <= hour && cut > hour - Duration::from_secs(600), "{cut:?}");

        // A wait that cannot be cut starts what falls due within it, and only that, once.
        registry.before_wait(2 * hour);
        assert_eq!((soon.0.load(Ordering::SeqCst), later.0.load(Ordering::SeqCst)), (1, 0));
        registry.before_wait(2 * hour);
        assert_eq!(soon.0.load(Ordering::SeqCst), 1, "started once");
        let cut = registry.slice(10 * hour);
        assert!(cut > 2 * hour && cut <= 3 * hour, "now cut at the later one: {cut:?}");

        // A wait of any length (one too long to add to now) starts the rest.
        registry.before_wait(Duration::MAX);
        assert_eq!(later.0.load(Ordering::SeqCst), 1);
        assert_eq!(registry.slice(Duration::from_secs(5)), Duration::from_secs(5), "nothing left to start");
    }
}
