//! The one clock. Everything that needs "now" asks a [`Clock`], so tests (and replays of recorded data) can
//! set time: `IOCFEED_NOW=2026-07-14T08:24:22Z` pins it for a whole process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Completes once the clock reads `t` or later. The scheduler waits only through this, so a test that
    /// moves a [`FixedClock`] drives every scheduled pull and retry.
    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep<'_>;
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            // Re-check after waking: the wall clock may have been stepped while we slept.
            loop {
                let left = (t - Utc::now()).to_std().unwrap_or_default();
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(std::time::Duration::from_secs(300))).await;
            }
        })
    }
}

/// A clock that only moves when told to (tests, and replays with `IOCFEED_NOW`).
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl FixedClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        FixedClock {
            now: Mutex::new(t),
            moved: Notify::new(),
        }
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap() = t;
        self.moved.notify_waiters();
    }
    pub fn advance(&self, d: chrono::Duration) {
        *self.now.lock().unwrap() += d;
        self.moved.notify_waiters();
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap()
    }
    fn sleep_until(&self, t: DateTime<Utc>) -> Sleep<'_> {
        Box::pin(async move {
            loop {
                let moved = self.moved.notified();
                tokio::pin!(moved);
                moved.as_mut().enable();
                if self.now() >= t {
                    return;
                }
                moved.await;
            }
        })
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// The process clock: fixed when `IOCFEED_NOW` holds an RFC 3339 time, the system clock otherwise.
pub fn from_env() -> Result<SharedClock, String> {
    match std::env::var("IOCFEED_NOW") {
        Ok(v) if !v.is_empty() => {
            let t = DateTime::parse_from_rfc3339(&v)
                .map_err(|e| format!("IOCFEED_NOW: not an RFC 3339 time ({e}): {v:?}"))?;
            Ok(Arc::new(FixedClock::new(t.with_timezone(&Utc))))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

/// ISO 8601 UTC with seconds and `Z`, the one time format of every output.
pub fn iso(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// An HTTP date (RFC 9110 IMF-fixdate).
pub fn http_date(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}
