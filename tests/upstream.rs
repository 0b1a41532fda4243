//! Fetching from upstream: conditional GET, the size cap, `file://` URLs, ZIP and gzip packaging.

mod common;

use std::io::Write;

use common::*;
use iocfeed::store;

#[test]
fn unchanged_export_answers_304_and_mints_nothing() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let (app, clock) = app(default_config(&upstream.base_url(), dir.path()), snaps[0].0);
    replay(&app, &clock, &upstream, &snaps[..1]);
    clock.advance(chrono::Duration::minutes(15));
    let s = app.pull_source("threatfox-recent", None).unwrap();
    assert!(s.not_modified);
    assert_eq!(s.rows, 0);
    assert_eq!(upstream.requests(), 2);
    let st = app.store().unwrap();
    assert_eq!(store::versions(&st.conn, "remus-domains").unwrap().len(), 1);
    let state = store::source_state(&st.conn, "threatfox-recent").unwrap();
    assert_eq!(state.last_result.as_deref(), Some("not-modified"));
}

#[test]
fn body_over_the_cap_fails_and_keeps_the_last_data() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let mut cfg = default_config(&upstream.base_url(), dir.path());
    let (app, clock) = app(cfg.clone(), snaps[0].0);
    replay(&app, &clock, &upstream, &snaps[..1]);
    let before = get_txt(&app);

    cfg.sources[0].max_bytes = 1000;
    let (capped, _) = common::app(cfg, snaps[3].0);
    upstream.set(RECENT_PATH, gunzip(&snaps[3].1));
    let e = capped
        .pull_source("threatfox-recent", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "pull threatfox-recent from {}/export/json/recent/ failed: body larger than the 1000-byte cap",
            upstream.base_url()
        )
    );
    assert_eq!(get_txt(&app), before);
}

fn get_txt(app: &iocfeed::App) -> Vec<u8> {
    let st = app.store().unwrap();
    let v = store::latest_version(&st.conn, "remus-domains")
        .unwrap()
        .unwrap();
    store::artifact(&st.conn, "remus-domains", v.version, "txt")
        .unwrap()
        .unwrap()
        .body
}

#[test]
fn file_urls_zip_and_gzip_packaging_read_the_same() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let json = gunzip(&snaps[5].1);
    // The same export as plain JSON (file:// URL), gzip, and a ZIP holding it (as the full dumps come).
    let plain = dir.path().join("recent.json");
    std::fs::write(&plain, &json).unwrap();
    let zip_path = dir.path().join("recent.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        z.start_file("recent.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&json).unwrap();
        z.finish().unwrap();
    }
    let mut results = Vec::new();
    for (i, input) in [None, Some(snaps[5].1.clone()), Some(zip_path)]
        .into_iter()
        .enumerate()
    {
        let data = dir.path().join(format!("data{i}"));
        let mut cfg = default_config("http://127.0.0.1:1", &data);
        cfg.sources[0].path = None;
        cfg.sources[0].url = Some(url::Url::from_file_path(&plain).unwrap().to_string());
        let (app, _) = app(cfg, snaps[5].0);
        let s = app
            .pull_source("threatfox-recent", input.as_deref())
            .unwrap();
        let st = app.store().unwrap();
        results.push((s.rows, s.accepted, store::all_iocs(&st.conn).unwrap()));
    }
    assert!(results[0].0 > 4000);
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
}
