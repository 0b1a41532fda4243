//! Scores through real pulls with a set clock, one term at a time, and how `min_score` and `max_entries`
//! change list membership; and the KQL split for a large list.

mod common;

use std::path::Path;

use chrono::{TimeZone, Utc};
use common::*;
use iocfeed::config::ListConfig;
use iocfeed::store;
use serde_json::{json, Value};

fn report(id: u64, value: &str, confidence: u8, first_seen: &str, compromised: bool) -> Value {
    let mut r = tf_report(id, value, "domain", "Remus", confidence, first_seen);
    r["is_compromised"] = json!(compromised);
    r
}

fn export(reports: &[Value]) -> Vec<u8> {
    tf_export(reports)
}

fn pull(app: &iocfeed::App, dir: &Path, source: &str, reports: &[Value]) {
    let f = dir.join("x.json");
    std::fs::write(&f, export(reports)).unwrap();
    app.pull_source(source, Some(&f)).unwrap();
}

fn lookup(app: &iocfeed::App, v: &str) -> Value {
    let st = app.store().unwrap();
    iocfeed::lookup::lookup(&st.conn, &app.config, v, app.now()).unwrap()
}

#[test]
fn each_score_term_with_a_set_clock() {
    let dir = tempfile::tempdir().unwrap();
    let t = Utc.with_ymd_and_hms(2026, 7, 10, 10, 0, 0).unwrap();
    let (app, clock) = app(default_config("http://127.0.0.1:1", dir.path()), t);
    pull(
        &app,
        dir.path(),
        "threatfox-recent",
        &[
            report(
                1,
                "plain.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                false,
            ),
            report(
                2,
                "hijacked.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                true,
            ),
            report(
                3,
                "twice.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                false,
            ),
            report(
                4,
                "twice.remus-score.example",
                60,
                "2026-07-10 10:00:00",
                false,
            ),
        ],
    );
    // Same time as activity: score = confidence.
    let v = lookup(&app, "plain.remus-score.example");
    assert_eq!(v["score"], 80);
    assert_eq!(v["score_terms"]["decay"], 1.0);
    // Compromised factor 0.5.
    let v = lookup(&app, "hijacked.remus-score.example");
    assert_eq!(v["score_terms"]["compromised"], 0.5);
    assert_eq!(v["score"], 40);
    // Two independent reports: corroboration 1.1, confidence the highest (80): 88.
    let v = lookup(&app, "twice.remus-score.example");
    assert_eq!(v["score_terms"]["reports"], 2);
    assert_eq!(v["score_terms"]["corroboration"], 1.1);
    assert_eq!(v["score"], 88);
    // The same reports seen again through the full dump are not corroboration.
    pull(
        &app,
        dir.path(),
        "threatfox-full",
        &[
            report(
                1,
                "plain.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                false,
            ),
            report(
                2,
                "hijacked.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                true,
            ),
            report(
                3,
                "twice.remus-score.example",
                80,
                "2026-07-10 10:00:00",
                false,
            ),
            report(
                4,
                "twice.remus-score.example",
                60,
                "2026-07-10 10:00:00",
                false,
            ),
        ],
    );
    assert_eq!(
        lookup(&app, "twice.remus-score.example")["score_terms"]["reports"],
        2
    );
    let v = lookup(&app, "plain.remus-score.example");
    assert_eq!(v["score_terms"]["reports"], 1, "{v:#}");

    // Decay: 30 days later (one half-life) 80 → 40; 45 days: 80 × 2^-1.5 = 28.28 → 28.
    clock.set(t + chrono::Duration::days(30));
    let v = lookup(&app, "plain.remus-score.example");
    assert_eq!(v["score_terms"]["decay"], 0.5);
    assert_eq!(v["score"], 40);
    clock.set(t + chrono::Duration::days(45));
    assert_eq!(lookup(&app, "plain.remus-score.example")["score"], 28);
    // Decay, corroboration and the compromised factor multiply: 80 × 0.5^1.5 × 0.5 = 14.14 → 14.
    assert_eq!(lookup(&app, "hijacked.remus-score.example")["score"], 14);
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

fn list(toml: &str) -> ListConfig {
    toml::from_str(toml).unwrap()
}

#[test]
fn min_score_and_max_entries_change_membership() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.lists.push(list(
        "name = \"strong\"\ntypes = [\"domain\"]\nmin_score = 60\nformats = [\"txt\", \"csv\"]\n",
    ));
    cfg.lists.push(list(
        "name = \"top2\"\ntypes = [\"domain\"]\nmax_entries = 2\nformats = [\"txt\"]\n",
    ));
    let t = Utc.with_ymd_and_hms(2026, 7, 10, 10, 0, 0).unwrap();
    let (app, clock) = app(cfg, t);
    pull(
        &app,
        dir.path(),
        "threatfox-recent",
        &[
            report(
                1,
                "a.remus-score.example",
                100,
                "2026-07-10 10:00:00",
                false,
            ), // 100
            report(2, "b.remus-score.example", 50, "2026-07-10 10:00:00", false), // 50
            report(3, "c.remus-score.example", 90, "2026-07-10 10:00:00", true),  // 45
            report(4, "d.remus-score.example", 70, "2026-07-10 10:00:00", false), // 70
        ],
    );
    let txt = |name: &str| {
        let st = app.store().unwrap();
        let v = store::latest_version(&st.conn, name).unwrap().unwrap();
        String::from_utf8(
            store::artifact(&st.conn, name, v.version, "txt")
                .unwrap()
                .unwrap()
                .body,
        )
        .unwrap()
    };
    assert_eq!(
        txt("strong"),
        "a.remus-score.example\nd.remus-score.example\n"
    );
    // The two highest scores, listed in value order.
    assert_eq!(
        txt("top2"),
        "a.remus-score.example\nd.remus-score.example\n"
    );
    assert!(txt("remus-domains").lines().count() == 4);
    // Ten days on, d decays to 70 × 2^(-1/3) = 55.6 → 56, under 60: it leaves `strong`; a stays (79).
    clock.set(t + chrono::Duration::days(10));
    pull(
        &app,
        dir.path(),
        "threatfox-recent",
        &[report(
            5,
            "e.remus-score.example",
            40,
            "2026-07-20 10:00:00",
            false,
        )],
    );
    assert_eq!(txt("strong"), "a.remus-score.example\n");
    // top2 now: a 79, d 56, e 40, b 40, c 36: a and d.
    assert_eq!(
        txt("top2"),
        "a.remus-score.example\nd.remus-score.example\n"
    );
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn kql_splits_25000_domains_into_three_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.lists.push(list(
        "name = \"big\"\ntypes = [\"domain\"]\nformats = [\"kql\"]\n",
    ));
    let (app, _) = app(cfg, Utc.with_ymd_and_hms(2026, 7, 10, 10, 0, 0).unwrap());
    let reports: Vec<Value> = (0..25_000)
        .map(|i| {
            report(
                i,
                &format!("c2-{i}.kql-split.example"),
                90,
                "2026-07-10 09:00:00",
                false,
            )
        })
        .collect();
    pull(&app, dir.path(), "threatfox-recent", &reports);
    let st = app.store().unwrap();
    let v = store::latest_version(&st.conn, "big").unwrap().unwrap();
    assert_eq!(v.entries, 25_000);
    let kql = String::from_utf8(
        store::artifact(&st.conn, "big", v.version, "kql")
            .unwrap()
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(
        kql.matches("has_any (").count(),
        3,
        "{}",
        &kql[kql.len() - 400..]
    );
    let mut total = 0;
    for line in kql.lines().filter(|l| l.starts_with("let ")) {
        let inner = line
            .split_once("dynamic([")
            .unwrap()
            .1
            .strip_suffix("]);")
            .unwrap();
        let values: Vec<&str> = inner.split(", ").map(|v| v.trim_matches('"')).collect();
        assert!(values.len() <= 10_000);
        for v in &values {
            assert!(
                !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"._-".contains(&b)),
                "{v}"
            );
        }
        total += values.len();
    }
    assert_eq!(total, 25_000);
    assert!(kql.contains("DnsEvents\n| where Name has_any (malicious_domains_1) or Name has_any (malicious_domains_2) or Name has_any (malicious_domains_3)\n"));
}

/// Entries ranked out by `max_entries` are still eligible: the cut moving (new higher scores, decay) is not
/// a feed removing them, so the safety brake lets it through.
#[test]
fn a_max_entries_cut_that_moves_is_not_held_by_the_brake() {
    let dir = tempfile::tempdir().unwrap();
    let t = Utc.with_ymd_and_hms(2026, 7, 10, 10, 0, 0).unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.lists.push(list(
        "name = \"top100\"\ntypes = [\"domain\"]\nmax_entries = 100\nformats = [\"txt\"]\n",
    ));
    let (app, clock) = app(cfg, t);
    let weak: Vec<Value> = (0..300)
        .map(|i| {
            report(
                i,
                &format!("weak-{i:03}.remus-cut.example"),
                50,
                "2026-07-10 09:00:00",
                false,
            )
        })
        .collect();
    pull(&app, dir.path(), "threatfox-recent", &weak);
    let st = app.store().unwrap();
    let v1 = store::latest_version(&st.conn, "top100").unwrap().unwrap();
    assert_eq!(v1.entries, 100);
    // 100 stronger reports take every place: 100% of the list changes, none of it removed by a feed.
    clock.set(t + chrono::Duration::minutes(15));
    let strong: Vec<Value> = (0..100)
        .map(|i| {
            report(
                1000 + i,
                &format!("strong-{i:03}.remus-cut.example"),
                100,
                "2026-07-10 10:00:00",
                false,
            )
        })
        .collect();
    pull(&app, dir.path(), "threatfox-recent", &strong);
    let v2 = store::latest_version(&st.conn, "top100").unwrap().unwrap();
    assert_eq!(v2.version, v1.version + 1);
    assert!(v2.members.lines().all(|m| m.starts_with("strong-")));
    assert!(store::holds(&st.conn).unwrap().is_empty());
}
