//! iocfeed: pulls threat-intelligence exports (abuse.ch ThreatFox first), keeps every indicator in SQLite
//! with first-seen / last-seen / confidence, and serves versioned blocklists over HTTP.
//!
//! Data flows one way through these modules:
//!
//! - [`sources`]: fetch a source's bytes ([`sources::fetch`]) and read its reports ([`sources::threatfox`]).
//! - [`normalise`]: make each value canonical, or reject it with a reason.
//! - [`store`]: SQLite — indicators, reports, rejects, source state, list versions and their artifacts.
//! - [`score`]: the 0–100 score of an indicator and the terms behind it.
//! - [`publish`]: select each list's entries, mint a version when the set changes, render the formats.
//! - [`serve`]: the HTTP server (`serve::run(listener, app, shutdown)`).
//!
//! Around them: [`config`] (TOML, embedded default from `feeds/`), [`scheduler`] (cron per source),
//! [`pull`] (one pull, one transaction), [`clock`] (the one settable clock) and [`cli`] (the command line).

pub mod allow;
pub mod cli;
pub mod clock;
pub mod config;
pub mod lookup;
pub mod metrics;
pub mod normalise;
pub mod publish;
pub mod pull;
pub mod scheduler;
pub mod score;
pub mod serve;
pub mod sources;
pub mod store;

use std::path::{Path, PathBuf};

use clock::SharedClock;
use config::Config;

/// The running configuration, the clock and where the data lives: what every command works on.
pub struct App {
    pub config: Config,
    pub clock: SharedClock,
    pub data_dir: PathBuf,
    /// When the scheduler will next pull each source (Unix time), for `/sources`.
    next_pulls: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
    /// Counters for `/metrics`.
    pub counters: metrics::Counters,
    /// Sources being pulled by this process now: one pull at a time per source.
    pulling: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// A pull of one source in progress in this process; the source is free again when it is dropped.
struct Pulling<'a> {
    app: &'a App,
    source: String,
}

impl Drop for Pulling<'_> {
    fn drop(&mut self) {
        self.app.pulling.lock().unwrap().remove(&self.source);
    }
}

impl App {
    pub fn new(config: Config, clock: SharedClock) -> App {
        let data_dir = config.server.data_dir.clone();
        App {
            config,
            clock,
            data_dir,
            next_pulls: Default::default(),
            counters: Default::default(),
            pulling: Default::default(),
        }
    }

    pub fn set_next_pull(&self, source: &str, at: Option<chrono::DateTime<chrono::Utc>>) {
        let mut m = self.next_pulls.lock().unwrap();
        match at {
            Some(t) => m.insert(source.to_string(), t.timestamp()),
            None => m.remove(source),
        };
    }

    /// When the scheduler will next pull `source`, if it is scheduled in this process.
    pub fn next_pull(&self, source: &str) -> Option<i64> {
        self.next_pulls.lock().unwrap().get(source).copied()
    }

    pub fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    pub fn store(&self) -> Result<store::Store, store::StoreError> {
        store::Store::open(&self.data_dir)
    }

    /// True while this process pulls `source`.
    pub fn is_pulling(&self, source: &str) -> bool {
        self.pulling.lock().unwrap().contains(source)
    }

    /// Pulls one configured source now, from its URL or from `file`. A second pull of a source this
    /// process is already pulling waits for the first (the scheduler and `POST /admin/pull` share this).
    pub fn pull_source(
        &self,
        name: &str,
        file: Option<&Path>,
    ) -> Result<pull::Summary, pull::PullError> {
        let _pulling = loop {
            if self.pulling.lock().unwrap().insert(name.to_string()) {
                break Pulling {
                    app: self,
                    source: name.to_string(),
                };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let source = self.config.source(name).ok_or_else(|| pull::PullError {
            source_name: name.to_string(),
            url: String::new(),
            reason: "no such source in the configuration".into(),
            retry_after: None,
        })?;
        let url = || source.effective_url(&self.config.threatfox);
        let mut store = self.store().map_err(|e| pull::PullError {
            source_name: name.to_string(),
            url: url(),
            reason: e.to_string(),
            retry_after: None,
        })?;
        let input = match file {
            Some(p) => pull::Input::File(p),
            None => pull::Input::Fetch,
        };
        let result = pull::run(&mut store, &self.config, source, input, self.now());
        let outcome = match &result {
            Ok(s) if s.not_modified => "not-modified",
            Ok(s) if s.held.is_some() => "held",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        self.counters.pull(name, outcome);
        result
    }

    /// Pulls a source and logs the outcome in one line. On failure, the upstream's Retry-After, if any.
    pub fn pull_source_logged(&self, name: &str) -> Result<(), Option<u64>> {
        match self.pull_source(name, None) {
            Ok(s) => {
                log_summary(&s);
                Ok(())
            }
            Err(e) => {
                tracing::warn!("{e}");
                Err(e.retry_after)
            }
        }
    }

    /// Re-evaluates every list now (ageing, decay, allowlist), in one transaction.
    /// Nothing is re-evaluated before a first successful pull: an empty version of every list would
    /// otherwise be published from an empty database, and read as ready.
    pub fn republish(&self) -> Result<Vec<publish::Outcome>, store::StoreError> {
        let mut store = self.store()?;
        let pulled =
            |name: &str| store::source_state(&store.conn, name).map(|st| st.last_success.is_some());
        if !self
            .config
            .sources
            .iter()
            .any(|s| pulled(&s.name).unwrap_or(false))
        {
            return Ok(Vec::new());
        }
        let tx = store.write()?;
        let outcomes = publish::publish_all(&tx, &self.config, self.now(), None)?;
        // Rejected values are kept for inspection as long as indicators are: then they go.
        let cutoff = self.now() - self.config.scoring.max_age_days as i64 * 86_400;
        tx.execute("DELETE FROM reject WHERE last_at < ?1", [cutoff])?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// Consecutive failed pulls of a source, as recorded.
    pub fn failures(&self, name: &str) -> u32 {
        self.store()
            .and_then(|s| store::source_state(&s.conn, name))
            .map(|st| st.failures.max(0) as u32)
            .unwrap_or(0)
    }

    /// True when a source has never had a successful pull in this data directory.
    pub fn never_pulled(&self, name: &str) -> bool {
        self.store()
            .and_then(|s| store::source_state(&s.conn, name))
            .map(|st| st.last_success.is_none())
            .unwrap_or(true)
    }
}

/// The one log line of a successful pull.
pub fn log_summary(s: &pull::Summary) {
    if s.not_modified {
        tracing::info!(source = %s.source, "pull: not modified upstream");
        return;
    }
    if s.held.is_some() {
        // The brake's warning has said why; this line says that nothing else happened.
        tracing::info!(source = %s.source, rows = s.rows, accepted = s.accepted, "pull held: nothing changed");
        return;
    }
    let published: Vec<String> = s
        .lists
        .iter()
        .filter(|o| o.changed)
        .map(|o| format!("{} v{} ({} entries)", o.list, o.version, o.entries))
        .collect();
    let held: Vec<&str> = s
        .lists
        .iter()
        .filter(|o| o.held.is_some())
        .map(|o| o.list.as_str())
        .collect();
    tracing::info!(
        source = %s.source,
        rows = s.rows,
        accepted = s.accepted,
        rejected = s.rejected,
        withdrawn = s.withdrawn,
        published = %if published.is_empty() { "nothing new".to_string() } else { published.join(", ") },
        held = %if held.is_empty() { "none".to_string() } else { held.join(", ") },
        "pull ok"
    );
}
