//! Values an adversarial review found published (SPEC §6): numeric last labels, addresses embedding or in
//! special-purpose ranges, special-use and private names, non-canonical IPv4 in URLs, and report times before
//! 2000. A pull of a ThreatFox export holding them publishes none, and counts each as a reject by reason.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use common::*;
use iocfeed::config::{Config, ListConfig};
use iocfeed::store;

fn list(name: &str, types: &[&str], formats: &[&str]) -> ListConfig {
    let toml = format!("name = {name:?}\ntypes = {types:?}\nformats = {formats:?}\n");
    toml::from_str(&toml).unwrap()
}

/// The default config plus one list per type, in the text formats and STIX.
fn config(data: &Path) -> Config {
    let mut c = default_config("http://127.0.0.1:1", data);
    c.lists.push(list(
        "all-domains",
        &["domain"],
        &["txt", "rpz", "csv", "json", "stix"],
    ));
    c.lists
        .push(list("all-ips", &["ip"], &["txt", "csv", "json", "stix"]));
    c.lists
        .push(list("all-urls", &["url"], &["txt", "csv", "json", "stix"]));
    c
}

/// (upstream type, value, reason) of every value that must be rejected.
const BAD: &[(&str, &str, &str)] = &[
    // 1. The last label is a number: an IPv4 address to browsers and inet_aton.
    ("domain", "0x7f.0.0.1", "ip-literal"),
    ("domain", "0x7f.1", "ip-literal"),
    ("domain", "0xa.0.0.1", "ip-literal"),
    ("domain", "10.0.0.0x1", "ip-literal"),
    ("domain", "192.168.0x1.1", "ip-literal"),
    ("domain", "evil.1", "ip-literal"),
    ("domain", "a.123", "ip-literal"),
    // 2. Special-purpose addresses, and IPv6 embedding IPv4.
    ("ip:port", "::ffff:0:a00:1", "reserved-address"),
    ("ip:port", "[64:ff9b:1::a00:1]:443", "reserved-address"),
    ("ip:port", "2002:c0a8:101::1", "reserved-address"),
    ("ip:port", "192.31.196.1:53", "reserved-address"),
    ("ip:port", "192.175.48.1", "reserved-address"),
    ("ip:port", "2620:4f:8000::1", "reserved-address"),
    ("ip:port", "192.52.193.1:2268", "reserved-address"),
    ("ip:port", "5f00::1", "reserved-address"),
    // 3. Special-use and non-public names.
    ("domain", "x.test", "special-use"),
    ("domain", "x.invalid", "special-use"),
    ("domain", "x.localhost", "special-use"),
    ("domain", "localhost.localdomain", "special-use"),
    ("domain", "x.alt", "special-use"),
    ("domain", "x.internal", "special-use"),
    ("domain", "x.home.arpa", "special-use"),
    ("domain", "x.onion", "special-use"),
    ("domain", "x.home", "unknown-tld"),
    ("domain", "x.lan", "unknown-tld"),
    ("domain", "x.corp", "unknown-tld"),
    ("domain", "x.intranet", "unknown-tld"),
    // 4. URLs whose host is an IPv4 address in another spelling, or an unchecked opaque host.
    ("url", "http://010.0.0.1/", "bad-address"),
    ("url", "http://1.2.3/", "bad-address"),
    ("url", "http://0x7f.1/gate.php", "bad-address"),
    ("url", "tcp://0x7f.1/", "bad-address"),
    ("url", "tcp://x.lan:4444/", "unknown-tld"),
    ("url", "http://[::ffff:0:7f00:1]/", "reserved-address"),
];

/// What the parser would have rewritten the URLs to, and what the names are under another spelling.
const NEVER_PUBLISHED: &[&str] = &[
    "8.0.0.1",
    "1.2.0.3",
    "127.0.0.1",
    "0x7f",
    "10.0.0.1",
    "a00:1",
    "7f00:1",
];

#[test]
fn a_pull_publishes_none_of_the_reviewed_values_and_counts_each_reject() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t0 = Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap();
    let (app, _) = app(config(&data), t0);

    let mut reports = Vec::new();
    for (i, (t, v, _)) in BAD.iter().enumerate() {
        reports.push(tf_report(
            i as u64 + 1,
            v,
            t,
            "Remus",
            100,
            "2026-07-10 10:00:00",
        ));
    }
    // Good values, two of them with a first_seen no real report can have (5.): taken, with no time.
    let good = [
        ("domain", "c2.remus-review.com", "0000-01-01 00:00:00"),
        ("domain", "c3.remus-review.com", "-262143-01-01 00:00:00"),
        ("ip:port", "45.33.32.156:4444", "-0001-01-01 00:00:00"),
        (
            "url",
            "tcp://C4.Remus-Review.com:4444/",
            "2026-07-10 10:00:00",
        ),
        ("url", "http://45.33.32.156:8080/x", "2026-07-10 10:00:00"),
    ];
    for (i, (t, v, first_seen)) in good.iter().enumerate() {
        reports.push(tf_report(1000 + i as u64, v, t, "Remus", 100, first_seen));
    }
    let f = dir.path().join("export.json");
    std::fs::write(&f, tf_export(&reports)).unwrap();
    let summary = app.pull_source("threatfox-recent", Some(&f)).unwrap();

    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (_, _, reason) in BAD {
        *want.entry(reason.to_string()).or_default() += 1;
    }
    assert_eq!(summary.rejects, want);
    assert_eq!(summary.rejected, BAD.len() as u64);
    assert_eq!(summary.accepted, good.len() as u64);
    // The counts are what `iocfeed sources` and `/sources` show, and every value is kept for inspection.
    let st = app.store().unwrap();
    let state = store::source_state(&st.conn, "threatfox-recent").unwrap();
    assert_eq!(state.rejects, want);
    for (_, v, reason) in BAD {
        let seen = store::rejections_of(&st.conn, v).unwrap();
        assert!(
            seen.iter().any(|(_, r, n)| r == reason && *n >= 1),
            "{v}: {seen:?}"
        );
    }

    // Nothing rejected reaches any format of any list; the good values do.
    let mut everything = String::new();
    let mut stix_files = Vec::new();
    for l in &app.config.lists {
        let Some(v) = store::latest_version(&st.conn, &l.name).unwrap() else {
            continue;
        };
        for fmt in &l.formats {
            let body = store::artifact(&st.conn, &l.name, v.version, fmt.as_str())
                .unwrap()
                .unwrap()
                .body;
            if *fmt == iocfeed::config::Format::Stix {
                let p = dir.path().join(format!("{}.stix.json", l.name));
                std::fs::write(&p, &body).unwrap();
                stix_files.push(p);
            }
            everything.push_str(&String::from_utf8(body).unwrap());
        }
    }
    for (_, v, _) in BAD {
        let host = v.split("://").nth(1).unwrap_or(v);
        let host = host.trim_end_matches('/');
        assert!(!everything.contains(host), "{v} was published");
    }
    for v in NEVER_PUBLISHED {
        assert!(!everything.contains(v), "{v} was published");
    }
    for v in [
        "c2.remus-review.com",
        "c3.remus-review.com",
        "45.33.32.156",
        "tcp://c4.remus-review.com:4444/",
        "http://45.33.32.156:8080/x",
    ] {
        assert!(everything.contains(v), "{v} missing");
    }

    // 5. A time before 2000 is no time: the IOC has no first_seen rather than year 0 or -262143.
    for (t, v) in [
        ("domain", "c2.remus-review.com"),
        ("domain", "c3.remus-review.com"),
        ("ip", "45.33.32.156"),
    ] {
        let (_, row) = store::ioc(&st.conn, t, v).unwrap().unwrap();
        assert_eq!(row.first_seen, None, "{v}");
    }
    assert!(!everything.contains("0000-01-01"));
    assert!(!everything.contains("262143"));
    if have_tool("stix2_validator") {
        validate_stix(&stix_files);
    }
}
