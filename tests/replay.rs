//! The reference scenario: the 24 real ThreatFox snapshots pulled one after another from a loopback server at
//! the export path, checked against values computed here, independently, from the raw files.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use iocfeed::store;
use serde_json::Value;

/// What the test expects of one IOC, merged over every report in every snapshot.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    confidence: u8,
    remus: bool,
    raw: Vec<String>,
}

fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    Some(
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .ok()?
            .and_utc()
            .timestamp(),
    )
}

/// The test's own reading of a value: enough to key the real data (not the product's normaliser).
fn key(ioc_type: &str, raw: &str) -> (String, String) {
    let raw = raw.trim();
    match ioc_type {
        "domain" => ("domain".into(), raw.trim_end_matches('.').to_lowercase()),
        "ip:port" => {
            let ip = if let Some(rest) = raw.strip_prefix('[') {
                rest.split(']').next().unwrap().to_string()
            } else {
                raw.rsplit_once(':')
                    .map(|(a, _)| a)
                    .unwrap_or(raw)
                    .to_string()
            };
            ("ip".into(), ip)
        }
        "url" => (
            "url".into(),
            url::Url::parse(raw)
                .map(|u| u.to_string())
                .unwrap_or(raw.into()),
        ),
        "md5_hash" => ("md5".into(), raw.to_lowercase()),
        "sha1_hash" => ("sha1".into(), raw.to_lowercase()),
        "sha256_hash" => ("sha256".into(), raw.to_lowercase()),
        other => panic!("unexpected type {other}"),
    }
}

fn merge_snapshot(into: &mut BTreeMap<(String, String), Expected>, bytes: &[u8]) {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    for reports in v.as_object().unwrap().values() {
        for r in reports.as_array().unwrap() {
            let k = key(
                r["ioc_type"].as_str().unwrap(),
                r["ioc_value"].as_str().unwrap(),
            );
            let remus = r["malware_printable"].as_str() == Some("Remus")
                || r["malware"].as_str() == Some("win.remus");
            let e = into.entry(k).or_insert(Expected {
                first_seen: None,
                last_seen: None,
                confidence: 0,
                remus: false,
                raw: vec![],
            });
            let fs = ts(&r["first_seen_utc"]);
            let ls = ts(&r["last_seen_utc"]);
            e.first_seen = match (e.first_seen, fs) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            e.last_seen = match (e.last_seen, ls) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            e.confidence = e
                .confidence
                .max(r["confidence_level"].as_u64().unwrap() as u8);
            e.remus |= remus;
            e.raw.push(r["ioc_value"].as_str().unwrap().to_string());
        }
    }
}

fn remus_domains(exp: &BTreeMap<(String, String), Expected>) -> BTreeSet<String> {
    exp.iter()
        .filter(|((t, _), e)| t == "domain" && e.remus && e.confidence >= 50)
        .map(|((_, v), _)| v.clone())
        .collect()
}

#[test]
fn replay_of_24_real_snapshots() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let (app, clock) = app(default_config(&upstream.base_url(), dir.path()), snaps[0].0);
    let server = TestServer::start(app.clone());

    let mut expected = BTreeMap::new();
    let mut previous_set = BTreeSet::new();
    let mut changes = 0;
    let mut v1: Option<Resp> = None;
    for (i, (t, path)) in snaps.iter().enumerate() {
        let bytes = gunzip(path);
        merge_snapshot(&mut expected, &bytes);
        upstream.set(RECENT_PATH, bytes);
        clock.set(*t);
        app.pull_source("threatfox-recent", None).unwrap();
        let set = remus_domains(&expected);
        if set != previous_set || i == 0 {
            changes += 1;
        }
        previous_set = set.clone();
        // The list served now is exactly the expected set.
        let served = get(server.addr, "/lists/remus-domains.txt");
        assert_eq!(served.status, 200);
        let served: BTreeSet<String> = served.text().lines().map(str::to_string).collect();
        assert_eq!(served, set, "after snapshot {}", path.display());
        if i == 0 {
            v1 = Some(get(server.addr, "/lists/remus-domains/v1.txt"));
        }
    }

    // Every stored IOC's first_seen, last_seen and confidence are those computed from the raw files.
    let store = app.store().unwrap();
    let stored = store::all_iocs(&store.conn).unwrap();
    let rejected: BTreeSet<String> = store::rejects(&store.conn)
        .unwrap()
        .into_iter()
        .map(|r| r.2)
        .collect();
    let mut seen = BTreeSet::new();
    for s in &stored {
        let k = (s.ioc_type.clone(), s.value.clone());
        let e = expected
            .get(&k)
            .unwrap_or_else(|| panic!("stored {k:?} is in no snapshot"));
        assert_eq!(s.first_seen, e.first_seen, "first_seen of {k:?}");
        assert_eq!(s.last_seen, e.last_seen, "last_seen of {k:?}");
        assert_eq!(s.confidence, e.confidence, "confidence of {k:?}");
        seen.insert(k);
    }
    // What is not stored was rejected, with its raw value kept.
    for (k, e) in &expected {
        if !seen.contains(k) {
            assert!(
                e.raw
                    .iter()
                    .all(|r| rejected.contains(&r.escape_debug().to_string())),
                "{k:?} neither stored nor rejected"
            );
        }
    }
    // Rejections are rare on this data (reserved addresses and the like); nearly everything is stored.
    let unstored = expected.len() - seen.len();
    assert!(
        unstored * 100 < expected.len(),
        "{unstored} of {} distinct IOCs not stored",
        expected.len()
    );

    // The Remus domain list holds exactly the expected set, and it has one version per change of that set.
    let final_set = remus_domains(&expected);
    assert!(final_set.contains("beltka.shop") && final_set.contains("desecq.shop"));
    let versions = store::versions(&store.conn, "remus-domains").unwrap();
    assert_eq!(versions.len(), changes, "versions of remus-domains");
    assert_eq!(versions.last().unwrap().entries as usize, final_set.len());
    assert_eq!(
        changes, 4,
        "the Remus domain set of these snapshots changes 4 times"
    );

    // v1 still returns its original bytes and ETag.
    let v1 = v1.unwrap();
    let again = get(server.addr, "/lists/remus-domains/v1.txt");
    assert_eq!(again.status, 200);
    assert_eq!(again.body, v1.body);
    assert_eq!(again.header("etag"), v1.header("etag"));
    assert!(v1.text().contains("desecq.shop\n"));
    assert!(!v1.text().contains("beltka.shop"));
}
