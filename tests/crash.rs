//! A pull killed with SIGKILL halfway through its transaction leaves the database consistent and the previous
//! version served after restart.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use common::*;
use iocfeed::store;

/// A large export in the ThreatFox JSON layout: `n` Remus domains, so a committed pull would change the list.
fn big_export(path: &std::path::Path, n: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"{\n").unwrap();
    for i in 0..n {
        let sep = if i + 1 == n { "" } else { "," };
        writeln!(
            f,
            r#""{id}": [{{"ioc_value": "c2-{i}.remus-crash.example.com", "ioc_type": "domain", "threat_type": "botnet_cc", "malware": "win.remus", "malware_alias": null, "malware_printable": "Remus", "first_seen_utc": "2026-07-09 09:00:00", "last_seen_utc": null, "confidence_level": 100, "is_compromised": false, "reference": null, "tags": "remus", "anonymous": 0, "reporter": "reporter001"}}]{sep}"#,
            id = 5_000_000 + i
        )
        .unwrap();
    }
    f.write_all(b"}\n").unwrap();
}

#[test]
fn sigkill_mid_pull_keeps_the_database_and_the_last_version() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let now = "2026-07-09T10:00:00Z";

    // A good pull: remus-domains v1.
    let small = dir.path().join("small.json");
    std::fs::write(&small, gunzip(&snaps[3].1)).unwrap();
    let ok = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&small)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", now)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let v1 = bin()
        .args(["export", "remus-domains", "--format", "rpz"])
        .env("IOCFEED_DATA_DIR", &data)
        .output()
        .unwrap()
        .stdout;
    assert!(String::from_utf8_lossy(&v1).contains("beltka.shop CNAME ."));

    // A big pull, killed once it reports progress (it is inside its write transaction by then).
    let big = dir.path().join("big.json");
    big_export(&big, 400_000);
    let mut child = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&big)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", now)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("pull in progress") => break,
            Some(Ok(l)) => seen.push(l),
            _ => panic!(
                "the pull ended before reporting progress:\n{}",
                seen.join("\n")
            ),
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        data.join("iocfeed.sqlite-wal").exists(),
        "the transaction was under way"
    );

    // The database is consistent and holds nothing of the killed pull.
    {
        let conn = rusqlite::Connection::open(data.join("iocfeed.sqlite")).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let leaked: i64 = conn
            .query_row(
                "SELECT count(*) FROM ioc WHERE value LIKE '%remus-crash%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leaked, 0);
        assert_eq!(store::versions(&conn, "remus-domains").unwrap().len(), 1);
    }

    // After restart the previous version is served, byte for byte.
    let (app, _) = app(
        default_config("http://127.0.0.1:1", &data),
        chrono::DateTime::parse_from_rfc3339(now).unwrap().into(),
    );
    let server = TestServer::start(app.clone());
    let r = get(server.addr, "/lists/remus-domains.rpz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, v1);
    assert_eq!(r.header("x-iocfeed-version"), Some("1"));
    // And the store still takes a pull.
    app.pull_source("threatfox-recent", Some(&small)).unwrap();
}
