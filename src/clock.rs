//! The one clock. Everything that needs "now" asks a [`Clock`], so tests (and replays of recorded data) can
//! set time: `IOCFEED_NOW=2026-07-14T08:24:22Z` pins it for a whole process.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(t: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(t))
    }
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap();
        *g += d;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
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
