//! `../shared/cases/rendering.md`: what the published formats must look like for tricky entries (SPEC §9).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use iocfeed::config::{Config, ListConfig};
use iocfeed::store;
use serde_json::{json, Value};

/// One ThreatFox-shaped report, first seen 2026-07-10 10:00.
pub fn report(id: u64, value: &str, ioc_type: &str, family: &str, confidence: u8) -> Value {
    tf_report(
        id,
        value,
        ioc_type,
        family,
        confidence,
        "2026-07-10 10:00:00",
    )
}

pub fn export(reports: &[Value]) -> Vec<u8> {
    tf_export(reports)
}

fn list(name: &str, types: &[&str], formats: &[&str]) -> ListConfig {
    let toml = format!("name = {name:?}\ntypes = {types:?}\nformats = {formats:?}\n",);
    toml::from_str(&toml).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap()
}

/// The default config plus lists of every domain and every address, in every format.
fn config(data: &Path) -> Config {
    let mut c = default_config("http://127.0.0.1:1", data);
    c.lists
        .push(list("all-domains", &["domain"], &["txt", "rpz", "csv"]));
    c.lists
        .push(list("all-ips", &["ip"], &["txt", "rpz", "csv"]));
    c
}

fn pull_bytes(app: &iocfeed::App, dir: &Path, bytes: &[u8]) -> iocfeed::pull::Summary {
    let f = dir.join("export.json");
    std::fs::write(&f, bytes).unwrap();
    app.pull_source("threatfox-recent", Some(&f)).unwrap()
}

fn current(app: &iocfeed::App, list: &str, fmt: &str) -> String {
    let st = app.store().unwrap();
    let v = store::latest_version(&st.conn, list).unwrap().unwrap();
    String::from_utf8(
        store::artifact(&st.conn, list, v.version, fmt)
            .unwrap()
            .unwrap()
            .body,
    )
    .unwrap()
}

/// Checks the RPZ shape of rendering.md case 3 and returns its owners with their counts.
fn check_zone_shape(zone: &str) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    let (mut soa, mut ns) = (0, 0);
    for line in zone.lines() {
        assert!(
            !line.starts_with("$ORIGIN") && !line.starts_with("$INCLUDE"),
            "{line}"
        );
        if line.starts_with("$TTL") {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let owner = fields[0];
        if owner == "@" {
            match fields.get(2) {
                Some(&"SOA") => soa += 1,
                Some(&"NS") => ns += 1,
                other => panic!("apex record other than SOA/NS: {other:?} in {line}"),
            }
            continue;
        }
        assert!(!owner.ends_with('.'), "absolute owner {owner}");
        assert_eq!(owner, owner.to_lowercase());
        *owners.entry(owner.to_string()).or_insert(0) += 1;
    }
    assert_eq!(soa, 1, "exactly one SOA");
    assert!(ns >= 1, "at least one NS");
    owners
}

#[test]
fn duplicates_in_one_export_render_once() {
    // Case 1: the real snapshot carries the same values under two IOC ids.
    let snap = snapshots().pop().unwrap();
    let raw: Value = serde_json::from_slice(&gunzip(&snap.1)).unwrap();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    for r in raw.as_object().unwrap().values() {
        if r[0]["ioc_type"] == "domain" {
            *count
                .entry(r[0]["ioc_value"].as_str().unwrap().to_lowercase())
                .or_default() += 1;
        }
    }
    let dups: Vec<&String> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(v, _)| v)
        .collect();
    assert!(dups.iter().any(|d| d.as_str() == "marjdl.pro"), "{dups:?}");

    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(config(dir.path()), snap.0);
    pull_bytes(&app, dir.path(), &gunzip(&snap.1));
    for l in [
        "all-domains",
        "all-ips",
        "remus-domains",
        "threatfox-botnet-cc-domains",
    ] {
        let owners = check_zone_shape(&current(&app, l, "rpz"));
        let twice: Vec<_> = owners.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{l}: duplicate owners {twice:?}");
    }
    let zone = current(&app, "all-domains", "rpz");
    for d in dups {
        assert_eq!(
            zone.lines()
                .filter(|l| l.starts_with(&format!("{d} ")))
                .count(),
            1,
            "{d}"
        );
        // (no wildcard at all when a report flags the site as compromised)
        assert!(
            zone.lines()
                .filter(|l| l.starts_with(&format!("*.{d} ")))
                .count()
                <= 1,
            "*.{d}"
        );
    }
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn ip_triggers_have_prefix_lengths_and_zz() {
    // Case 2.
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(config(dir.path()), t0());
    pull_bytes(
        &app,
        dir.path(),
        &export(&[
            report(1, "45.192.105.203:8000", "ip:port", "Remus", 90),
            report(2, "[2a01:4f8:c17:1::1]:443", "ip:port", "Remus", 90),
            report(3, "45.192.105.203:9000", "ip:port", "Remus", 90),
        ]),
    );
    let zone = current(&app, "remus-ips", "rpz");
    let rules: Vec<&str> = zone
        .lines()
        .filter(|l| !l.starts_with('$') && !l.starts_with('@'))
        .collect();
    assert_eq!(
        rules,
        [
            "128.1.zz.1.c17.4f8.2a01.rpz-ip CNAME .",
            "32.203.105.192.45.rpz-ip CNAME ."
        ]
    );
    check_zone_shape(&zone);
    assert_eq!(
        current(&app, "remus-ips", "txt"),
        "2a01:4f8:c17:1::1\n45.192.105.203\n"
    );
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn serial_increases_across_restart_and_restore() {
    // Case 4.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut serials = Vec::new();
    let serial_of = |app: &iocfeed::App| -> i64 {
        let st = app.store().unwrap();
        store::latest_version(&st.conn, "remus-domains")
            .unwrap()
            .unwrap()
            .serial
    };
    let mut t = t0();
    let mut next = |n: u64, backup: Option<&Path>| {
        // A fresh App each time: a restart of the process on the same data directory.
        let (app, _) = app(config(&data), t);
        let reports: Vec<Value> = (0..n)
            .map(|i| {
                report(
                    i,
                    &format!("c2-{i}.remus.example.net"),
                    "domain",
                    "Remus",
                    90,
                )
            })
            .collect();
        pull_bytes(&app, dir.path(), &export(&reports));
        if let Some(b) = backup {
            std::fs::copy(data.join("iocfeed.sqlite"), b).unwrap();
        }
        t += chrono::Duration::minutes(1);
        serial_of(&app)
    };
    let backup = dir.path().join("backup.sqlite");
    serials.push(next(1, None));
    serials.push(next(2, Some(&backup)));
    serials.push(next(3, None));
    serials.push(next(4, None));
    // Restore the backup taken at the second version, then publish again.
    std::fs::copy(&backup, data.join("iocfeed.sqlite")).unwrap();
    let _ = std::fs::remove_file(data.join("iocfeed.sqlite-wal"));
    let _ = std::fs::remove_file(data.join("iocfeed.sqlite-shm"));
    serials.push(next(5, None));
    for w in serials.windows(2) {
        // RFC 1982: s2 is greater than s1 when 0 < (s2 - s1) mod 2^32 < 2^31.
        let d = (w[1] as u32).wrapping_sub(w[0] as u32);
        assert!(d > 0 && d < (1 << 31), "serials {serials:?}");
    }
}

/// Splits an RFC 4180 line (quoted cells with `""`).
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cells.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

#[test]
fn csv_cells_never_start_a_formula() {
    // Case 5.
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(config(dir.path()), t0());
    let mut r = report(1, "formula.example.org", "domain", "Remus", 90);
    r["reference"] = json!("=HYPERLINK(\"http://x.example\",\"click\")");
    r["tags"] = json!("+cmd,-sum,@x,\tTab");
    let mut r2 = report(2, "other.example.org", "domain", "Remus", 90);
    r2["malware_printable"] = json!("@Remus");
    r2["malware"] = json!("win.remus");
    pull_bytes(&app, dir.path(), &export(&[r, r2]));
    let csv = current(&app, "remus-domains", "csv");
    assert!(csv.starts_with(
        "Indicator,Type,Family,ThreatType,Confidence,Score,FirstSeen,LastSeen,Reference,Tags\r\n"
    ));
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3);
    for line in &lines {
        let cells = csv_cells(line);
        assert_eq!(cells.len(), 10, "{line}");
        for c in cells {
            assert!(
                !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "dangerous cell {c:?} in {line}"
            );
        }
    }
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn compromised_sites_get_no_wildcard() {
    // Case 6.
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(config(dir.path()), t0());
    let mut hijacked = report(1, "www.victim-bakery.example", "domain", "Remus", 90);
    hijacked["is_compromised"] = json!(true);
    let c2 = report(2, "c2.remus-evil.example", "domain", "Remus", 90);
    pull_bytes(&app, dir.path(), &export(&[hijacked, c2]));
    let zone = current(&app, "remus-domains", "rpz");
    assert!(zone.contains("\nwww.victim-bakery.example CNAME .\n"));
    assert!(!zone.contains("*.www.victim-bakery.example"));
    assert!(zone.contains("\nc2.remus-evil.example CNAME .\n*.c2.remus-evil.example CNAME .\n"));
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn withdrawn_from_a_full_dump_leaves_every_list_but_not_from_the_recent_export() {
    // Case 7 (and issue 3 acceptance 5, second half).
    let dir = tempfile::tempdir().unwrap();
    let (app, clock) = app(config(dir.path()), t0());
    let a = report(1, "kept.remus-c2.example", "domain", "Remus", 90);
    let b = report(2, "deleted.remus-c2.example", "domain", "Remus", 90);
    let c = report(3, "recent-only.remus-c2.example", "domain", "Remus", 90);
    let full = dir.path().join("full.json");
    std::fs::write(&full, export(&[a.clone(), b.clone()])).unwrap();
    app.pull_source("threatfox-full", Some(&full)).unwrap();
    pull_bytes(
        &app,
        dir.path(),
        &export(&[a.clone(), b.clone(), c.clone()]),
    );
    let all = "deleted.remus-c2.example\nkept.remus-c2.example\nrecent-only.remus-c2.example\n";
    assert_eq!(current(&app, "remus-domains", "txt"), all);

    // The recent export no longer shows c: absence there means nothing.
    clock.advance(chrono::Duration::hours(6));
    pull_bytes(&app, dir.path(), &export(std::slice::from_ref(&a)));
    assert_eq!(current(&app, "remus-domains", "txt"), all);

    // The next full dump lacks b (ThreatFox deleted it): b leaves every list. c, first reported before the
    // dump was made and absent from it, was deleted upstream too and leaves as well.
    clock.advance(chrono::Duration::hours(6));
    let mut late = report(4, "after-dump.remus-c2.example", "domain", "Remus", 90);
    late["first_seen_utc"] = json!("2026-07-11 10:00:00");
    pull_bytes(&app, dir.path(), &export(&[late]));
    let mut a2 = a.clone();
    a2["first_seen_utc"] = json!("2026-07-10 10:00:00");
    std::fs::write(
        &full,
        export(&[
            a2,
            report(5, "fresh.remus-c2.example", "domain", "Remus", 90),
        ]),
    )
    .unwrap();
    let s = app.pull_source("threatfox-full", Some(&full)).unwrap();
    assert_eq!(s.withdrawn, 3, "b as reported by both sources, and c");
    for l in [
        "remus-domains",
        "all-domains",
        "threatfox-botnet-cc-domains",
    ] {
        let txt = current(&app, l, "txt");
        assert!(!txt.contains("deleted.remus-c2.example"), "{l}: {txt}");
        assert!(!txt.contains("recent-only.remus-c2.example"), "{l}: {txt}");
        assert!(txt.contains("kept.remus-c2.example"), "{l}: {txt}");
        // Reported after the dump was made: the dump could not have held it, so it stays.
        assert!(txt.contains("after-dump.remus-c2.example"), "{l}: {txt}");
    }
    let st = app.store().unwrap();
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "deleted.remus-c2.example", app.now())
        .unwrap();
    assert_eq!(v["status"], "withdrawn");
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn the_family_report_keeps_feed_text_inert() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = app(config(dir.path()), t0());
    let mut r = report(1, "c2.remus-md.example", "domain", "Remus", 90);
    r["threat_type"] = json!("botnet_cc](javascript:alert(1)) [click me](https://phish.example/login) ![x](https://tracker.example/p.png) | col");
    pull_bytes(&app, dir.path(), &export(&[r]));
    let st = app.store().unwrap();
    let fam = app.config.family("Remus").unwrap();
    let md = iocfeed::publish::report::render(
        fam,
        &iocfeed::publish::report::entries(&st.conn, &app.config, fam, app.now()).unwrap(),
        app.now(),
    );
    let row = md
        .lines()
        .find(|l| l.contains("c2.remus-md.example"))
        .unwrap();
    // The whole feed text sits in one code span: no link or image syntax outside it, pipes escaped.
    assert!(row.contains("| `botnet_cc](javascript:alert(1)) [click me](https://phish.example/login) ![x](https://tracker.example/p.png) \\| col` |"), "{row}");
    assert_eq!(row.matches(" | ").count(), 4, "five cells: {row}");
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}
