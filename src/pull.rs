//! One pull of one source: fetch → read → normalise → store → publish, committed in one transaction or not
//! at all. A failed pull changes no data, no version and no validator; it is recorded against the source.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{Config, SourceConfig};
use crate::normalise;
use crate::publish::{self, Outcome};
use crate::sources::fetch::{self, Fetched, Validators};
use crate::sources::threatfox;
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
}

/// A failed pull: always one line naming the source and where it read from.
#[derive(Debug, thiserror::Error)]
#[error("pull {source_name} from {url} failed: {reason}")]
pub struct PullError {
    pub source_name: String,
    pub url: String,
    pub reason: String,
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
    let fail = |reason: String| PullError {
        source_name: source.name.clone(),
        url: url.clone(),
        reason: fetch::one_line(&reason),
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
) -> Result<Summary, String> {
    let previous = store::source_state(&store.conn, &source.name).map_err(|e| e.to_string())?;
    let tmp = store
        .path
        .parent()
        .map(|p| p.join("tmp"))
        .unwrap_or_else(|| "tmp".into());
    let fetched = match input {
        Input::Fetch => {
            fetch::fetch(source, url, &previous.validators, &tmp).map_err(|e| e.to_string())?
        }
        Input::File(p) => Fetched::Body {
            path: p.to_path_buf(),
            validators: Validators::default(),
            _temp: None,
        },
    };
    let (path, validators) = match &fetched {
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
            path, validators, ..
        } => (path.clone(), validators.clone()),
    };
    let mut summary = Summary {
        source: source.name.clone(),
        ..Default::default()
    };
    let tx = store.write().map_err(|e| e.to_string())?;
    let mut db_error: Option<String> = None;
    let parsed = threatfox::read_file(&path, &mut |row| {
        summary.rows += 1;
        if summary.rows % PROGRESS_EVERY == 0 {
            tracing::info!(source = %source.name, rows = summary.rows, "pull in progress");
        }
        let outcome = match row {
            Ok(report) => match normalise::normalise(&report.ioc_type, &report.value) {
                Ok(ind) => {
                    store::upsert_report(&tx, &source.name, &ind, &report, now).map(|_| None)
                }
                Err(reason) => {
                    store::add_reject(&tx, &source.name, reason.as_str(), &report.value, now)
                        .map(|_| Some(reason.as_str()))
                }
            },
            Err(bad) => store::add_reject(&tx, &source.name, bad.reason, &bad.raw, now)
                .map(|_| Some(bad.reason)),
        };
        match outcome {
            Ok(None) => summary.accepted += 1,
            Ok(Some(reason)) => {
                summary.rejected += 1;
                *summary.rejects.entry(reason.to_string()).or_default() += 1;
            }
            Err(e) => {
                db_error = Some(e.to_string());
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    if let Some(e) = db_error {
        return Err(e);
    }
    parsed.map_err(|e| e.to_string())?;
    summary.lists = publish::publish_all(&tx, cfg, now).map_err(|e| e.to_string())?;
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
