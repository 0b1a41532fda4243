//! Prometheus metrics (SPEC §12): counters kept in memory by this process, and gauges read from the
//! database at scrape time, rendered in the text exposition format by `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use rusqlite::Connection;

use crate::config::Config;
use crate::store;

/// Counters of this process.
#[derive(Default)]
pub struct Counters {
    pulls: Mutex<BTreeMap<(String, String), u64>>,
    http: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Counters {
    pub fn pull(&self, source: &str, result: &str) {
        *self
            .pulls
            .lock()
            .unwrap()
            .entry((source.to_string(), result.to_string()))
            .or_default() += 1;
    }
    pub fn http(&self, route: &str, status: u16) {
        *self
            .http
            .lock()
            .unwrap()
            .entry((route.to_string(), status))
            .or_default() += 1;
    }
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Rows of (label, label, count) from a grouping query.
fn grouped(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The whole exposition.
pub fn render(
    counters: &Counters,
    conn: &Connection,
    cfg: &Config,
) -> Result<String, store::StoreError> {
    let mut out = String::new();
    header(
        &mut out,
        "iocfeed_pulls_total",
        "counter",
        "Pulls run by this process, by source and result.",
    );
    for ((s, r), n) in counters.pulls.lock().unwrap().iter() {
        let _ = writeln!(
            out,
            "iocfeed_pulls_total{{source=\"{}\",result=\"{}\"}} {n}",
            label(s),
            label(r)
        );
    }
    header(
        &mut out,
        "iocfeed_source_failures",
        "gauge",
        "Consecutive failed pulls of a source.",
    );
    let mut last_ok = String::new();
    for s in &cfg.sources {
        let st = store::source_state(conn, &s.name)?;
        let _ = writeln!(
            out,
            "iocfeed_source_failures{{source=\"{}\"}} {}",
            label(&s.name),
            st.failures
        );
        if let Some(t) = st.last_success {
            let _ = writeln!(
                last_ok,
                "iocfeed_source_last_success_timestamp_seconds{{source=\"{}\"}} {t}",
                label(&s.name)
            );
        }
    }
    header(
        &mut out,
        "iocfeed_source_last_success_timestamp_seconds",
        "gauge",
        "When a source last pulled successfully.",
    );
    out.push_str(&last_ok);
    header(
        &mut out,
        "iocfeed_iocs",
        "gauge",
        "Indicators stored, by type and status (active, withdrawn).",
    );
    let by_status = grouped(
        conn,
        "SELECT i.type, CASE WHEN EXISTS (SELECT 1 FROM report r WHERE r.ioc_id = i.id AND r.withdrawn_at IS NULL)
                        THEN 'active' ELSE 'withdrawn' END AS status, count(*)
         FROM ioc i GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    for (t, s, n) in by_status {
        let _ = writeln!(
            out,
            "iocfeed_iocs{{type=\"{}\",status=\"{s}\"}} {n}",
            label(&t)
        );
    }
    header(
        &mut out,
        "iocfeed_rejects_total",
        "counter",
        "Values rejected, by source and reason.",
    );
    let rejects = grouped(
        conn,
        "SELECT source, reason, sum(count) FROM reject GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    for (s, reason, n) in rejects {
        let _ = writeln!(
            out,
            "iocfeed_rejects_total{{source=\"{}\",reason=\"{}\"}} {n}",
            label(&s),
            label(&reason)
        );
    }
    let mut versions = String::new();
    header(
        &mut out,
        "iocfeed_list_entries",
        "gauge",
        "Entries in a list's current version.",
    );
    for l in &cfg.lists {
        if let Some(v) = store::latest_version(conn, &l.name)? {
            let _ = writeln!(
                out,
                "iocfeed_list_entries{{list=\"{}\"}} {}",
                label(&l.name),
                v.entries
            );
            let _ = writeln!(
                versions,
                "iocfeed_list_version{{list=\"{}\"}} {}",
                label(&l.name),
                v.version
            );
        }
    }
    header(
        &mut out,
        "iocfeed_list_version",
        "gauge",
        "A list's current version number.",
    );
    out.push_str(&versions);
    header(
        &mut out,
        "iocfeed_holds",
        "gauge",
        "Lists and sources held by the safety brake.",
    );
    for h in store::holds(conn)? {
        let _ = writeln!(out, "iocfeed_holds{{scope=\"{}\"}} 1", label(&h.scope));
    }
    header(
        &mut out,
        "iocfeed_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
    );
    for ((route, status), n) in counters.http.lock().unwrap().iter() {
        let _ = writeln!(
            out,
            "iocfeed_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
            label(route)
        );
    }
    Ok(out)
}
