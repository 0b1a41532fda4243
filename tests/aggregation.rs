//! Aggregation: the ThreatFox API (real recorded answers and synthetic `malwareinfo` pages), a text feed
//! corroborating ThreatFox, and a wrong API key that must never be printed anywhere.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use common::*;
use iocfeed::config::SourceConfig;
use iocfeed::store;
use serde_json::{json, Value};

fn api_fixture(name: &str) -> Vec<u8> {
    std::fs::read(shared().join("fixtures/threatfox/api").join(name)).unwrap()
}

fn source(toml: &str) -> SourceConfig {
    toml::from_str(toml).unwrap()
}

/// A `malwareinfo` page in the API's shape (as the recorded `search_ioc` answers have it).
fn malwareinfo_page(family: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"query_status": "ok", "data": [
        {"id": "1850001", "ioc": "c2.remus-api.example", "threat_type": "botnet_cc", "ioc_type": "domain",
         "malware": "win.remus", "malware_printable": family, "malware_alias": null, "confidence_level": 90,
         "is_compromised": false, "first_seen": "2026-07-09 10:00:00 UTC", "last_seen": "2026-07-10 09:00:00 UTC",
         "reference": "https://bazaar.abuse.ch/sample/x/", "reporter": "reporter003", "tags": ["remus", "c2"]},
        {"id": "1850002", "ioc": "193.233.0.12:4437", "threat_type": "botnet_cc", "ioc_type": "ip:port",
         "malware": "win.remus", "malware_printable": family, "malware_alias": null, "confidence_level": 75,
         "is_compromised": false, "first_seen": "2026-07-09 11:00:00 UTC", "last_seen": null,
         "reference": null, "reporter": "reporter003", "tags": null}
    ]}))
    .unwrap()
}

#[test]
fn api_answers_land_with_their_fields() {
    let fake = FakeHttp::start(Arc::new(|r: &Req| {
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        match (body["query"].as_str(), body["malware"].as_str()) {
            (Some("malwareinfo"), Some("Remus")) => {
                Reply::ok("application/json", &malwareinfo_page("Remus"))
            }
            (Some("malwareinfo"), Some("AsyncRAT")) => Reply::ok(
                "application/json",
                &api_fixture("search_ioc-ipport-hit.json"),
            ),
            (Some("malwareinfo"), Some("PHP Webshell")) => Reply::ok(
                "application/json",
                &api_fixture("search_ioc-domain-hit.json"),
            ),
            _ => Reply::ok(
                "application/json",
                &api_fixture("search_ioc-no-result.json"),
            ),
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.threatfox.api_url = fake.url("/api/v1/");
    cfg.sources = vec![source(
        "name = \"tf-api\"\nkind = \"threatfox-api\"\nschedule = \"*/30 * * * *\"\nfamilies = [\"Remus\", \"AsyncRAT\", \"PHP Webshell\", \"Nothing\"]\n",
    )];
    let t = Utc.with_ymd_and_hms(2026, 9, 2, 12, 0, 0).unwrap();
    let (app, clock) = app(cfg, t);
    std::env::set_var("THREATFOX_AUTH_KEY", "test-key-for-the-api-test");
    let s = app.pull_source("tf-api", None).unwrap();
    assert_eq!((s.rows, s.accepted, s.rejected), (4, 4, 0));

    // One POST per family, with the key and the query.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs
        .iter()
        .all(|r| r.method == "POST" && r.header("auth-key") == Some("test-key-for-the-api-test")));
    let first: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        first,
        json!({"query": "malwareinfo", "malware": "Remus", "limit": 1000})
    );

    let st = app.store().unwrap();
    let by = |v: &str| iocfeed::lookup::lookup(&st.conn, &app.config, v, app.now()).unwrap();
    // The real recorded ip:port answer.
    let ip = by("45.192.105.203");
    assert_eq!(ip["status"], "active");
    assert_eq!(ip["ports"], json!([8000]));
    assert_eq!(ip["families"], json!(["DCRat"]));
    assert_eq!(ip["confidence"], 100);
    assert_eq!(ip["is_compromised"], true);
    assert_eq!(ip["first_seen"], "2026-09-02T06:05:06Z");
    assert_eq!(ip["sightings"][0]["report_id"], "1892954");
    assert_eq!(ip["tags"], json!(["dcrat"]));
    // The real recorded domain answer: a tenant of a private public suffix.
    let d = by("fuwabo.workers.dev");
    assert_eq!(d["confidence"], 50);
    assert_eq!(d["threat_types"], json!(["botnet_cc"]));
    assert_eq!(d["families"], json!(["php.shin_webshell"]));
    assert_eq!(d["tags"].as_array().unwrap().len(), 7);
    // The synthetic malwareinfo page, into the Remus lists.
    let c2 = by("c2.remus-api.example");
    assert_eq!(c2["last_seen"], "2026-07-10T09:00:00Z");
    assert_eq!(
        c2["lists"],
        json!(["remus-domains", "threatfox-botnet-cc-domains"])
    );
    assert_eq!(by("193.233.0.12")["lists"], json!(["remus-ips"]));

    // `no_result` everywhere: an empty, successful pull (not a hold).
    fake.set(Arc::new(|_: &Req| {
        Reply::ok(
            "application/json",
            &api_fixture("search_ioc-no-result.json"),
        )
    }));
    clock.advance(chrono::Duration::minutes(30));
    let s = app.pull_source("tf-api", None).unwrap();
    assert_eq!((s.rows, s.accepted), (0, 0));
    assert!(s.held.is_none());
    let state = store::source_state(&st.conn, "tf-api").unwrap();
    assert_eq!(state.last_result.as_deref(), Some("ok"));

    // Other query_status values, 401/403 and HTML error pages are source errors.
    for (reply, expect) in [
        (
            Reply::ok(
                "application/json",
                br#"{"query_status": "illegal_search_term", "data": "x"}"#,
            ),
            "query_status \"illegal_search_term\"",
        ),
        (
            Reply::status(401, "application/json", b"{}", &[]),
            "HTTP 401",
        ),
        (
            Reply::status(403, "text/html", b"<html>Forbidden</html>", &[]),
            "HTTP 403",
        ),
        (
            Reply::ok("text/html", b"<html><body>502 Bad Gateway</body></html>"),
            "HTML page",
        ),
    ] {
        let reply = Arc::new(std::sync::Mutex::new(Some(reply)));
        fake.set(Arc::new(move |_: &Req| {
            reply.lock().unwrap().take().unwrap_or_else(|| {
                Reply::ok(
                    "application/json",
                    &api_fixture("search_ioc-no-result.json"),
                )
            })
        }));
        let e = app.pull_source("tf-api", None).unwrap_err().to_string();
        assert!(e.contains(expect), "{e}");
        assert!(
            e.starts_with(&format!(
                "pull tf-api from {} failed: ",
                fake.url("/api/v1/")
            )),
            "{e}"
        );
    }
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn a_text_feed_corroborates_threatfox() {
    let snaps = snapshots();
    let fake = FakeHttp::start(Arc::new(|_: &Req| {
        Reply::ok(
            "text/plain",
            b"# in-house C2 list\n0.0.0.0 beltka.shop\n; a comment\nother.inhouse-c2.example\n",
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.sources.push(source(&format!(
        "name = \"inhouse\"\nkind = \"text\"\nurl = {:?}\nschedule = \"0 * * * *\"\nfamily = \"Remus\"\nthreat_type = \"botnet_cc\"\nconfidence = 80\n",
        fake.url("/c2.txt")
    )));
    let (app, _) = app(cfg, snaps[3].0);
    let f = dir.path().join("s.json");
    std::fs::write(&f, gunzip(&snaps[3].1)).unwrap();
    app.pull_source("threatfox-recent", Some(&f)).unwrap();
    let st = app.store().unwrap();
    let before = iocfeed::lookup::lookup(&st.conn, &app.config, "beltka.shop", app.now()).unwrap();
    let reports_before = before["score_terms"]["reports"].as_u64().unwrap();

    let s = app.pull_source("inhouse", None).unwrap();
    assert_eq!((s.rows, s.accepted), (2, 2));
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "beltka.shop", app.now()).unwrap();
    // One IOC, seen by both sources; the text feed is an independent report.
    assert_eq!(v["sources"], json!(["inhouse", "threatfox-recent"]));
    let sightings = v["sightings"].as_array().unwrap();
    assert!(sightings
        .iter()
        .any(|s| s["source"] == "inhouse" && s["report_id"] == "beltka.shop"));
    assert_eq!(
        v["score_terms"]["reports"].as_u64().unwrap(),
        reports_before + 1
    );
    let corroboration = 1.0 + 0.1 * (reports_before.min(5)) as f64;
    assert!((v["score_terms"]["corroboration"].as_f64().unwrap() - corroboration).abs() < 1e-9);
    assert_eq!(
        store::all_iocs(&st.conn)
            .unwrap()
            .iter()
            .filter(|i| i.value == "beltka.shop")
            .count(),
        1
    );
    // The in-house-only value joins the Remus list.
    let v = iocfeed::lookup::lookup(&st.conn, &app.config, "other.inhouse-c2.example", app.now())
        .unwrap();
    assert_eq!(v["confidence"], 80);
    assert!(v["lists"]
        .as_array()
        .unwrap()
        .contains(&json!("remus-domains")));
    // Every STIX version this test published passes the OASIS validator.
    validate_every_stix(&app, dir.path());
}

#[test]
fn a_wrong_api_key_is_never_printed() {
    const KEY: &str = "SECRET-0f3a9c-wrong-threatfox-key";
    let fake = FakeHttp::start(Arc::new(|r: &Req| {
        if r.header("auth-key").is_some() {
            Reply::ok(
                "application/json",
                br#"{"query_status": "unknown_auth_key"}"#,
            )
        } else {
            Reply::status(401, "text/plain", b"no key", &[])
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iocfeed.toml");
    std::fs::write(
        &config,
        format!(
            "[threatfox]\napi_url = {:?}\n\n[[source]]\nname = \"tf-api\"\nkind = \"threatfox-api\"\nschedule = \"*/30 * * * *\"\nfamilies = [\"Remus\"]\n\n[[family]]\nname = \"Remus\"\n\n[[list]]\nname = \"remus-domains\"\nfamilies = [\"Remus\"]\ntypes = [\"domain\"]\nformats = [\"txt\", \"json\", \"stix\"]\n",
            fake.url("/api/v1/")
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("IOCFEED_DATA_DIR", dir.path().join("data"))
        .env("THREATFOX_AUTH_KEY", KEY)
        .env("IOCFEED_LOG", "debug")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut addr = None;
    while Instant::now() < deadline && !log.iter().any(|l: &String| l.contains("unknown_auth_key"))
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if let Some(a) = l.split("listening on http://").nth(1) {
                addr = a
                    .split_whitespace()
                    .next()
                    .map(|s| s.parse::<std::net::SocketAddr>().unwrap());
            }
            log.push(l);
        }
    }
    let addr = addr.expect("server address");
    assert!(
        log.iter()
            .any(|l| l.contains("pull tf-api from") && l.contains("unknown_auth_key")),
        "{log:#?}"
    );
    // The key did reach the upstream, as the header it belongs in.
    assert_eq!(fake.requests()[0].header("auth-key"), Some(KEY));

    let mut seen = log.join("\n");
    for path in [
        "/sources",
        "/readyz",
        "/lists",
        "/healthz",
        "/lists/remus-domains.txt",
        "/iocs?value=x.example.com",
        "/families",
        "/nope",
    ] {
        let r = get(addr, path);
        seen.push_str(&String::from_utf8_lossy(&r.body));
        seen.push_str(&format!("{:?}", r.headers));
    }
    let _ = child.kill();
    let _ = child.wait();
    while let Ok(l) = rx.try_recv() {
        seen.push_str(&l);
    }
    let show = bin()
        .args(["config", "show", "--config"])
        .arg(&config)
        .env("THREATFOX_AUTH_KEY", KEY)
        .output()
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&show.stdout));
    seen.push_str(&String::from_utf8_lossy(&show.stderr));
    let sources = bin()
        .arg("sources")
        .args(["--config"])
        .arg(&config)
        .env("IOCFEED_DATA_DIR", dir.path().join("data"))
        .env("THREATFOX_AUTH_KEY", KEY)
        .output()
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&sources.stdout));
    assert!(
        seen.contains("unknown_auth_key"),
        "the failure itself is visible"
    );
    let leaks: Vec<&str> = seen.lines().filter(|l| l.contains(KEY)).collect();
    assert!(leaks.is_empty(), "the key leaked: {leaks:#?}");
    assert!(!seen.contains("0f3a9c"), "part of the key leaked");
}

#[test]
fn the_api_key_is_not_followed_through_redirects_nor_quoted_when_malformed() {
    let catcher = FakeHttp::start(Arc::new(|_: &Req| {
        Reply::ok("application/json", br#"{"query_status": "ok", "data": []}"#)
    }));
    let target = catcher.url("/capture");
    let api = FakeHttp::start(Arc::new(move |_: &Req| {
        Reply::status(302, "text/plain", b"", &[("Location", target.as_str())])
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.threatfox.api_url = api.url("/api/v1/");
    cfg.sources = vec![source("name = \"tf-api\"\nkind = \"threatfox-api\"\nschedule = \"*/30 * * * *\"\nfamilies = [\"Remus\"]\n")];
    let (app, _) = app(cfg, Utc.with_ymd_and_hms(2026, 9, 2, 12, 0, 0).unwrap());
    std::env::set_var("THREATFOX_AUTH_KEY", "test-key-for-the-api-test");
    let e = app.pull_source("tf-api", None).unwrap_err().to_string();
    assert!(e.contains("HTTP 302"), "{e}");
    assert!(catcher.requests().is_empty(), "the redirect was followed");
}

#[test]
fn a_malformed_key_is_refused_without_being_quoted() {
    let api = FakeHttp::start(Arc::new(|_: &Req| {
        Reply::ok(
            "application/json",
            br#"{"query_status": "no_result", "data": "x"}"#,
        )
    }));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("[threatfox]\napi_url = {:?}\n\n[[source]]\nname = \"tf-api\"\nkind = \"threatfox-api\"\nschedule = \"*/30 * * * *\"\nfamilies = [\"Remus\"]\n", api.url("/api/v1/")),
    )
    .unwrap();
    let out = bin()
        .args(["pull", "--config"])
        .arg(&config)
        .env("IOCFEED_DATA_DIR", dir.path().join("data"))
        .env("THREATFOX_AUTH_KEY", "OLD-KEY-111\nNEW-KEY-222")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("THREATFOX_AUTH_KEY holds characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("KEY-111") && !stderr.contains("KEY-222"),
        "{stderr}"
    );
    assert!(api.requests().is_empty());
}

#[test]
fn csv_and_text_feeds_resist_forged_rows_and_error_pages() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("feed.csv");
    // A quoted field with a line break must not become a row of its own.
    std::fs::write(
        &csv,
        "\u{feff}url,score,notes\r\nhttp://real.evil-remus.example/a,9,plain\r\nhttp://second.evil-remus.example/b,9,\"see notes:\nhttp://injected.evil-remus.example/x,9,end\"\r\n",
    )
    .unwrap();
    let html = dir.path().join("page.txt");
    std::fs::write(&html, "\n\u{feff}<!DOCTYPE html>\n<html><body>\nstatus.example-corp.com is under maintenance\nhelpdesk.example-corp.com\n</body></html>\n").unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.sources.push(source(&format!(
        "name = \"urls\"\nkind = \"csv\"\nurl = {:?}\nschedule = \"0 * * * *\"\nioc_type = \"url\"\nfamily = \"Remus\"\ncolumns = {{ value = \"url\" }}\n",
        url::Url::from_file_path(&csv).unwrap().to_string()
    )));
    cfg.sources.push(source(&format!(
        "name = \"names\"\nkind = \"text\"\nurl = {:?}\nschedule = \"0 * * * *\"\nfamily = \"Remus\"\nthreat_type = \"botnet_cc\"\n",
        url::Url::from_file_path(&html).unwrap().to_string()
    )));
    let (app, _) = app(cfg, Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap());
    let s = app.pull_source("urls", None).unwrap();
    assert_eq!((s.rows, s.accepted), (2, 2), "{s:?}");
    let st = app.store().unwrap();
    let values: Vec<String> = store::all_iocs(&st.conn)
        .unwrap()
        .into_iter()
        .map(|i| i.value)
        .collect();
    assert!(
        values.contains(&"http://second.evil-remus.example/b".to_string()),
        "{values:?}"
    );
    assert!(!values.iter().any(|v| v.contains("injected")), "{values:?}");
    let e = app.pull_source("names", None).unwrap_err().to_string();
    assert!(e.contains("got an HTML page"), "{e}");
    assert!(!store::all_iocs(&st.conn)
        .unwrap()
        .iter()
        .any(|i| i.value.contains("example-corp")));
}

#[test]
fn a_complete_in_house_list_withdraws_what_it_no_longer_names() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("c2.txt");
    std::fs::write(&list, "gone.inhouse-c2.example\nstays.inhouse-c2.example\n").unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.sources.push(source(&format!(
        "name = \"inhouse\"\nkind = \"text\"\nmode = \"full\"\nurl = {:?}\nschedule = \"0 * * * *\"\nfamily = \"Remus\"\n",
        url::Url::from_file_path(&list).unwrap().to_string()
    )));
    let (app, clock) = app(cfg, Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap());
    app.pull_source("inhouse", None).unwrap();
    std::fs::write(&list, "stays.inhouse-c2.example\n").unwrap();
    clock.advance(chrono::Duration::hours(1));
    let s = app.pull_source("inhouse", None).unwrap();
    assert_eq!(s.withdrawn, 1);
    let st = app.store().unwrap();
    let v = store::latest_version(&st.conn, "remus-domains")
        .unwrap()
        .unwrap();
    assert_eq!(v.members, "stays.inhouse-c2.example\n");
}
