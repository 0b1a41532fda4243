//! Allowlist, ageing and the safety brake (SPEC §7, §8), through real pulls, the CLI and HTTP.

mod common;

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use iocfeed::store;
use serde_json::{json, Value};

fn report(id: u64, value: &str, family: &str, confidence: u8, first_seen: &str) -> Value {
    tf_report(id, value, "domain", family, confidence, first_seen)
}

fn export(reports: &[Value]) -> Vec<u8> {
    tf_export(reports)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn current(app: &iocfeed::App, list: &str) -> (i64, String) {
    let st = app.store().unwrap();
    let v = store::latest_version(&st.conn, list).unwrap().unwrap();
    let body = store::artifact(&st.conn, list, v.version, "txt")
        .unwrap()
        .unwrap()
        .body;
    (v.version, String::from_utf8(body).unwrap())
}

#[test]
fn allowlisting_a_name_removes_its_subdomains_everywhere_and_ioc_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = "2026-07-10T12:00:00Z";
    let f = write(
        dir.path(),
        "x.json",
        &export(&[
            report(
                1,
                "http-inputs-triad.splunkcloud.com",
                "Remus",
                100,
                "2026-07-10 10:00:00",
            ),
            report(
                2,
                "http-inputs-triad.splunkcloud.com",
                "AsyncRAT",
                100,
                "2026-07-10 10:00:00",
            ),
            report(
                3,
                "c2.evil-remus.example",
                "Remus",
                100,
                "2026-07-10 10:00:00",
            ),
            tf_report(
                4,
                "https://http-inputs-triad.splunkcloud.com/services/collector",
                "url",
                "AsyncRAT",
                100,
                "2026-07-10 10:00:00",
            ),
        ]),
    );
    // The default lists, plus every domain and every URL, so the value sits in several lists.
    let config_text = format!(
        "{}\n[[list]]\nname = \"all-domains\"\ntypes = [\"domain\"]\nformats = [\"txt\", \"rpz\"]\n\n[[list]]\nname = \"all-urls\"\ntypes = [\"url\"]\nformats = [\"txt\"]\n",
        iocfeed::config::DEFAULT_CONFIG
    );
    let config = write(dir.path(), "iocfeed.toml", config_text.as_bytes());
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("IOCFEED_CONFIG", &config)
            .env("IOCFEED_DATA_DIR", &data)
            .env("IOCFEED_NOW", now)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["pull", "threatfox-recent", "--file", f.to_str().unwrap()]);
    let mut cfg = iocfeed::config::Config::parse("test", &config_text).unwrap();
    cfg.server.data_dir = data.clone();
    let (app, _) = app(cfg, t0());
    // Remus's own exclude already keeps it off remus-domains; three other lists have it.
    assert!(!current(&app, "remus-domains").1.contains("splunkcloud"));
    let holding = ["threatfox-botnet-cc-domains", "all-domains", "all-urls"];
    let before: Vec<(i64, String)> = holding.iter().map(|l| current(&app, l)).collect();
    for (l, (_, body)) in holding.iter().zip(&before) {
        assert!(
            body.contains("http-inputs-triad.splunkcloud.com"),
            "{l}: {body}"
        );
    }

    let out = run(&[
        "allow",
        "add",
        // Defanged, as pasted from a ticket.
        "splunkcloud[.]com",
        "--reason",
        "Splunk Cloud ingest",
    ]);
    assert!(out.starts_with("allowed splunkcloud.com\n"), "{out}");
    for (l, (v, _)) in holding.iter().zip(&before) {
        let (v_after, body) = current(&app, l);
        assert_eq!(v_after, v + 1, "{l}: one new version");
        assert!(!body.contains("splunkcloud"), "{l}: {body}");
        // What is not allowed stays.
        if *l != "all-urls" {
            assert!(body.contains("c2.evil-remus.example\n"), "{l}: {body}");
        }
    }
    for l in &app.config.lists {
        let st = app.store().unwrap();
        if let Some(v) = store::latest_version(&st.conn, &l.name).unwrap() {
            assert!(!v.members.contains("splunkcloud"), "{}", l.name);
        }
    }
    let ioc: Value =
        serde_json::from_str(&run(&["ioc", "http-inputs-triad.splunkcloud.com"])).unwrap();
    assert_eq!(ioc["status"], "allowlisted");
    assert_eq!(ioc["allowed_by"]["entry"], "splunkcloud.com");
    assert_eq!(ioc["allowed_by"]["origin"], "cli");
    assert_eq!(ioc["allowed_by"]["reason"], "Splunk Cloud ingest");
    assert_eq!(ioc["lists"], json!([]));
    assert!(run(&["allow", "list"]).contains("splunkcloud.com\tcli\tSplunk Cloud ingest"));

    // Removing the entry brings it back.
    run(&["allow", "rm", "splunkcloud.com"]);
    assert!(current(&app, "threatfox-botnet-cc-domains")
        .1
        .contains("http-inputs-triad.splunkcloud.com\n"));
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn allowlist_sources_and_config_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    let top = write(
        dir.path(),
        "top.csv",
        b"1,google.com\n2,example-cdn.net\n3,third.example\n",
    );
    let text: iocfeed::config::SourceConfig = toml::from_str(&format!(
        "name = \"top-sites\"\nkind = \"allowlist\"\nformat = \"top-sites\"\ntop = 2\nschedule = \"0 4 * * *\"\nurl = {:?}\n",
        url::Url::from_file_path(&top).unwrap().to_string()
    ))
    .unwrap();
    cfg.sources.push(text);
    cfg.allowlist.entries.push("45.192.105.0/24".into());
    let (app, _) = app(cfg, t0());
    let f = write(
        dir.path(),
        "x.json",
        &export(&[
            report(1, "google.com", "AsyncRAT", 100, "2026-07-10 10:00:00"),
            report(2, "evil.google.com", "AsyncRAT", 100, "2026-07-10 10:00:00"),
            report(3, "third.example", "AsyncRAT", 100, "2026-07-10 10:00:00"),
        ]),
    );
    app.pull_source("threatfox-recent", Some(&f)).unwrap();
    let s = app.pull_source("top-sites", None).unwrap();
    assert_eq!((s.rows, s.accepted), (2, 2));
    // Top sites are allowed exactly: a subdomain of google.com is not vouched for; rank 3 is past `top`.
    assert_eq!(
        current(&app, "threatfox-botnet-cc-domains").1,
        "evil.google.com\nthird.example\n"
    );
    let st = app.store().unwrap();
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "google.com", app.now()).unwrap();
    assert_eq!(v["allowed_by"]["origin"], "source:top-sites");
}

/// An allowlist source is a complete list: a truncated download of it would publish the very sites it
/// protects. Like a full dump that shrinks below half, it is held, and its entries stay.
#[test]
fn a_truncated_allowlist_source_is_held_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    let sites: Vec<String> = (0..40)
        .map(|i| format!("{},site-{i}.com\n", i + 1))
        .collect();
    let top = write(dir.path(), "top.csv", sites.concat().as_bytes());
    cfg.sources.push(file_source(
        "name = \"top-sites\"\nkind = \"allowlist\"\nformat = \"top-sites\"",
        &top,
    ));
    let (app, clock) = app(cfg, t0());
    assert_eq!(app.pull_source("top-sites", None).unwrap().accepted, 40);
    let mut reports: Vec<Value> = (0..20)
        .map(|i| {
            report(
                i,
                &format!("site-{i}.com"),
                "AsyncRAT",
                100,
                "2026-07-10 10:00:00",
            )
        })
        .collect();
    reports.push(report(
        99,
        "c2-real.xyz",
        "AsyncRAT",
        100,
        "2026-07-10 10:00:00",
    ));
    let f = write(dir.path(), "x.json", &export(&reports));
    app.pull_source("threatfox-recent", Some(&f)).unwrap();
    let before = current(&app, "threatfox-botnet-cc-domains");
    assert_eq!(before.1, "c2-real.xyz\n");

    // The download is cut after three rows.
    std::fs::write(&top, sites[..3].concat()).unwrap();
    clock.advance(chrono::Duration::days(1));
    let s = app.pull_source("top-sites", None).unwrap();
    assert!(
        s.held
            .as_deref()
            .unwrap()
            .starts_with("returned 3 indicators (less than half) after a pull of 40"),
        "{:?}",
        s.held
    );
    assert_eq!(current(&app, "threatfox-botnet-cc-domains"), before);
    let st = app.store().unwrap();
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "site-17.com", app.now()).unwrap();
    assert_eq!(v["allowed_by"]["origin"], "source:top-sites");
}

/// Networks of at most a /8 each, but enough of them to allow most of the Internet: the list is refused
/// whole, the pull fails in one line, and the last good entries stay.
#[test]
fn an_allowlist_source_covering_much_of_the_address_space_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    let list = write(dir.path(), "nets.txt", b"45.192.105.0/24\n");
    cfg.sources
        .push(file_source("name = \"nets\"\nkind = \"allowlist\"", &list));
    let (app, _) = app(cfg, t0());
    app.pull_source("nets", None).unwrap();
    let nets: String = (1..=20).map(|n| format!("{n}.0.0.0/8\n")).collect();
    std::fs::write(&list, nets).unwrap();
    let e = app.pull_source("nets", None).unwrap_err().to_string();
    assert!(
        e.contains("pull nets from file://") && e.contains("more than 1/16 of the IPv4"),
        "{e}"
    );
    let st = app.store().unwrap();
    let allow = iocfeed::allow::Allowlist::load(&st.conn, &[]).unwrap();
    let ip = iocfeed::normalise::IocType::Ip;
    assert_eq!(
        allow.find(ip, "45.192.105.9").map(|e| e.entry.as_str()),
        Some("45.192.105.0/24")
    );
    assert!(allow.find(ip, "5.1.2.3").is_none());
}

#[test]
fn aged_iocs_leave_every_list_in_one_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let (app, clock) = app(default_config("http://127.0.0.1:1", dir.path()), t0());
    // 150 old C2 domains and 2 fresh ones; the old ones age out together (and the brake lets them go).
    let mut reports: Vec<Value> = (0..150)
        .map(|i| {
            report(
                i,
                &format!("old-{i}.remus-c2.example"),
                "Remus",
                100,
                "2026-07-01 00:00:00",
            )
        })
        .collect();
    reports.push(report(
        1000,
        "fresh.remus-c2.example",
        "Remus",
        100,
        "2026-07-10 10:00:00",
    ));
    app.pull_source(
        "threatfox-recent",
        Some(&write(dir.path(), "a.json", &export(&reports))),
    )
    .unwrap();
    let (v1, txt) = current(&app, "remus-domains");
    assert_eq!(txt.lines().count(), 151);
    let (cc1, cc) = current(&app, "threatfox-botnet-cc-domains");
    assert_eq!(cc, txt, "the all-families C2 list holds the same domains");

    // 91 days after the old ones' last activity (max_age_days = 90), but not the fresh one's.
    clock.set(Utc.with_ymd_and_hms(2026, 9, 30, 1, 0, 0).unwrap());
    let fresh = report(
        1001,
        "fresh2.remus-c2.example",
        "Remus",
        100,
        "2026-09-29 10:00:00",
    );
    app.pull_source(
        "threatfox-recent",
        Some(&write(dir.path(), "b.json", &export(&[fresh]))),
    )
    .unwrap();
    let (v2, txt) = current(&app, "remus-domains");
    assert_eq!(v2, v1 + 1, "one new version");
    // fresh.… was last active 81.6 days ago: it stays.
    assert_eq!(txt, "fresh.remus-c2.example\nfresh2.remus-c2.example\n");
    // Every list, in one new version each.
    assert_eq!(current(&app, "threatfox-botnet-cc-domains"), (cc1 + 1, txt));
    let st = app.store().unwrap();
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "old-7.remus-c2.example", app.now())
        .unwrap();
    assert_eq!(v["status"], "aged");
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

/// A report dated years back, from any source, does not age out what other reports saw recently: the
/// merged first_seen is the earliest, but activity is the latest any report gave.
#[test]
fn a_backdated_report_from_another_source_does_not_age_an_ioc_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    let feed = write(
        dir.path(),
        "old.csv",
        b"v,first\nc2-fresh.remus-old.example,2001-01-01 00:00:00\n",
    );
    cfg.sources.push(file_source(
        "name = \"backdated\"\nkind = \"csv\"\nconfidence = 10\ncolumns = { value = \"v\", first_seen = \"first\" }",
        &feed,
    ));
    let (app, _) = app(cfg, t0());
    app.pull_source(
        "threatfox-recent",
        Some(&write(
            dir.path(),
            "x.json",
            &export(&[report(
                1,
                "c2-fresh.remus-old.example",
                "Remus",
                100,
                "2026-07-10 10:00:00",
            )]),
        )),
    )
    .unwrap();
    assert_eq!(
        current(&app, "remus-domains").1,
        "c2-fresh.remus-old.example\n"
    );
    let s = app.pull_source("backdated", None).unwrap();
    assert_eq!(s.accepted, 1);
    assert_eq!(
        current(&app, "remus-domains").1,
        "c2-fresh.remus-old.example\n"
    );
    let st = app.store().unwrap();
    let v = iocfeed::lookup::lookup(
        &st.conn,
        &app.config,
        "c2-fresh.remus-old.example",
        app.now(),
    )
    .unwrap();
    assert_eq!(v["first_seen"], "2001-01-01T00:00:00Z");
    assert_eq!(v["status"], "active");
    assert_eq!(
        v["score_terms"]["age_days"].as_f64().map(|d| d < 1.0),
        Some(true),
        "{v}"
    );
}

#[test]
fn the_safety_brake_holds_an_empty_pull_and_a_mass_removal_until_forced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, clock) = app(default_config("http://127.0.0.1:1", &data), t0());
    let server = TestServer::start(app.clone());

    // A pull of 4,000 Remus IOCs and 4,000 of another family, then one that returns `{}`.
    let reports: Vec<Value> = (0..4000)
        .map(|i| {
            report(
                i,
                &format!("c2-{i}.remus-brake.example"),
                "Remus",
                100,
                "2026-07-10 10:00:00",
            )
        })
        .collect();
    let others: Vec<Value> = (4000..8000)
        .map(|i| {
            report(
                i,
                &format!("c2-{i}.other-brake.example"),
                "Other",
                100,
                "2026-07-10 10:00:00",
            )
        })
        .collect();
    app.pull_source(
        "threatfox-recent",
        Some(&write(
            dir.path(),
            "big.json",
            &export(&[reports.clone(), others.clone()].concat()),
        )),
    )
    .unwrap();
    let (v1, before) = current(&app, "remus-domains");
    assert_eq!(get(server.addr, "/readyz").status, 200);
    // The held pulls run as `iocfeed pull` from cron would, so their log lines can be read.
    let pull_cli = |source: &str, file: &Path, now: &str| {
        let out = bin()
            .args(["pull", source, "--file"])
            .arg(file)
            .env("IOCFEED_DATA_DIR", &data)
            .env("IOCFEED_NOW", now)
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    clock.advance(chrono::Duration::minutes(15));
    let (_, log) = pull_cli(
        "threatfox-recent",
        &write(dir.path(), "empty.json", b"{}"),
        "2026-07-10T12:15:00Z",
    );
    assert!(
        log.contains("WARN")
            && log.contains(
                "pull held by the safety brake: returned no indicators after a pull of 8000"
            ),
        "{log}"
    );
    assert_eq!(current(&app, "remus-domains"), (v1, before.clone()));
    assert_eq!(get(server.addr, "/lists/remus-domains.txt").text(), before);
    let r = get(server.addr, "/readyz");
    assert_eq!(r.status, 503);
    assert!(
        r.text().contains("held: source:threatfox-recent"),
        "{}",
        r.text()
    );
    let sources: Value = serde_json::from_slice(&get(server.addr, "/sources").body).unwrap();
    assert!(
        sources[0]["hold"]["reason"]
            .as_str()
            .unwrap()
            .contains("no indicators"),
        "{sources}"
    );
    assert_eq!(sources[0]["result"], "held");

    // `publish --force` releases it.
    let out = bin()
        .args(["publish", "remus-domains", "--force"])
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-10T12:30:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get(server.addr, "/readyz").status, 200);

    // A full dump holding a third of the Remus list: it withdraws a third of what the upstream held (the
    // source brake lets that through) but would remove two thirds of the 4,000 Remus entries. Held.
    let third: Vec<Value> = reports.iter().take(1300).chain(&others).cloned().collect();
    clock.advance(chrono::Duration::minutes(15));
    let (_, log) = pull_cli(
        "threatfox-full",
        &write(dir.path(), "full.json", &export(&third)),
        "2026-07-10T12:30:00Z",
    );
    assert!(
        log.contains("withdrawn=2700") && log.contains("held=remus-domains"),
        "{log}"
    );
    assert!(
        log.contains("WARN")
            && log.contains("publish held by the safety brake: would remove 2700 of 4000 entries")
            && log.contains("iocfeed publish remus-domains --force"),
        "{log}"
    );
    let sources: Value = serde_json::from_slice(&get(server.addr, "/sources").body).unwrap();
    let full = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "threatfox-full")
        .unwrap();
    assert_eq!(
        full["lists_held"],
        json!([{"list": "remus-domains", "reason": "would remove 2700 of 4000 entries (68% > 50%)"}])
    );
    assert_eq!(current(&app, "remus-domains"), (v1, before.clone()));
    let served = get(server.addr, "/lists/remus-domains.txt");
    assert_eq!(served.text(), before);
    assert_eq!(
        served.header("x-iocfeed-version"),
        Some(v1.to_string().as_str())
    );
    assert!(get(server.addr, "/readyz")
        .text()
        .contains("held: list:remus-domains: would remove 2700"));

    // The operator forces it: the new set is published.
    let out = bin()
        .args(["publish", "remus-domains", "--force"])
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-10T13:00:00Z")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "remus-domains v{} (1300 entries): published",
            v1 + 1
        )),
        "{text}"
    );
    assert_eq!(current(&app, "remus-domains").1.lines().count(), 1300);
    // The all-families list lost a third of its 8,000 entries: under the threshold, published at once.
    assert_eq!(
        current(&app, "threatfox-botnet-cc-domains")
            .1
            .lines()
            .count(),
        5300
    );
    assert_eq!(get(server.addr, "/readyz").status, 200);
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

/// The first full dump has no earlier dump to be compared with: what it would withdraw is the measure. A
/// recent export imported as the full dump by mistake would withdraw most of what the upstream held, and
/// small lists (under the per-list brake's 100 entries) would empty. Held, changing nothing, until released.
#[test]
fn a_first_full_dump_that_would_withdraw_most_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, clock) = app(default_config("http://127.0.0.1:1", &data), t0());
    let all: Vec<Value> = (0..60)
        .map(|i| {
            report(
                i,
                &format!("c2-{i}.remus-first.example"),
                "Remus",
                100,
                "2026-07-10 10:00:00",
            )
        })
        .collect();
    app.pull_source(
        "threatfox-recent",
        Some(&write(dir.path(), "recent.json", &export(&all))),
    )
    .unwrap();
    let before = current(&app, "remus-domains");
    assert_eq!(before.1.lines().count(), 60);
    // A recent export imported as the dump by mistake covers its own two days only: it withdraws nothing
    // first seen before its oldest report.
    clock.advance(chrono::Duration::hours(1));
    let recent_only = write(
        dir.path(),
        "recent-only.json",
        &export(&[report(
            998,
            "c2-recent.remus-first.example",
            "Remus",
            100,
            "2026-07-11 08:00:00",
        )]),
    );
    let s = app
        .pull_source("threatfox-full", Some(&recent_only))
        .unwrap();
    assert!(s.held.is_none());
    assert_eq!(s.withdrawn, 0);
    assert_eq!(current(&app, "remus-domains").1.lines().count(), 61);
    let before = current(&app, "remus-domains");

    // A "dump" that reaches back past them but holds none of them: 60 reports would go.
    let one = write(
        dir.path(),
        "one.json",
        &export(&[
            report(
                997,
                "c2-old.remus-first.example",
                "Remus",
                100,
                "2026-07-01 09:00:00",
            ),
            report(
                999,
                "c2-new.remus-first.example",
                "Remus",
                100,
                "2026-07-11 09:00:00",
            ),
        ]),
    );
    let s = app.pull_source("threatfox-full", Some(&one)).unwrap();
    assert_eq!(
        s.held.as_deref().unwrap().split(';').next(),
        Some("would withdraw 61 of the 63 reports its upstream held")
    );
    assert_eq!(s.withdrawn, 0);
    // Nothing changed: not the list, not the new report (the held pull's transaction was rolled back).
    assert_eq!(current(&app, "remus-domains"), before);
    let st = app.store().unwrap();
    let n: i64 = st
        .conn
        .query_row(
            "SELECT count(*) FROM report WHERE withdrawn_at IS NOT NULL OR report_id LIKE '%99%' AND report_id NOT LIKE '%998%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        store::source_state(&st.conn, "threatfox-full")
            .unwrap()
            .last_result
            .as_deref(),
        Some("held")
    );

    // Released by the operator, the same dump is taken as it comes.
    let out = bin()
        .args(["publish", "remus-domains", "--force"])
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-11T12:00:00Z")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("source threatfox-full released"));
    assert_eq!(
        store::source_state(&st.conn, "threatfox-full")
            .unwrap()
            .last_result
            .as_deref(),
        Some("released")
    );
    let s = app.pull_source("threatfox-full", Some(&one)).unwrap();
    assert!(s.held.is_none());
    assert_eq!(s.withdrawn, 61);
    assert_eq!(
        current(&app, "remus-domains").1,
        "c2-new.remus-first.example\nc2-old.remus-first.example\n"
    );
}

#[test]
fn a_shrunken_full_dump_is_held_until_released_then_taken() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (app, clock) = app(default_config("http://127.0.0.1:1", &data), t0());
    let all: Vec<Value> = (0..60)
        .map(|i| {
            report(
                i,
                &format!("c2-{i}.remus-shrink.example"),
                "Remus",
                100,
                "2026-07-10 10:00:00",
            )
        })
        .collect();
    app.pull_source(
        "threatfox-full",
        Some(&write(dir.path(), "a.json", &export(&all))),
    )
    .unwrap();
    assert_eq!(current(&app, "remus-domains").1.lines().count(), 60);

    // A dump with a third of the rows: the lists are small (no list brake), the source hold catches it.
    let small = write(dir.path(), "b.json", &export(&all[..20]));
    clock.advance(chrono::Duration::days(1));
    let s = app.pull_source("threatfox-full", Some(&small)).unwrap();
    assert!(s
        .held
        .as_deref()
        .unwrap()
        .contains("returned 20 indicators (less than half) after a pull of 60"));
    assert_eq!(current(&app, "remus-domains").1.lines().count(), 60);
    // The same dump again: still held.
    assert!(app
        .pull_source("threatfox-full", Some(&small))
        .unwrap()
        .held
        .is_some());

    // The operator releases it; the next pull is taken as it comes.
    let out = bin()
        .args(["publish", "remus-domains", "--force"])
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-11T12:00:00Z")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("source threatfox-full released"), "{text}");
    let s = app.pull_source("threatfox-full", Some(&small)).unwrap();
    assert!(s.held.is_none());
    assert_eq!(s.withdrawn, 40);
    assert_eq!(current(&app, "remus-domains").1.lines().count(), 20);
}
