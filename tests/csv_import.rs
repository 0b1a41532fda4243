//! ThreatFox CSV exports: the real fixture, a CSV with an extra unknown column, and one missing `ioc_value`.

mod common;

use std::path::Path;

use chrono::TimeZone;
use common::*;
use iocfeed::store;

fn fixture() -> Vec<u8> {
    std::fs::read(shared().join("fixtures/threatfox/csv/recent-20260412T044928.csv")).unwrap()
}

/// Rewrites the CSV column by column: `f` gets each line's fields (header included) and edits them.
fn edit_columns(csv: &[u8], mut f: impl FnMut(&mut Vec<String>)) -> Vec<u8> {
    let text = String::from_utf8(csv.to_vec()).unwrap();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        let (prefix, rest) = match body.strip_prefix("# \"") {
            Some(r) => ("# ", format!("\"{r}")),
            None if body.starts_with('"') => ("", body.to_string()),
            None => {
                out.push_str(line);
                continue;
            }
        };
        let mut fields: Vec<String> = rest
            .trim_matches('"')
            .replace("\", \"", "\",\"")
            .split("\",\"")
            .map(str::to_string)
            .collect();
        f(&mut fields);
        out.push_str(prefix);
        out.push_str(
            &fields
                .iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push_str(ending);
    }
    out.into_bytes()
}

fn import(dir: &Path, file: &Path) -> Result<iocfeed::pull::Summary, String> {
    let t = chrono::Utc.with_ymd_and_hms(2026, 4, 12, 5, 0, 0).unwrap();
    let (app, _) = app(default_config("http://127.0.0.1:1", dir), t);
    app.pull_source("threatfox-recent", Some(file))
        .map_err(|e| e.to_string())
}

#[test]
fn real_csv_export_imports() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recent.csv");
    std::fs::write(&file, fixture()).unwrap();
    let s = import(&dir.path().join("data"), &file).unwrap();
    assert_eq!(s.rows, 862, "the footer says 862 entries");
    assert_eq!(s.accepted + s.rejected, 862);
    let st = store::Store::open(&dir.path().join("data")).unwrap();
    let iocs = store::all_iocs(&st.conn).unwrap();
    // The first data row, as published.
    let first = iocs
        .iter()
        .find(|i| i.value == "call4-back.veq4tralis.in.net")
        .unwrap();
    assert_eq!(first.ioc_type, "domain");
    assert_eq!(
        first.first_seen,
        Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 4, 12, 4, 49, 28)
                .unwrap()
                .timestamp()
        )
    );
    assert_eq!(
        first.last_seen,
        Some(
            chrono::Utc
                .with_ymd_and_hms(2026, 4, 12, 4, 49, 29)
                .unwrap()
                .timestamp()
        )
    );
    assert_eq!(first.confidence, 100);
}

#[test]
fn extra_unknown_column_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, fixture()).unwrap();
    let extra = dir.path().join("extra.csv");
    let mut first = true;
    let edited = edit_columns(&fixture(), |f| {
        let v = if std::mem::take(&mut first) {
            "threat_score_2027"
        } else {
            "42"
        };
        f.insert(3, v.to_string());
    });
    assert!(String::from_utf8_lossy(&edited).contains("\"ioc_value\", \"threat_score_2027\""));
    std::fs::write(&extra, edited).unwrap();
    let a = import(&dir.path().join("a"), &plain).unwrap();
    let b = import(&dir.path().join("b"), &extra).unwrap();
    assert_eq!((a.rows, a.accepted), (b.rows, b.accepted));
    let sa = store::Store::open(&dir.path().join("a")).unwrap();
    let sb = store::Store::open(&dir.path().join("b")).unwrap();
    assert_eq!(
        store::all_iocs(&sa.conn).unwrap(),
        store::all_iocs(&sb.conn).unwrap()
    );
}

#[test]
fn missing_ioc_value_fails_with_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A good import first, so there is something to lose.
    let good = dir.path().join("good.csv");
    std::fs::write(&good, fixture()).unwrap();
    import(&data, &good).unwrap();
    let before = {
        let st = store::Store::open(&data).unwrap();
        (
            store::all_iocs(&st.conn).unwrap(),
            store::versions(&st.conn, "threatfox-botnet-cc-domains").unwrap(),
        )
    };

    let bad = dir.path().join("bad.csv");
    let text = String::from_utf8(fixture()).unwrap();
    let idx = text
        .lines()
        .find(|l| l.starts_with("# \""))
        .unwrap()
        .split(',')
        .position(|c| c.contains("ioc_value"))
        .unwrap();
    std::fs::write(
        &bad,
        edit_columns(&fixture(), |f| {
            f.remove(idx);
        }),
    )
    .unwrap();
    let err = import(&data, &bad).unwrap_err();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("missing required column ioc_value"), "{err}");
    assert!(
        err.contains("threatfox-recent") && err.contains("bad.csv"),
        "{err}"
    );

    let st = store::Store::open(&data).unwrap();
    assert_eq!(store::all_iocs(&st.conn).unwrap(), before.0);
    assert_eq!(
        store::versions(&st.conn, "threatfox-botnet-cc-domains").unwrap(),
        before.1
    );
    let state = store::source_state(&st.conn, "threatfox-recent").unwrap();
    assert_eq!(state.last_result.as_deref(), Some("error"));
    assert!(
        state.last_success.is_some(),
        "the last good pull is still on record"
    );

    // The CLI says it in one line too, with exit code 1.
    let out = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&bad)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("iocfeed: error: pull threatfox-recent from "),
        "{stderr}"
    );
}
