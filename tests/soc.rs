//! The SOC view over the 24-snapshot replay: the Remus family report, diffs between every pair of retained
//! versions, the IOC lookup, and every STIX output through the OASIS validator.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use iocfeed::store;
use serde_json::Value;

/// Remus IOCs in the raw files, keyed by (type, value), with the test's own reading of the fields.
#[derive(Default, Debug)]
struct Raw {
    first_seen: Option<String>,
    last_seen: Option<String>,
    confidence: u64,
    threat_types: BTreeSet<String>,
    report_ids: BTreeSet<String>,
}

fn fmt_time(s: &str) -> String {
    format!("{}Z", s.replace(' ', "T"))
}

fn raw_remus(
    snaps: &[(chrono::DateTime<chrono::Utc>, std::path::PathBuf)],
) -> BTreeMap<(String, String), Raw> {
    let mut out: BTreeMap<(String, String), Raw> = BTreeMap::new();
    for (_, p) in snaps {
        let v: Value = serde_json::from_slice(&gunzip(p)).unwrap();
        for (id, rs) in v.as_object().unwrap() {
            let r = &rs[0];
            if r["malware_printable"] != "Remus" {
                continue;
            }
            let raw = r["ioc_value"].as_str().unwrap();
            let key = match r["ioc_type"].as_str().unwrap() {
                "domain" => ("domain".to_string(), raw.to_lowercase()),
                "ip:port" => (
                    "ip".to_string(),
                    raw.rsplit_once(':').unwrap().0.to_string(),
                ),
                "url" => ("url".to_string(), url::Url::parse(raw).unwrap().to_string()),
                t => (t.replace("_hash", ""), raw.to_lowercase()),
            };
            let e = out.entry(key).or_default();
            let fs = r["first_seen_utc"].as_str().map(fmt_time);
            if e.first_seen.is_none() || fs < e.first_seen {
                e.first_seen = fs;
            }
            let ls = r["last_seen_utc"].as_str().map(fmt_time);
            if ls > e.last_seen {
                e.last_seen = ls;
            }
            e.confidence = e.confidence.max(r["confidence_level"].as_u64().unwrap());
            e.threat_types
                .insert(r["threat_type"].as_str().unwrap().to_string());
            e.report_ids.insert(id.clone());
        }
    }
    out
}

#[test]
fn family_report_diffs_lookup_and_stix_over_the_replay() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let mut cfg = default_config(&upstream.base_url(), dir.path());
    // Keep only a few versions of one list, so that diffs reach beyond retention.
    cfg.lists
        .iter_mut()
        .find(|l| l.name == "threatfox-botnet-cc-domains")
        .unwrap()
        .retain_versions = 5;
    let (app, clock) = app(cfg, snaps[0].0);
    replay(&app, &clock, &upstream, &snaps);
    let server = TestServer::start(app.clone());
    let raw = raw_remus(&snaps);

    // 1. The family report has the seed's sections, with counts computed from the raw files.
    let out = bin()
        .args(["report", "Remus"])
        .env("IOCFEED_DATA_DIR", dir.path())
        .env("IOCFEED_NOW", snaps.last().unwrap().0.to_rfc3339())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert_eq!(md, get(server.addr, "/families/Remus/report.md").text());
    let types: BTreeSet<&str> = raw.keys().map(|(t, _)| t.as_str()).collect();
    let summary = format!(
        "Malware Family: Remus Total IOCs: {} IOC Types: {}",
        raw.len(),
        types.iter().copied().collect::<Vec<_>>().join(", ")
    );
    assert!(md.contains(&summary), "{summary}\n{md}");
    for section in [
        "## IOC Summary",
        "| Type | Value | Threat Type | First Seen | Confidence |",
        "## KQL",
        "DnsEvents\n| where Name has_any (malicious_domains)",
        "## Sentinel Tables",
        "| Sentinel Table | Notes |",
        "## Exclusions",
        "- `*.veeam.com`",
    ] {
        assert!(md.contains(section), "missing {section:?}");
    }
    let table_rows = md
        .lines()
        .filter(|l| {
            l.starts_with("| domain |") || l.starts_with("| ip |") || l.starts_with("| url |")
        })
        .count();
    assert_eq!(table_rows, raw.len());
    let beltka = &raw[&("domain".to_string(), "beltka.shop".to_string())];
    let row = format!(
        "| domain | `beltka.shop` | `{}` | {} | {}% |",
        beltka
            .threat_types
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        &beltka.first_seen.as_ref().unwrap()[..10],
        beltka.confidence
    );
    assert!(md.contains(&row), "{row}");
    let fams: Value = serde_json::from_slice(&get(server.addr, "/families").body).unwrap();
    assert_eq!(fams[0]["iocs"].as_u64().unwrap() as usize, raw.len());

    // 4. For every pair of retained versions N < M, diff applied to N's set gives M's set.
    let st = app.store().unwrap();
    let mut pairs = 0;
    for l in &app.config.lists {
        let versions = store::versions(&st.conn, &l.name).unwrap();
        let sets: BTreeMap<i64, BTreeSet<String>> = versions
            .iter()
            .map(|v| {
                let m = store::version(&st.conn, &l.name, v.version)
                    .unwrap()
                    .unwrap()
                    .members;
                (v.version, m.lines().map(str::to_string).collect())
            })
            .collect();
        for (&n, set_n) in &sets {
            for (&m, set_m) in sets.range(n + 1..) {
                let d: Value = serde_json::from_slice(
                    &get(
                        server.addr,
                        &format!("/lists/{}/diff?from={n}&to={m}", l.name),
                    )
                    .body,
                )
                .unwrap();
                assert_eq!((d["from"].as_i64(), d["to"].as_i64()), (Some(n), Some(m)));
                let mut applied = set_n.clone();
                for r in d["removed"].as_array().unwrap() {
                    assert!(
                        applied.remove(r.as_str().unwrap()),
                        "removed {r} not in v{n}"
                    );
                }
                for a in d["added"].as_array().unwrap() {
                    assert!(
                        applied.insert(a.as_str().unwrap().to_string()),
                        "added {a} already in v{n}"
                    );
                }
                assert_eq!(&applied, set_m, "{} v{n} -> v{m}", l.name);
                pairs += 1;
            }
        }
    }
    assert!(pairs >= 20, "{pairs} pairs checked");
    let cc = store::versions(&st.conn, "threatfox-botnet-cc-domains").unwrap();
    assert_eq!(cc.len(), 5);
    assert!(cc[0].version > 1, "older versions were pruned");
    let gone = get(
        server.addr,
        "/lists/threatfox-botnet-cc-domains/diff?from=1",
    );
    assert_eq!(gone.status, 410, "{}", gone.text());
    assert_eq!(
        get(
            server.addr,
            &format!(
                "/lists/threatfox-botnet-cc-domains/diff?from={}",
                cc[0].version
            )
        )
        .status,
        200
    );
    assert_eq!(
        get(server.addr, "/lists/remus-domains/diff?from=99").status,
        404
    );

    // 6. The lookup of beltka.shop matches the raw data.
    let v: Value =
        serde_json::from_slice(&get(server.addr, "/iocs?value=beltka.shop").body).unwrap();
    assert_eq!(v["status"], "active");
    assert_eq!(v["type"], "domain");
    assert_eq!(v["first_seen"].as_str(), beltka.first_seen.as_deref());
    assert_eq!(v["last_seen"].as_str(), beltka.last_seen.as_deref());
    assert_eq!(v["confidence"].as_u64(), Some(beltka.confidence));
    let lists: Vec<&str> = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(lists.contains(&"remus-domains"), "{lists:?}");
    let sighting_ids: BTreeSet<String> = v["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["report_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sighting_ids, beltka.report_ids);
    assert!(v["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["source"] == "threatfox-recent" && s["family"] == "Remus"));
    let terms = &v["score_terms"];
    assert_eq!(terms["confidence"].as_u64(), Some(beltka.confidence));
    assert_eq!(
        terms["reports"].as_u64(),
        Some(beltka.report_ids.len() as u64)
    );
    let expected = (beltka.confidence as f64
        * terms["decay"].as_f64().unwrap()
        * terms["corroboration"].as_f64().unwrap())
    .round() as u64;
    assert_eq!(v["score"].as_u64(), Some(expected));
    // Pasted defanged from a report or a ticket, it is the same lookup.
    let defanged: Value =
        serde_json::from_slice(&get(server.addr, "/iocs?value=beltka%5B.%5Dshop").body).unwrap();
    assert_eq!(defanged, v);

    // A name below a listed domain is not an IOC itself, but the wildcard rules block it: say so.
    let sub: Value =
        serde_json::from_slice(&get(server.addr, "/iocs?value=www.beltka.shop").body).unwrap();
    assert_eq!(sub["status"], "unknown");
    assert_eq!(sub["covered_by"][0]["value"], "beltka.shop");
    assert!(sub["covered_by"][0]["lists"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("remus-domains")));

    // 3. Every STIX version of every list passes the OASIS validator.
    if have_tool("stix2_validator") {
        assert!(validate_every_stix(&app, dir.path()) >= 5);
    }
}
