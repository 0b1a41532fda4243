//! One pull of one source: fetch → read → normalise → store → publish, committed in one transaction or not
//! at all. A failed pull changes no data, no version and no validator; it is recorded against the source.

use std::collections::BTreeMap;
use std::path::Path;

use crate::allow;
use crate::config::{Config, Mode, SourceConfig, SourceKind};
use crate::normalise;
use crate::publish::{self, Outcome};
use crate::sources::fetch::{self, Fetched, Validators};
use crate::sources::{api, text, threatfox};
use crate::store::{self, SourceState, Store};

/// How often (in rows) a long pull reports progress in the log.
pub const PROGRESS_EVERY: u64 = 100_000;

/// What a successful pull did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub source: String,
    pub not_modified: bool,
    pub rows: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub rejects: BTreeMap<String, i64>,
    pub lists: Vec<Outcome>,
    /// Reports withdrawn because a full dump no longer holds them.
    pub withdrawn: usize,
    /// Set when the safety brake held this pull (the source suddenly returned nothing).
    pub held: Option<String>,
}

/// The hold scope of a source.
pub fn source_scope(name: &str) -> String {
    format!("source:{name}")
}

/// A failed pull: always one line naming the source and where it read from.
#[derive(Debug, thiserror::Error)]
#[error("pull {source_name} from {url} failed: {reason}")]
pub struct PullError {
    pub source_name: String,
    pub url: String,
    pub reason: String,
    /// Seconds the upstream asked us to wait (429/503 `Retry-After`).
    pub retry_after: Option<u64>,
}

/// Why a pull failed, before the source and URL are attached.
pub struct Failure {
    reason: String,
    retry_after: Option<u64>,
}

impl From<String> for Failure {
    fn from(reason: String) -> Failure {
        Failure {
            reason,
            retry_after: None,
        }
    }
}

/// Where a pull reads from: the source's own URL, or a file the user downloaded (`pull --file`).
pub enum Input<'a> {
    Fetch,
    File(&'a Path),
}

pub fn run(
    store: &mut Store,
    cfg: &Config,
    source: &SourceConfig,
    input: Input,
    now: i64,
) -> Result<Summary, PullError> {
    let url = match input {
        Input::Fetch => source.effective_url(&cfg.threatfox),
        Input::File(p) => p.display().to_string(),
    };
    let fail = |f: Failure| PullError {
        source_name: source.name.clone(),
        url: url.clone(),
        reason: fetch::one_line(&f.reason),
        retry_after: f.retry_after,
    };
    let result = run_inner(store, cfg, source, &input, &url, now).map_err(fail);
    if let Err(e) = &result {
        // The data transaction is already rolled back; the failure is recorded on its own.
        if let Err(db) = store::record_failure(&store.conn, &source.name, &e.reason, now) {
            tracing::error!(source = %source.name, "cannot record the failed pull: {db}");
        }
    }
    result
}

fn run_inner(
    store: &mut Store,
    cfg: &Config,
    source: &SourceConfig,
    input: &Input,
    url: &str,
    now: i64,
) -> Result<Summary, Failure> {
    let previous = store::source_state(&store.conn, &source.name).map_err(|e| e.to_string())?;
    let tmp = store
        .path
        .parent()
        .map(|p| p.join("tmp"))
        .unwrap_or_else(|| "tmp".into());
    // Fetch everything before the transaction: a slow upstream never holds the database's write lock.
    let mut bodies: Vec<std::path::PathBuf> = Vec::new();
    let mut temps = Vec::new();
    let mut validators = Validators::default();
    let fetch_failure = |e: fetch::FetchError| Failure {
        retry_after: match &e {
            fetch::FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        },
        reason: e.to_string(),
    };
    match (source.kind, input) {
        (_, Input::File(p)) => bodies.push(p.to_path_buf()),
        (SourceKind::ThreatfoxApi, Input::Fetch) => {
            // The key is read here and sent as a header; no error text, log line or state ever holds it.
            let key = std::env::var("THREATFOX_AUTH_KEY")
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .ok_or_else(|| "THREATFOX_AUTH_KEY is not set".to_string())?;
            // Checked before use, and the message never quotes it.
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(
                    "THREATFOX_AUTH_KEY holds characters a header cannot carry (a line break, a space, an invisible character?)"
                        .to_string()
                        .into(),
                );
            }
            for (tag, body) in api::requests(source, cfg) {
                if let Fetched::Body { path, _temp, .. } =
                    fetch::post_json(source, url, &[("Auth-Key", &key)], &body, &tmp, &tag)
                        .map_err(fetch_failure)?
                {
                    bodies.push(path);
                    temps.push(_temp);
                }
            }
        }
        (_, Input::Fetch) => {
            match fetch::fetch(source, url, &previous.validators, &tmp).map_err(fetch_failure)? {
                Fetched::NotModified => {
                    store::record_not_modified(&store.conn, &source.name, now)
                        .map_err(|e| e.to_string())?;
                    return Ok(Summary {
                        source: source.name.clone(),
                        not_modified: true,
                        ..Default::default()
                    });
                }
                Fetched::Body {
                    path,
                    validators: v,
                    _temp,
                } => {
                    bodies.push(path);
                    validators = v;
                    temps.push(_temp);
                }
            }
        }
    }
    let mut summary = Summary {
        source: source.name.clone(),
        ..Default::default()
    };
    let tx = store.write().map_err(|e| e.to_string())?;
    let full = source.mode == Mode::Full
        && matches!(
            source.kind,
            SourceKind::ThreatfoxExport | SourceKind::Text | SourceKind::Csv
        );
    if full {
        store::begin_seen(&tx).map_err(|e| e.to_string())?;
    }
    let mut sink = Sink {
        tx: &tx,
        source,
        now,
        full,
        summary: &mut summary,
        newest_first_seen: None,
        oldest_first_seen: None,
        newest_activity: None,
        db_error: None,
    };
    // An API that answers `no_result` has said, explicitly, that there is nothing: that is not a broken feed.
    let mut explicit_empty = false;
    let parsed = match source.kind {
        SourceKind::ThreatfoxExport => bodies
            .iter()
            .try_for_each(|b| threatfox::read_file(b, source.max_bytes, &mut |r| sink.row(r))),
        SourceKind::ThreatfoxApi => {
            explicit_empty = true;
            bodies.iter().try_for_each(|b| {
                let answer = api::read_answer(b, source.max_bytes, &mut |r| sink.row(r))?;
                explicit_empty &= answer == api::Answer::NoResult;
                Ok(())
            })
        }
        SourceKind::Text => bodies
            .iter()
            .try_for_each(|b| text::read_indicators(b, source, &mut |r| sink.row(r))),
        SourceKind::Csv => bodies
            .iter()
            .try_for_each(|b| text::read_mapped_csv(b, source, &mut |r| sink.row(r))),
        SourceKind::Allowlist => {
            read_allowlist(&tx, source, &bodies[0], now, sink.summary)?;
            Ok(())
        }
    };
    if let Some(e) = sink.db_error.take() {
        return Err(e.into());
    }
    parsed.map_err(|e| e.to_string())?;
    let newest_first_seen = sink.newest_first_seen;
    let oldest_first_seen = sink.oldest_first_seen;
    let newest_activity = sink.newest_activity;
    drop(temps);
    let scope = source_scope(&source.name);
    // After an operator's release (`publish --force`) the next pull is taken as it comes.
    let released = previous.last_result.as_deref() == Some("released");
    // A source that suddenly returns nothing (or a complete source that shrank to less than half) is
    // broken upstream far more often than it is right: publish nothing, withdraw nothing, keep the last
    // validators, and say so until a sane pull. Small lists, which the per-list brake does not cover,
    // are protected by this against a broken source, not against a sane-sized pull that drops their
    // entries. An allowlist source is complete too: a truncated download of it would otherwise publish
    // the very sites it protects.
    let complete = full || source.kind == SourceKind::Allowlist;
    let shrunk = complete && (summary.accepted as i64) * 2 < previous.accepted;
    if !released && previous.accepted > 0 && !explicit_empty && (summary.accepted == 0 || shrunk) {
        let what = if summary.accepted == 0 {
            "no indicators".to_string()
        } else {
            format!("{} indicators (less than half)", summary.accepted)
        };
        let reason = format!("returned {what} after a pull of {}", previous.accepted);
        drop(tx);
        return hold(store, source, reason, now, summary);
    }
    if full && source.kind != SourceKind::ThreatfoxExport {
        // A complete in-house list: whatever it no longer names is withdrawn (by this source only).
        summary.withdrawn =
            store::withdraw_unseen(&tx, &source.name, now).map_err(|e| e.to_string())?;
    } else if full {
        // Only what the dump could have held is withdrawn: reports first seen within the span it covers,
        // from its oldest report to its newest (when it was made). A recent export imported as the dump by
        // mistake covers two days, and withdraws nothing older.
        if let (Some(since), Some(dump_time)) = (oldest_first_seen, newest_first_seen) {
            let upstream = source.upstream();
            let siblings: Vec<String> = cfg
                .sources
                .iter()
                .filter(|s| s.upstream() == upstream)
                .map(|s| s.name.clone())
                .collect();
            let held_before = store::count_withdrawable(&tx, &siblings, since, dump_time)
                .map_err(|e| e.to_string())?;
            summary.withdrawn = store::withdraw_missing(&tx, &siblings, since, dump_time, now)
                .map_err(|e| e.to_string())?;
            // The first full dump has no earlier dump to compare with: what it would withdraw is the
            // measure. A real dump withdraws the few false positives ThreatFox deleted, never most of what
            // it could have held.
            if !released && summary.withdrawn >= 10 && summary.withdrawn * 2 > held_before {
                let reason = format!(
                    "would withdraw {} of the {held_before} reports its upstream held",
                    summary.withdrawn
                );
                drop(tx);
                return hold(store, source, reason, now, summary);
            }
        }
    }
    store::clear_hold(&tx, &scope).map_err(|e| e.to_string())?;
    // Recorded data replayed without IOCFEED_NOW, or a clock far ahead: every indicator would be aged out
    // on arrival and the lists empty. Worth one line, since nothing else looks wrong.
    let max_age = i64::from(cfg.scoring.max_age_days) * 86_400;
    if summary.accepted > 0 && newest_activity.is_some_and(|t| t < now - max_age) {
        tracing::warn!(
            source = %source.name,
            "every indicator this pull accepted is older than max_age_days ({}), so none is listed: is the clock right? (recorded data needs IOCFEED_NOW)",
            cfg.scoring.max_age_days
        );
    }
    summary.lists = publish::publish_all(&tx, cfg, now, None).map_err(|e| e.to_string())?;
    store::record_success(
        &tx,
        &SourceState {
            source: source.name.clone(),
            validators: if matches!(input, Input::Fetch) {
                validators
            } else {
                previous.validators
            },
            last_attempt: Some(now),
            last_success: Some(now),
            last_result: Some("ok".into()),
            last_error: None,
            failures: 0,
            rows: summary.rows as i64,
            accepted: summary.accepted as i64,
            rejected: summary.rejected as i64,
            rejects: summary.rejects.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(summary)
}

/// Records the safety brake's hold on `source` in a transaction of its own: the pull's own transaction has
/// been rolled back, so a held pull changes nothing but the hold (no report, withdrawal or allow entry).
fn hold(
    store: &mut Store,
    source: &SourceConfig,
    what: String,
    now: i64,
    mut summary: Summary,
) -> Result<Summary, Failure> {
    let reason = format!(
        "{what}; nothing published (a sane pull, or `iocfeed publish LIST --force` for any list after a look, releases it)"
    );
    let tx = store.write().map_err(|e| e.to_string())?;
    store::set_hold(&tx, &source_scope(&source.name), &reason, now).map_err(|e| e.to_string())?;
    store::record_held(&tx, &source.name, now).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    tracing::warn!(source = %source.name, "pull held by the safety brake: {reason}");
    summary.withdrawn = 0;
    summary.held = Some(reason);
    Ok(summary)
}

/// Takes rows into the open transaction: normalises, stores or rejects, counts.
struct Sink<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    source: &'a SourceConfig,
    now: i64,
    full: bool,
    summary: &'a mut Summary,
    newest_first_seen: Option<i64>,
    oldest_first_seen: Option<i64>,
    /// The latest first or last seen of an accepted report: is any of this pull recent enough to list?
    newest_activity: Option<i64>,
    db_error: Option<String>,
}

impl Sink<'_> {
    fn row(&mut self, row: threatfox::Row) -> Result<(), String> {
        let (tx, source, now) = (self.tx, self.source, self.now);
        self.summary.rows += 1;
        if self.summary.rows % PROGRESS_EVERY == 0 {
            tracing::info!(source = %source.name, rows = self.summary.rows, "pull in progress");
        }
        // Every reader's rows meet the same field caps (the JSON reader already stops at them).
        let row = row.and_then(|r| match r.oversize_field() {
            Some(field) => Err(threatfox::BadRow {
                reason: crate::sources::json::FIELD_TOO_LONG,
                raw: format!(
                    "{field} over its cap: {}",
                    r.value.chars().take(200).collect::<String>()
                ),
            }),
            None => Ok(r),
        });
        let outcome = match row {
            Ok(mut report) => {
                // Upstream clocks are not ours: a time in the future would never age and, in a full dump,
                // would withdraw everything reported since. Nothing is later than now.
                report.first_seen = report.first_seen.map(|t| t.min(now));
                report.last_seen = report.last_seen.map(|t| t.min(now));
                if self.full {
                    self.newest_first_seen = self.newest_first_seen.max(report.first_seen);
                    if let Some(t) = report.first_seen {
                        self.oldest_first_seen =
                            Some(self.oldest_first_seen.map_or(t, |o| o.min(t)));
                    }
                }
                match normalise::normalise(&report.ioc_type, &report.value) {
                    Ok(ind) => {
                        // The id the report is stored under (its value when upstream gave none) is the
                        // one a full dump must mark as seen.
                        let seen = if self.full {
                            store::mark_seen(tx, report.report_id.as_deref().unwrap_or(&ind.value))
                        } else {
                            Ok(())
                        };
                        self.newest_activity = self
                            .newest_activity
                            .max(report.first_seen)
                            .max(report.last_seen);
                        seen.and_then(|()| {
                            store::upsert_report(tx, &source.name, &ind, &report, now).map(|_| None)
                        })
                    }
                    Err(reason) => {
                        store::add_reject(tx, &source.name, reason.as_str(), &report.value, now)
                            .map(|_| Some(reason.as_str()))
                    }
                }
            }
            Err(bad) => store::add_reject(tx, &source.name, bad.reason, &bad.raw, now)
                .map(|_| Some(bad.reason)),
        };
        match outcome {
            Ok(None) => self.summary.accepted += 1,
            Ok(Some(reason)) => {
                self.summary.rejected += 1;
                *self.summary.rejects.entry(reason.to_string()).or_default() += 1;
            }
            Err(e) => {
                self.db_error = Some(e.to_string());
                return Err(e.to_string());
            }
        }
        Ok(())
    }
}

/// An `allowlist` source's entries replace the ones it gave before.
fn read_allowlist(
    tx: &rusqlite::Transaction,
    source: &SourceConfig,
    path: &Path,
    now: i64,
    summary: &mut Summary,
) -> Result<(), String> {
    let format = source.format.unwrap_or_default();
    let lines = text::read_allow(path, format, source.top).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    // The addresses the list's networks cover, IPv4 and IPv6 (see the check below).
    let (mut v4, mut v6) = (0u128, 0u128);
    for (raw, subdomains) in lines {
        summary.rows += 1;
        match allow::parse(&raw) {
            // A top-sites list names sites: an address or a network in it is not what it claims to be.
            Ok(allow::Pattern::Net { .. }) if format == crate::config::AllowFormat::TopSites => {
                summary.rejected += 1;
                *summary.rejects.entry("bad-allow-entry".into()).or_default() += 1;
                store::add_reject(tx, &source.name, "bad-allow-entry", &raw, now)
                    .map_err(|e| e.to_string())?;
            }
            Ok(p) => {
                summary.accepted += 1;
                if let allow::Pattern::Net { addr, prefix } = p {
                    if addr.is_ipv4() {
                        v4 += 1u128 << (32 - u32::from(prefix));
                    } else {
                        v6 = v6.saturating_add(1u128 << (128 - u32::from(prefix)).min(127));
                    }
                }
                entries.push((allow::canonical(&p), subdomains));
            }
            Err(_) => {
                summary.rejected += 1;
                *summary.rejects.entry("bad-allow-entry".into()).or_default() += 1;
                store::add_reject(tx, &source.name, "bad-allow-entry", &raw, now)
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    // Each network is at most a /8 (IPv6 /16), but a list of many would still switch blocking off for
    // much of the Internet: past 1/16 of IPv4, or of IPv6's global unicast 2000::/3, it is refused whole.
    if v4 > 1 << 28 || v6 > 1 << 121 {
        return Err(format!(
            "its networks cover more than 1/16 of the IPv4 or global IPv6 address space ({v4} IPv4 addresses): refused whole"
        ));
    }
    allow::replace_source(tx, &source.name, &entries, now).map_err(|e| e.to_string())
}
