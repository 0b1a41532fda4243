//! The SQLite store: indicators, their reports, rejects, source state, list versions and rendered artifacts.
//!
//! One database file in the data directory, WAL mode so `serve` reads while a `pull` in another process
//! writes. Migrations in `schema/` are applied in order and recorded in `PRAGMA user_version`. All SQL
//! lives here; callers work with plain structs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::normalise::Indicator;
use crate::sources::fetch::Validators;
use crate::sources::threatfox::Report;

/// The schema migrations, in order. Version N of the database has applied the first N.
const MIGRATIONS: &[&str] = &[
    include_str!("../schema/001_init.sql"),
    include_str!("../schema/002_hygiene.sql"),
];

pub const DB_FILE: &str = "iocfeed.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("data directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("database {path} has schema version {found}, newer than this iocfeed ({known}); upgrade iocfeed")]
    TooNew {
        path: String,
        found: i64,
        known: usize,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A handle on the database file.
pub struct Store {
    pub conn: Connection,
    pub path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Dir {
            path: data_dir.display().to_string(),
            source: e,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        configure(&conn)?;
        migrate(&mut conn, &path)?;
        Ok(Store { conn, path })
    }

    /// A read-only connection for the HTTP server.
    pub fn open_reader(data_dir: &Path) -> Result<Connection> {
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        configure(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Starts the one write transaction of a pull or a publish.
    pub fn write(&mut self) -> Result<Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

fn configure(conn: &Connection) -> Result<()> {
    // A pull in another process may hold the write lock for a while; wait rather than fail.
    conn.busy_timeout(Duration::from_secs(120))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", false)?;
    // The ids a full dump has shown go to a temporary table: on disk, so memory stays flat at any size.
    conn.pragma_update(None, "temp_store", "FILE")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: version,
            known: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------- indicators

/// Merges one report into its IOC (first_seen earliest, last_seen latest, confidence highest) and records
/// the report itself. Returns the IOC's id.
pub fn upsert_report(
    tx: &Connection,
    source: &str,
    ind: &Indicator,
    r: &Report,
    now: i64,
) -> Result<i64> {
    let confidence = r.confidence.unwrap_or(0) as i64;
    let ioc_id: i64 = tx
        .prepare_cached(
            "INSERT INTO ioc (type, value, first_seen, last_seen, confidence, is_compromised)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (type, value) DO UPDATE SET
               first_seen = min(coalesce(first_seen, excluded.first_seen), coalesce(excluded.first_seen, first_seen)),
               last_seen  = max(coalesce(last_seen, excluded.last_seen), coalesce(excluded.last_seen, last_seen)),
               confidence = max(confidence, excluded.confidence),
               is_compromised = max(is_compromised, excluded.is_compromised)
             RETURNING id",
        )?
        .query_row(
            params![
                ind.ioc_type.as_str(),
                ind.value,
                r.first_seen,
                r.last_seen,
                confidence,
                r.is_compromised as i64
            ],
            |row| row.get(0),
        )?;
    // Values without an upstream id (text lists) are their own report id.
    let report_id = r.report_id.as_deref().unwrap_or(&ind.value);
    tx.prepare_cached(
        "INSERT INTO report (source, report_id, ioc_id, family, malware, alias, threat_type, port, first_seen,
                             last_seen, confidence, is_compromised, reference, tags, reporter, pulled_first, pulled_last)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16)
         ON CONFLICT (source, report_id) DO UPDATE SET
           ioc_id = excluded.ioc_id, family = excluded.family, malware = excluded.malware, alias = excluded.alias,
           threat_type = excluded.threat_type, port = excluded.port,
           first_seen = min(coalesce(first_seen, excluded.first_seen), coalesce(excluded.first_seen, first_seen)),
           last_seen  = max(coalesce(last_seen, excluded.last_seen), coalesce(excluded.last_seen, last_seen)),
           confidence = excluded.confidence, is_compromised = excluded.is_compromised,
           reference = excluded.reference, tags = excluded.tags, reporter = excluded.reporter,
           pulled_last = excluded.pulled_last, withdrawn_at = NULL",
    )?
    .execute(params![
        source,
        report_id,
        ioc_id,
        r.malware_printable,
        r.malware,
        r.malware_alias,
        r.threat_type,
        ind.port,
        r.first_seen,
        r.last_seen,
        r.confidence,
        r.is_compromised as i64,
        r.reference,
        r.tags,
        r.reporter,
        now
    ])?;
    Ok(ioc_id)
}

/// Keeps a rejected raw value (escaped, capped) and counts it.
pub fn add_reject(tx: &Connection, source: &str, reason: &str, raw: &str, now: i64) -> Result<()> {
    let mut escaped: String = raw.escape_debug().collect();
    if escaped.len() > 512 {
        let cut = (0..=512)
            .rev()
            .find(|i| escaped.is_char_boundary(*i))
            .unwrap_or(0);
        escaped.truncate(cut);
        escaped.push('…');
    }
    tx.prepare_cached(
        "INSERT INTO reject (source, reason, raw, count, first_at, last_at) VALUES (?1, ?2, ?3, 1, ?4, ?4)
         ON CONFLICT (source, reason, raw) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
    )?
    .execute(params![source, reason, escaped, now])?;
    Ok(())
}

/// One IOC with every report that matters for list selection, as read for publishing.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    pub id: i64,
    pub ioc_type: String,
    pub value: String,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub confidence: u8,
    pub is_compromised: bool,
    pub reports: Vec<Sighting>,
}

/// Streams every IOC of `ioc_type` with confidence ≥ `min_confidence`, in value order, with its reports.
pub fn for_each_candidate(
    conn: &Connection,
    ioc_type: &str,
    min_confidence: u8,
    f: &mut dyn FnMut(Candidate),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        &format!(
            "SELECT i.id, i.value, i.first_seen, i.last_seen, i.confidence, i.is_compromised, {SIGHTING_COLUMNS}
             FROM ioc i JOIN report r ON r.ioc_id = i.id
             WHERE i.type = ?1 AND i.confidence >= ?2 AND r.withdrawn_at IS NULL
             ORDER BY i.value, r.source, r.report_id"
        ),
    )?;
    let mut rows = stmt.query(params![ioc_type, min_confidence])?;
    let mut current: Option<Candidate> = None;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if current.as_ref().is_some_and(|c| c.id != id) {
            f(current.take().expect("checked"));
        }
        let c = current.get_or_insert_with(|| Candidate {
            id,
            ioc_type: ioc_type.to_string(),
            ..Default::default()
        });
        if c.reports.is_empty() {
            c.value = row.get(1)?;
            c.first_seen = row.get(2)?;
            c.last_seen = row.get(3)?;
            c.confidence = row.get::<_, i64>(4)?.clamp(0, 100) as u8;
            c.is_compromised = row.get::<_, i64>(5)? != 0;
        }
        c.reports.push(sighting_at(row, 6)?);
    }
    if let Some(c) = current {
        f(c);
    }
    Ok(())
}

/// The merged record of one IOC, for lookups and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IocRow {
    pub ioc_type: String,
    pub value: String,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub confidence: u8,
    pub is_compromised: bool,
}

pub fn all_iocs(conn: &Connection) -> Result<Vec<IocRow>> {
    let mut stmt = conn.prepare(
        "SELECT type, value, first_seen, last_seen, confidence, is_compromised FROM ioc ORDER BY type, value",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(IocRow {
            ioc_type: r.get(0)?,
            value: r.get(1)?,
            first_seen: r.get(2)?,
            last_seen: r.get(3)?,
            confidence: r.get::<_, i64>(4)? as u8,
            is_compromised: r.get::<_, i64>(5)? != 0,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Rejected values with their counts: (source, reason, raw, count).
pub fn rejects(conn: &Connection) -> Result<Vec<(String, String, String, i64)>> {
    let mut stmt =
        conn.prepare("SELECT source, reason, raw, count FROM reject ORDER BY source, reason, raw")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// -------------------------------------------------------------------------------------------- sources

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SourceState {
    pub source: String,
    #[serde(skip)]
    pub validators: Validators,
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub failures: i64,
    pub rows: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub rejects: BTreeMap<String, i64>,
}

pub fn source_state(conn: &Connection, source: &str) -> Result<SourceState> {
    let row = conn
        .query_row(
            "SELECT etag, last_modified, last_attempt, last_success, last_result, last_error, failures, rows,
                    accepted, rejected, rejects_json
             FROM source_state WHERE source = ?1",
            [source],
            |r| {
                Ok(SourceState {
                    source: source.to_string(),
                    validators: Validators {
                        etag: r.get(0)?,
                        last_modified: r.get(1)?,
                    },
                    last_attempt: r.get(2)?,
                    last_success: r.get(3)?,
                    last_result: r.get(4)?,
                    last_error: r.get(5)?,
                    failures: r.get(6)?,
                    rows: r.get(7)?,
                    accepted: r.get(8)?,
                    rejected: r.get(9)?,
                    rejects: serde_json::from_str(&r.get::<_, String>(10)?).unwrap_or_default(),
                })
            },
        )
        .optional()?;
    Ok(row.unwrap_or_else(|| SourceState {
        source: source.to_string(),
        ..Default::default()
    }))
}

/// Records a successful pull (inside the pull's transaction, so it commits with the data).
pub fn record_success(tx: &Connection, s: &SourceState) -> Result<()> {
    tx.execute(
        "INSERT INTO source_state (source, etag, last_modified, last_attempt, last_success, last_result,
                                   last_error, failures, rows, accepted, rejected, rejects_json)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, NULL, 0, ?6, ?7, ?8, ?9)
         ON CONFLICT (source) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
           last_attempt = excluded.last_attempt, last_success = excluded.last_success,
           last_result = excluded.last_result, last_error = NULL, failures = 0, rows = excluded.rows,
           accepted = excluded.accepted, rejected = excluded.rejected, rejects_json = excluded.rejects_json",
        params![
            s.source,
            s.validators.etag,
            s.validators.last_modified,
            s.last_attempt,
            s.last_result,
            s.rows,
            s.accepted,
            s.rejected,
            serde_json::to_string(&s.rejects).unwrap_or_else(|_| "{}".into())
        ],
    )?;
    Ok(())
}

/// Records a 304 from upstream: the last data stands, the source is fresh.
pub fn record_not_modified(conn: &Connection, source: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO source_state (source, last_attempt, last_success, last_result) VALUES (?1, ?2, ?2, 'not-modified')
         ON CONFLICT (source) DO UPDATE SET last_attempt = ?2, last_success = ?2, last_result = 'not-modified',
           last_error = NULL, failures = 0",
        params![source, now],
    )?;
    Ok(())
}

/// Records a pull held by the safety brake: the counts and validators of the last good pull stay.
pub fn record_held(conn: &Connection, source: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO source_state (source, last_attempt, last_result) VALUES (?1, ?2, 'held')
         ON CONFLICT (source) DO UPDATE SET last_attempt = ?2, last_result = 'held', last_error = NULL",
        params![source, now],
    )?;
    Ok(())
}

/// Forgets how many indicators a source's last good pull held, so the next pull is not compared with it
/// (the operator released the source's hold).
pub fn reset_baseline(conn: &Connection, source: &str) -> Result<()> {
    conn.execute(
        "UPDATE source_state SET accepted = 0, last_result = 'released' WHERE source = ?1",
        [source],
    )?;
    Ok(())
}

/// Records a failed pull; the data and validators of the last good pull are untouched.
pub fn record_failure(conn: &Connection, source: &str, error: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO source_state (source, last_attempt, last_result, last_error, failures) VALUES (?1, ?2, 'error', ?3, 1)
         ON CONFLICT (source) DO UPDATE SET last_attempt = ?2, last_result = 'error', last_error = ?3,
           failures = failures + 1",
        params![source, now, error],
    )?;
    Ok(())
}

// ------------------------------------------------------------------------------------------ versions

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VersionRow {
    pub list: String,
    pub version: i64,
    pub serial: i64,
    pub published_at: i64,
    pub entries: i64,
    #[serde(skip)]
    pub members: String,
}

fn version_from_row(r: &rusqlite::Row) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        list: r.get(0)?,
        version: r.get(1)?,
        serial: r.get(2)?,
        published_at: r.get(3)?,
        entries: r.get(4)?,
        members: r.get(5)?,
    })
}

const VERSION_COLUMNS: &str = "list, version, serial, published_at, entries, members";

pub fn latest_version(conn: &Connection, list: &str) -> Result<Option<VersionRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM list_version WHERE list = ?1 ORDER BY version DESC LIMIT 1"
        ))?
        .query_row([list], version_from_row)
        .optional()?)
}

pub fn version(conn: &Connection, list: &str, version: i64) -> Result<Option<VersionRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM list_version WHERE list = ?1 AND version = ?2"
        ))?
        .query_row(params![list, version], version_from_row)
        .optional()?)
}

/// Retained versions of a list, oldest first (without their member sets).
pub fn versions(conn: &Connection, list: &str) -> Result<Vec<VersionRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT list, version, serial, published_at, entries, '' FROM list_version WHERE list = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([list], version_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last SOA serial ever issued for a list (kept when old versions are pruned).
pub fn last_serial(conn: &Connection, list: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT last_serial FROM list_state WHERE list = ?1")?
        .query_row([list], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

pub fn insert_version(tx: &Connection, v: &VersionRow) -> Result<()> {
    tx.execute(
        &format!("INSERT INTO list_version ({VERSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            v.list,
            v.version,
            v.serial,
            v.published_at,
            v.entries,
            v.members
        ],
    )?;
    tx.execute(
        "INSERT INTO list_state (list, last_serial) VALUES (?1, ?2)
         ON CONFLICT (list) DO UPDATE SET last_serial = max(last_serial, excluded.last_serial)",
        params![v.list, v.serial],
    )?;
    Ok(())
}

/// Drops all but the newest `retain` versions of a list, with their artifacts.
pub fn prune(tx: &Connection, list: &str, retain: u32) -> Result<usize> {
    let cutoff: Option<i64> = tx
        .query_row(
            "SELECT version FROM list_version WHERE list = ?1 ORDER BY version DESC LIMIT 1 OFFSET ?2",
            params![list, retain],
            |r| r.get(0),
        )
        .optional()?;
    let Some(cutoff) = cutoff else { return Ok(0) };
    tx.execute(
        "DELETE FROM artifact WHERE list = ?1 AND version <= ?2",
        params![list, cutoff],
    )?;
    Ok(tx.execute(
        "DELETE FROM list_version WHERE list = ?1 AND version <= ?2",
        params![list, cutoff],
    )?)
}

/// A rendered artifact of one version in one format.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub body: Vec<u8>,
    pub gzip: Vec<u8>,
    pub etag: String,
}

pub fn insert_artifact(
    tx: &Connection,
    list: &str,
    version: i64,
    format: &str,
    a: &Artifact,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO artifact (list, version, format, body, gzip, etag) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![list, version, format, a.body, a.gzip, a.etag],
    )?;
    Ok(())
}

pub fn artifact(
    conn: &Connection,
    list: &str,
    version: i64,
    format: &str,
) -> Result<Option<Artifact>> {
    Ok(conn
        .prepare_cached("SELECT body, gzip, etag FROM artifact WHERE list = ?1 AND version = ?2 AND format = ?3")?
        .query_row(params![list, version, format], |r| {
            Ok(Artifact {
                body: r.get(0)?,
                gzip: r.get(1)?,
                etag: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn has_artifact(conn: &Connection, list: &str, version: i64, format: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM artifact WHERE list = ?1 AND version = ?2 AND format = ?3")?
        .query_row(params![list, version, format], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Size in bytes of each format of a version.
pub fn artifact_sizes(
    conn: &Connection,
    list: &str,
    version: i64,
) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT format, length(body) FROM artifact WHERE list = ?1 AND version = ?2",
    )?;
    let rows = stmt.query_map(params![list, version], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ------------------------------------------------------------------------------------------ withdrawal

/// Withdraws every report of `upstream`'s sources (`sources`) that a full dump could have held but did not:
/// first reported within the dump's span (`since` ..= `dump_time`), and with a report id absent from `seen`
/// (a temp table of ids). Returns how many reports were withdrawn.
pub fn withdraw_missing(
    tx: &Connection,
    sources: &[String],
    since: i64,
    dump_time: i64,
    now: i64,
) -> Result<usize> {
    let mut n = 0;
    for s in sources {
        n += tx.execute(
            "UPDATE report SET withdrawn_at = ?4
             WHERE source = ?1 AND withdrawn_at IS NULL AND first_seen BETWEEN ?2 AND ?3
               AND report_id NOT IN (SELECT report_id FROM temp.seen_report)",
            params![s, since, dump_time, now],
        )?;
    }
    Ok(n)
}

/// How many live reports of `sources` a dump spanning `since` ..= `dump_time` could have held (see
/// [`withdraw_missing`]).
pub fn count_withdrawable(
    tx: &Connection,
    sources: &[String],
    since: i64,
    dump_time: i64,
) -> Result<usize> {
    let mut n = 0;
    for s in sources {
        n += tx.query_row(
            "SELECT count(*) FROM report
             WHERE source = ?1 AND withdrawn_at IS NULL AND first_seen BETWEEN ?2 AND ?3",
            params![s, since, dump_time],
            |r| r.get::<_, i64>(0),
        )? as usize;
    }
    Ok(n)
}

/// Withdraws every report of `source` whose id the pull did not see (a complete list, no timestamps).
pub fn withdraw_unseen(tx: &Connection, source: &str, now: i64) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE report SET withdrawn_at = ?2
         WHERE source = ?1 AND withdrawn_at IS NULL AND report_id NOT IN (SELECT report_id FROM temp.seen_report)",
        params![source, now],
    )?)
}

/// Starts the set of report ids seen by a full pull.
pub fn begin_seen(tx: &Connection) -> Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS seen_report (report_id TEXT PRIMARY KEY) WITHOUT ROWID;
         DELETE FROM temp.seen_report;",
    )?;
    Ok(())
}

pub fn mark_seen(tx: &Connection, report_id: &str) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO temp.seen_report (report_id) VALUES (?1)")?
        .execute([report_id])?;
    Ok(())
}

// ------------------------------------------------------------------------------------------------ holds

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Hold {
    pub scope: String,
    pub reason: String,
    pub since: i64,
}

/// Puts a list or source (`list:NAME`, `source:NAME`) on hold; an existing hold keeps its start time.
pub fn set_hold(tx: &Connection, scope: &str, reason: &str, now: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO hold (scope, reason, since) VALUES (?1, ?2, ?3)
         ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason",
        params![scope, reason, now],
    )?;
    Ok(())
}

pub fn clear_hold(tx: &Connection, scope: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM hold WHERE scope = ?1", [scope])? > 0)
}

pub fn holds(conn: &Connection) -> Result<Vec<Hold>> {
    let mut stmt = conn.prepare_cached("SELECT scope, reason, since FROM hold ORDER BY scope")?;
    let rows = stmt.query_map([], |r| {
        Ok(Hold {
            scope: r.get(0)?,
            reason: r.get(1)?,
            since: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ------------------------------------------------------------------------------------------------ lookup

/// One report of an IOC, everything kept about it (for `iocfeed ioc` and `GET /iocs`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sighting {
    pub source: String,
    pub report_id: String,
    pub family: Option<String>,
    pub malware: Option<String>,
    pub alias: Option<String>,
    pub threat_type: Option<String>,
    pub port: Option<i64>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub confidence: Option<i64>,
    pub is_compromised: bool,
    pub reference: Option<String>,
    pub tags: Option<String>,
    pub reporter: Option<String>,
    pub pulled_first: i64,
    pub pulled_last: i64,
    pub withdrawn_at: Option<i64>,
}

/// The merged IOC for (type, value), with its id.
pub fn ioc(conn: &Connection, ioc_type: &str, value: &str) -> Result<Option<(i64, IocRow)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, type, value, first_seen, last_seen, confidence, is_compromised FROM ioc WHERE type = ?1 AND value = ?2",
        )?
        .query_row(params![ioc_type, value], |r| {
            Ok((
                r.get(0)?,
                IocRow {
                    ioc_type: r.get(1)?,
                    value: r.get(2)?,
                    first_seen: r.get(3)?,
                    last_seen: r.get(4)?,
                    confidence: r.get::<_, i64>(5)? as u8,
                    is_compromised: r.get::<_, i64>(6)? != 0,
                },
            ))
        })
        .optional()?)
}

/// The report columns a [`Sighting`] is read from (table alias `r`), in [`sighting_at`]'s order.
const SIGHTING_COLUMNS: &str = "r.source, r.report_id, r.family, r.malware, r.alias, r.threat_type, r.port,
    r.first_seen, r.last_seen, r.confidence, r.is_compromised, r.reference, r.tags, r.reporter, r.pulled_first,
    r.pulled_last, r.withdrawn_at";

/// Reads a [`Sighting`] from the [`SIGHTING_COLUMNS`] of a row, starting at column `at`.
fn sighting_at(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Sighting> {
    Ok(Sighting {
        source: r.get(at)?,
        report_id: r.get(at + 1)?,
        family: r.get(at + 2)?,
        malware: r.get(at + 3)?,
        alias: r.get(at + 4)?,
        threat_type: r.get(at + 5)?,
        port: r.get(at + 6)?,
        first_seen: r.get(at + 7)?,
        last_seen: r.get(at + 8)?,
        confidence: r.get(at + 9)?,
        is_compromised: r.get::<_, i64>(at + 10)? != 0,
        reference: r.get(at + 11)?,
        tags: r.get(at + 12)?,
        reporter: r.get(at + 13)?,
        pulled_first: r.get(at + 14)?,
        pulled_last: r.get(at + 15)?,
        withdrawn_at: r.get(at + 16)?,
    })
}

pub fn sightings(conn: &Connection, ioc_id: i64) -> Result<Vec<Sighting>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SIGHTING_COLUMNS} FROM report r WHERE r.ioc_id = ?1 ORDER BY r.source, r.report_id"
    ))?;
    let rows = stmt.query_map([ioc_id], |r| sighting_at(r, 0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Rejections of a raw value (escaped as stored): (source, reason, count).
pub fn rejections_of(conn: &Connection, raw: &str) -> Result<Vec<(String, String, i64)>> {
    let escaped: String = raw.escape_debug().collect();
    let mut stmt = conn.prepare_cached(
        "SELECT source, reason, count FROM reject WHERE raw = ?1 ORDER BY source, reason",
    )?;
    let rows = stmt.query_map([escaped], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A few rejected raw values of a source per reason, for `iocfeed sources` and `GET /sources`.
pub fn reject_samples(
    conn: &Connection,
    source: &str,
    per_reason: usize,
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT reason, raw FROM reject WHERE source = ?1 ORDER BY reason, last_at DESC, raw",
    )?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let rows = stmt.query_map([source], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (reason, raw) = row?;
        let v = out.entry(reason).or_default();
        if v.len() < per_reason {
            v.push(raw);
        }
    }
    Ok(out)
}
