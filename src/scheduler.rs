//! When to pull: one crontab schedule per source, one pull at a time per source, backoff after failure.
//!
//! The decisions are pure functions of the clock ([`next_after`], [`backoff`]) so tests can check them with
//! a set clock; [`run`] only sleeps between them.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::config::SourceConfig;
use crate::App;

/// Parses a standard 5-field crontab line (or a 6/7-field one with seconds first).
pub fn parse_schedule(s: &str) -> Result<cron::Schedule, String> {
    let fields = s.split_whitespace().count();
    let expr = match fields {
        5 => format!("0 {s}"),
        6 | 7 => s.to_string(),
        n => {
            return Err(format!(
                "{s:?}: expected 5 fields (minute hour day month weekday), got {n}"
            ))
        }
    };
    let schedule = cron::Schedule::from_str(&expr).map_err(|e| {
        let detail = e.to_string();
        let detail = detail.lines().next().unwrap_or("").trim();
        format!("{s:?} is not a valid crontab schedule ({detail})")
    })?;
    // `0 0 31 2 *` parses but never comes: the source would never be pulled on schedule.
    if schedule.upcoming(Utc).next().is_none() {
        return Err(format!("{s:?} never fires (no such date)"));
    }
    Ok(schedule)
}

/// The first scheduled time strictly after `t`.
pub fn next_after(schedule: &cron::Schedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule.after(&t).next()
}

/// How long to wait before retrying after `failures` consecutive failed pulls: 30 s doubling to at most
/// 30 minutes. A retry never waits past the next scheduled run (the caller takes the earlier of the two).
pub fn backoff(failures: u32) -> chrono::Duration {
    let secs = 30u64.saturating_mul(1u64 << failures.saturating_sub(1).min(6));
    chrono::Duration::seconds(secs.min(1800) as i64)
}

/// When a source runs next: after a failure, the earlier of its backoff and its schedule.
pub fn next_run(schedule: &cron::Schedule, now: DateTime<Utc>, failures: u32) -> DateTime<Utc> {
    let scheduled = next_after(schedule, now).unwrap_or(now + chrono::Duration::days(1));
    if failures == 0 {
        scheduled
    } else {
        scheduled.min(now + backoff(failures))
    }
}

/// True when a source's last success is older than two of its scheduling periods (plus ten minutes): its
/// data, and every list fed by it, are going stale.
pub fn is_stale(schedule: &str, last_success: Option<i64>, now: DateTime<Utc>) -> bool {
    let (Ok(s), Some(last)) = (parse_schedule(schedule), last_success) else {
        return false;
    };
    let mut next = s.after(&now);
    let period = match (next.next(), next.next()) {
        (Some(a), Some(b)) => (b - a).num_seconds(),
        _ => return false,
    };
    now.timestamp() - last > 2 * period + 600
}

/// Runs every source's schedule until `shutdown` flips. A source that has never pulled successfully is
/// pulled at once, so a fresh install has lists within a minute instead of at the next cron slot.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut tasks = Vec::new();
    for source in app.config.sources.clone() {
        let app = app.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(source_loop(app, source, shutdown)));
    }
    tasks.push(tokio::spawn(housekeeping(app.clone(), shutdown.clone())));
    let _ = shutdown.changed().await;
    for t in tasks {
        t.abort();
    }
}

/// How often lists are re-evaluated without a pull, so that ageing and score decay apply even while every
/// upstream is down.
pub const REPUBLISH_EVERY: chrono::Duration = chrono::Duration::minutes(10);

/// Re-evaluates every list at start (so a configuration just loaded, by a start or a SIGHUP, applies at
/// once: a new list, filter or format), then every [`REPUBLISH_EVERY`].
async fn housekeeping(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut due = app.clock.now();
    loop {
        tokio::select! {
            _ = app.clock.sleep_until(due) => {}
            _ = shutdown.changed() => return,
        }
        due = app.clock.now() + REPUBLISH_EVERY;
        let app2 = app.clone();
        match tokio::task::spawn_blocking(move || app2.republish()).await {
            Ok(Ok(outcomes)) => {
                for o in outcomes.iter().filter(|o| o.changed) {
                    tracing::info!(list = %o.list, version = o.version, entries = o.entries, "republished (ageing, allowlist or configuration)");
                }
            }
            Ok(Err(e)) => tracing::warn!("republish: {e}"),
            Err(e) => tracing::warn!("republish: {e}"),
        }
    }
}

async fn source_loop(app: Arc<App>, source: SourceConfig, mut shutdown: watch::Receiver<bool>) {
    let schedule = match parse_schedule(&source.schedule) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(source = %source.name, "bad schedule: {e}");
            return;
        }
    };
    let mut failures: u32 = 0;
    let never_pulled = {
        let app = app.clone();
        let name = source.name.clone();
        tokio::task::spawn_blocking(move || app.never_pulled(&name))
            .await
            .unwrap_or(true)
    };
    let mut due = if never_pulled {
        app.clock.now()
    } else {
        next_run(&schedule, app.clock.now(), 0)
    };
    loop {
        app.set_next_pull(&source.name, Some(due));
        tokio::select! {
            _ = app.clock.sleep_until(due) => {}
            _ = shutdown.changed() => return,
        }
        let app2 = app.clone();
        let name = source.name.clone();
        app.set_next_pull(&source.name, None);
        let outcome = tokio::task::spawn_blocking(move || app2.pull_source_logged(&name))
            .await
            .unwrap_or(Err(None));
        // The database counts failures across processes (a manual `pull` resets it too).
        failures = if outcome.is_ok() {
            0
        } else {
            let app3 = app.clone();
            let name = source.name.clone();
            tokio::task::spawn_blocking(move || app3.failures(&name))
                .await
                .unwrap_or(failures + 1)
                .max(1)
        };
        let now = app.clock.now();
        due = next_run(&schedule, now, failures);
        // A 429 or 503 with Retry-After: never come back sooner than the upstream asked.
        if let Err(Some(secs)) = outcome {
            due = due.max(now + chrono::Duration::seconds(secs.min(86_400) as i64));
        }
        if failures > 0 {
            tracing::info!(source = %source.name, retry_at = %due.format("%Y-%m-%dT%H:%M:%SZ"), failures, "pull will be retried");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn staleness_is_two_periods() {
        let now = Utc.with_ymd_and_hms(2026, 7, 14, 8, 0, 0).unwrap();
        let t = now.timestamp();
        assert!(!is_stale("*/15 * * * *", Some(t - 30 * 60), now));
        assert!(is_stale("*/15 * * * *", Some(t - 41 * 60), now));
        assert!(!is_stale("17 3 * * *", Some(t - 40 * 3600), now));
        assert!(is_stale("17 3 * * *", Some(t - 49 * 3600), now));
        assert!(!is_stale("*/15 * * * *", None, now));
    }

    #[test]
    fn five_field_cron_is_minute_first() {
        let s = parse_schedule("*/15 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 14, 8, 24, 22).unwrap();
        assert_eq!(
            next_after(&s, t).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 14, 8, 30, 0).unwrap()
        );
        assert!(parse_schedule("* * *").is_err());
        assert!(parse_schedule("61 * * * *").is_err());
    }

    #[test]
    fn backoff_doubles_and_never_passes_the_schedule() {
        assert_eq!(backoff(1).num_seconds(), 30);
        assert_eq!(backoff(2).num_seconds(), 60);
        assert_eq!(backoff(3).num_seconds(), 120);
        assert_eq!(backoff(20).num_seconds(), 1800);
        let s = parse_schedule("*/15 * * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 7, 14, 8, 0, 10).unwrap();
        assert_eq!(next_run(&s, t, 1), t + chrono::Duration::seconds(30));
        // 16 minutes of backoff would pass 08:15, so the scheduled run comes first.
        assert_eq!(
            next_run(&s, t, 6),
            Utc.with_ymd_and_hms(2026, 7, 14, 8, 15, 0).unwrap()
        );
        assert_eq!(
            next_run(&s, t, 0),
            Utc.with_ymd_and_hms(2026, 7, 14, 8, 15, 0).unwrap()
        );
    }
}
