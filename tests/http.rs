//! HTTP caching and routing (SPEC §10.1–§10.3, §10.5) against a real server on loopback.

mod common;

use std::io::Read;

use common::*;

/// A server with two published versions of remus-domains (snapshots 1–3, then 4, which adds domains).
fn setup() -> (tempfile::TempDir, TestServer, std::sync::Arc<iocfeed::App>) {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let (app, clock) = app(default_config(&upstream.base_url(), dir.path()), snaps[0].0);
    replay(&app, &clock, &upstream, &snaps[..4]);
    let server = TestServer::start(app.clone());
    (dir, server, app)
}

#[test]
fn caching_conditionals_head_gzip_and_404s() {
    let (_dir, server, _app) = setup();
    let a = server.addr;

    // Plain GET over HTTP/1.1 with nothing but Host works (Unbound's fetcher).
    let cur = get(a, "/lists/remus-domains.txt");
    assert_eq!(cur.status, 200);
    assert_eq!(cur.header("x-iocfeed-version"), Some("2"));
    assert_eq!(cur.header("content-encoding"), None);
    assert_eq!(cur.header("vary"), Some("Accept-Encoding"));
    assert_eq!(cur.header("cache-control"), Some("public, no-cache"));
    let etag = cur.header("etag").unwrap().to_string();
    let last_modified = cur.header("last-modified").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    assert!(cur.text().contains("beltka.shop\n"));

    // 304 on If-None-Match and on If-Modified-Since, with no body.
    let r = request(
        a,
        "GET",
        "/lists/remus-domains.txt",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = request(
        a,
        "GET",
        "/lists/remus-domains.txt",
        &[("If-Modified-Since", &last_modified)],
    );
    assert_eq!(r.status, 304);
    let r = request(
        a,
        "GET",
        "/lists/remus-domains.txt",
        &[("If-None-Match", "\"other\"")],
    );
    assert_eq!(r.status, 200);
    let r = request(
        a,
        "GET",
        "/lists/remus-domains.txt",
        &[("If-Modified-Since", "Thu, 01 Jan 2026 00:00:00 GMT")],
    );
    assert_eq!(r.status, 200);

    // HEAD: the same headers, no body.
    let h = request(a, "HEAD", "/lists/remus-domains.rpz", &[]);
    let g = get(a, "/lists/remus-domains.rpz");
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(
        h.header("content-length"),
        Some(g.body.len().to_string().as_str())
    );
    assert_eq!(h.header("etag"), g.header("etag"));

    // gzip only when accepted; byte-identical across requests; decompresses to the identity body.
    let z1 = request(
        a,
        "GET",
        "/lists/remus-domains.csv",
        &[("Accept-Encoding", "gzip, deflate")],
    );
    let z2 = request(
        a,
        "GET",
        "/lists/remus-domains.csv",
        &[("Accept-Encoding", "gzip")],
    );
    let plain = get(a, "/lists/remus-domains.csv");
    assert_eq!(z1.header("content-encoding"), Some("gzip"));
    assert_eq!(z1.body, z2.body);
    assert_ne!(z1.header("etag"), plain.header("etag"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&z1.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);
    assert_eq!(plain.header("content-encoding"), None);
    let no = request(
        a,
        "GET",
        "/lists/remus-domains.csv",
        &[("Accept-Encoding", "gzip;q=0")],
    );
    assert_eq!(no.header("content-encoding"), None);

    // Versioned URLs are immutable; v1 differs from the current v2.
    let v1 = get(a, "/lists/remus-domains/v1.txt");
    assert_eq!(v1.status, 200);
    assert_eq!(
        v1.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(v1.header("x-iocfeed-version"), Some("1"));
    assert!(!v1.text().contains("beltka.shop"));
    let v2 = get(a, "/lists/remus-domains/v2.txt");
    assert_eq!(v2.body, cur.body);
    assert_eq!(v2.header("etag"), Some(etag.as_str()));

    // Unknown list or format, missing version: 404 with one line.
    for path in [
        "/lists/nope.txt",
        "/lists/remus-domains.xml",
        "/lists/remus-urls.rpz",
        "/lists/remus-domains/v99.txt",
        "/lists/remus-domains/latest.txt",
        "/lists/nope/versions",
        "/nothing",
    ] {
        let r = get(a, path);
        assert_eq!(r.status, 404, "{path}");
        let t = r.text();
        assert!(
            t.starts_with("not found: ") && t.ends_with('\n') && t.matches('\n').count() == 1,
            "{path}: {t:?}"
        );
    }

    // The index and the version list.
    let idx: serde_json::Value = serde_json::from_slice(&get(a, "/lists").body).unwrap();
    let rd = idx
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "remus-domains")
        .unwrap();
    assert_eq!(rd["version"], 2);
    assert_eq!(rd["urls"]["rpz"], "/lists/remus-domains.rpz");
    // Far below Sentinel's 3.8 MB local upload limit.
    assert_eq!(rd["csv_over_sentinel_upload_limit"], false);
    assert!(rd["sizes"]["csv"].as_u64().unwrap() > 100);
    assert_eq!(
        rd["sizes"]["txt"].as_u64().unwrap() as usize,
        cur.body.len()
    );
    let vs: serde_json::Value =
        serde_json::from_slice(&get(a, "/lists/remus-domains/versions").body).unwrap();
    let vs = vs.as_array().unwrap();
    assert_eq!(vs.len(), 2);
    assert!(vs[1]["serial"].as_i64() > vs[0]["serial"].as_i64());

    assert_eq!(get(a, "/healthz").status, 200);
    assert_eq!(get(a, "/readyz").status, 200);
}

#[test]
fn readyz_is_503_until_something_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let (app, _clock) = app(
        default_config("http://127.0.0.1:1", dir.path()),
        chrono::Utc::now(),
    );
    app.store().unwrap();
    let server = TestServer::start(app);
    assert_eq!(get(server.addr, "/readyz").status, 503);
    assert_eq!(get(server.addr, "/lists").status, 200);
    assert_eq!(get(server.addr, "/lists/remus-domains.txt").status, 404);
}

#[test]
fn slow_and_surplus_connections_are_closed() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.server.max_connections = 4;
    cfg.server.header_timeout_secs = 1;
    let (app, _clock) = app(cfg, chrono::Utc::now());
    app.store().unwrap();
    let server = TestServer::start(app);

    // Four clients that send half a request and stall hold every connection...
    let mut stalled: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(server.addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a fifth is closed at once rather than queued behind them.
    let mut extra = std::net::TcpStream::connect(server.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = extra.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let n = extra.read_to_end(&mut buf).unwrap_or(0);
    assert_eq!(
        n,
        0,
        "a connection over the cap was served: {}",
        String::from_utf8_lossy(&buf)
    );

    // The stalled ones are dropped once the header timeout passes, and the server answers again.
    let start = Instant::now();
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = Vec::new();
        let _ = s.read_to_end(&mut b);
        assert!(
            !String::from_utf8_lossy(&b).contains("200 OK"),
            "a stalled request was answered"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "stalled connections held for {:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(server.addr, "/healthz").status, 200);
}

/// One client holding its share of slow connections does not lock the others out: the cap is per client
/// (127.0.0.1 and 127.0.0.2 are two clients on the loopback interface).
#[test]
fn one_client_cannot_take_every_connection() {
    use std::io::{Read, Write};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", dir.path());
    cfg.server.max_connections = 8;
    cfg.server.max_connections_per_client = 3;
    cfg.server.header_timeout_secs = 5;
    let (app, _clock) = app(cfg, chrono::Utc::now());
    app.store().unwrap();
    let server = TestServer::start(app);
    let from = |src: &str| {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let src: std::net::SocketAddr = format!("{src}:0").parse().unwrap();
        sock.bind(&src.into()).unwrap();
        sock.connect(&server.addr.into()).unwrap();
        let s: std::net::TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let ask = |mut s: std::net::TcpStream| {
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_string()
    };
    // 127.0.0.1 stalls three connections: its fourth is closed at once...
    let _stalled: Vec<std::net::TcpStream> = (0..3)
        .map(|_| {
            let mut s = from("127.0.0.1");
            s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ask(from("127.0.0.1")), "");
    // ...while another client is served, well within the server-wide cap.
    assert!(ask(from("127.0.0.2")).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn metrics_report_lists_sources_rejects_and_requests() {
    let (_dir, server, _app) = setup();
    get(server.addr, "/lists/remus-domains.txt");
    get(server.addr, "/lists/nope.txt");
    let m = get(server.addr, "/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    for line in [
        "iocfeed_pulls_total{source=\"threatfox-recent\",result=\"ok\"} 4",
        "iocfeed_source_failures{source=\"threatfox-recent\"} 0",
        "iocfeed_list_entries{list=\"remus-domains\"} 6",
        "iocfeed_list_version{list=\"remus-domains\"} 2",
        "iocfeed_http_requests_total{route=\"/lists/{file}\",status=\"200\"} 1",
        "iocfeed_http_requests_total{route=\"/lists/{file}\",status=\"404\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains(
            "iocfeed_rejects_total{source=\"threatfox-recent\",reason=\"reserved-address\"}"
        ),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("iocfeed_iocs{type=\"domain\",status=\"active\"} ")));
    // Every sample line is `name{labels} number`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, v) = l.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{l}");
    }
}

#[test]
fn restricted_lists_need_a_token_a_user_or_the_right_network() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start();
    let mut cfg = default_config(&upstream.base_url(), dir.path());
    std::env::set_var("IOCFEED_TEST_SOC_TOKEN", "from-the-environment-7781");
    let restrict = |name: &str, toml: &str, cfg: &mut iocfeed::config::Config| {
        let l = cfg.lists.iter_mut().find(|l| l.name == name).unwrap();
        l.access = toml::from_str::<toml::Value>(toml).unwrap()["access"]
            .clone()
            .try_into()
            .unwrap();
    };
    restrict("remus-domains", "access = { tokens = [\"t0ken-abc\", \"env:IOCFEED_TEST_SOC_TOKEN\"], basic = [\"soc:pa55\"] }", &mut cfg);
    restrict(
        "remus-ips",
        "access = { allow_from = [\"10.0.0.0/8\"] }",
        &mut cfg,
    );
    restrict(
        "remus-urls",
        "access = { allow_from = [\"127.0.0.0/8\", \"::1\"] }",
        &mut cfg,
    );
    let (app, clock) = app(cfg, snaps[0].0);
    replay(&app, &clock, &upstream, &snaps[..4]);
    let server = TestServer::start(app.clone());
    let a = server.addr;

    let r = get(a, "/lists/remus-domains.txt");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("Bearer"));
    assert_eq!(
        request(
            a,
            "GET",
            "/lists/remus-domains.txt",
            &[("Authorization", "Bearer wrong")]
        )
        .status,
        401
    );
    let ok = request(
        a,
        "GET",
        "/lists/remus-domains.txt",
        &[("Authorization", "Bearer t0ken-abc")],
    );
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("beltka.shop"));
    assert_eq!(ok.header("cache-control"), Some("private, no-cache"));
    assert_eq!(
        get(a, "/lists/remus-domains/v1.txt?token=t0ken-abc").status,
        200
    );
    assert_eq!(
        get(
            a,
            "/lists/remus-domains.rpz?token=from-the-environment-7781"
        )
        .status,
        200
    );
    // soc:pa55
    assert_eq!(
        request(
            a,
            "GET",
            "/lists/remus-domains.csv",
            &[("Authorization", "Basic c29jOnBhNTU=")]
        )
        .status,
        200
    );
    assert_eq!(get(a, "/lists/remus-domains/versions").status, 401);
    assert_eq!(get(a, "/lists/remus-domains/diff?from=1").status, 401);
    assert_eq!(
        get(a, "/lists/remus-domains/diff?from=1&token=t0ken-abc").status,
        200
    );
    // Network rules: loopback is not in 10.0.0.0/8, but is in 127.0.0.0/8.
    assert_eq!(get(a, "/lists/remus-ips.txt").status, 403);
    assert_eq!(get(a, "/lists/remus-urls.txt").status, 200);
    // Public lists stay public; the index says which are restricted.
    assert_eq!(get(a, "/lists/threatfox-botnet-cc-domains.txt").status, 200);
    let idx: serde_json::Value = serde_json::from_slice(&get(a, "/lists").body).unwrap();
    assert_eq!(idx[0]["access"], "restricted");
    assert_eq!(idx[3]["access"], "public");
    // Without its credentials a restricted list's entry count, version and sizes are not shown.
    assert!(
        idx[0]["entries"].is_null() && idx[0]["version"].is_null(),
        "{idx}"
    );
    assert_eq!(idx[0]["sizes"], serde_json::json!({}));
    assert!(idx[3]["entries"].as_i64().unwrap() > 0);
    let idx: serde_json::Value =
        serde_json::from_slice(&get(a, "/lists?token=t0ken-abc").body).unwrap();
    assert!(idx[0]["entries"].as_i64().unwrap() > 0, "{idx}");
    // Secrets never appear in `config show`.
    let shown = app.config.to_toml();
    assert!(
        !shown.contains("t0ken-abc") && !shown.contains("pa55"),
        "{shown}"
    );
    assert!(shown.contains("env:IOCFEED_TEST_SOC_TOKEN"));

    // The views that span every list would show what the restricted lists hold: closed while any list is
    // restricted and [server] access is not set; liveness, readiness and metrics stay open.
    let views = [
        "/iocs?value=beltka.shop",
        "/families",
        "/families/Remus/report.md",
        "/sources",
    ];
    for path in views {
        let r = get(a, path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.text().contains("[server] access"), "{path}: {}", r.text());
        assert!(!r.text().contains("beltka"));
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_ne!(get(a, path).status, 403, "{path}");
    }
    drop(server);
    // With [server] access, they take its credentials.
    let mut cfg = app.config.clone();
    cfg.server.access = Some(
        toml::from_str::<toml::Value>("access = { tokens = [\"soc-view-token\"] }").unwrap()
            ["access"]
            .clone()
            .try_into()
            .unwrap(),
    );
    let (app2, _) = common::app(cfg, snaps[3].0);
    let server = TestServer::start(app2);
    let a = server.addr;
    for path in views {
        assert_eq!(get(a, path).status, 401, "{path}");
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = get(a, &format!("{path}{sep}token=soc-view-token"));
        assert_eq!(r.status, 200, "{path}");
        let r = request(
            a,
            "GET",
            path,
            &[("Authorization", "Bearer soc-view-token")],
        );
        assert_eq!(r.status, 200, "{path}");
    }
    assert!(get(a, "/iocs?value=beltka.shop&token=soc-view-token")
        .text()
        .contains("\"remus-domains\""));
    // A list token opens its list, not the views.
    assert_eq!(get(a, "/families?token=t0ken-abc").status, 401);
}

/// `POST /admin/pull/{source}` starts a pull with the `[server] admin` credentials; off when unset.
#[test]
fn admin_pull_starts_a_pull_with_the_admin_token() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("inhouse.txt");
    std::fs::write(&feed, "c2-admin.evil-host.xyz\n").unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    cfg.sources
        .push(file_source("name = \"inhouse\"\nkind = \"text\"", &feed));
    let (off, _) = app(cfg.clone(), chrono::Utc::now());
    let server = TestServer::start(off);
    let r = request(server.addr, "POST", "/admin/pull/inhouse", &[]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("set [server] admin"), "{}", r.text());
    drop(server);

    cfg.server.admin = Some(
        toml::from_str::<toml::Value>("admin = { tokens = [\"adm1n-t0ken\"] }").unwrap()["admin"]
            .clone()
            .try_into()
            .unwrap(),
    );
    let (app, _) = app(cfg, chrono::Utc::now());
    app.store().unwrap();
    let server = TestServer::start(app.clone());
    let a = server.addr;
    assert_eq!(request(a, "POST", "/admin/pull/inhouse", &[]).status, 401);
    assert_eq!(
        request(
            a,
            "POST",
            "/admin/pull/inhouse",
            &[("Authorization", "Bearer nope")]
        )
        .status,
        401
    );
    assert_eq!(get(a, "/admin/pull/inhouse?token=adm1n-t0ken").status, 405);
    let auth = [("Authorization", "Bearer adm1n-t0ken")];
    assert_eq!(request(a, "POST", "/admin/pull/nosuch", &auth).status, 404);
    let r = request(a, "POST", "/admin/pull/inhouse", &auth);
    assert_eq!(r.status, 202, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s: serde_json::Value = serde_json::from_slice(&get(a, "/sources").body).unwrap();
        let inhouse = s
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "inhouse")
            .unwrap()
            .clone();
        if inhouse["result"] == "ok" {
            assert_eq!(inhouse["accepted"], 1);
            break;
        }
        assert!(Instant::now() < deadline, "{inhouse}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(app.never_pulled("threatfox-recent"));
}

/// A client that stops reading its responses does not keep its connection: a write that makes no progress
/// for `request_timeout_secs` closes it, and the client's slot is free again.
#[test]
fn a_client_that_stops_reading_loses_its_connection() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let (_dir, server, _app) = {
        let snaps = snapshots();
        let dir = tempfile::tempdir().unwrap();
        let upstream = Upstream::start();
        let mut cfg = default_config(&upstream.base_url(), dir.path());
        cfg.server.request_timeout_secs = 1;
        cfg.server.max_connections_per_client = 1;
        let (app, clock) = app(cfg, snaps[0].0);
        replay(&app, &clock, &upstream, &snaps[..4]);
        let server = TestServer::start(app.clone());
        (dir, server, app)
    };
    let addr = server.addr;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let stalled: std::net::TcpStream = sock.into();
    // Thousands of pipelined requests for the index (a few MB of answers), never read.
    let mut writer = stalled.try_clone().unwrap();
    std::thread::spawn(move || {
        let one = b"GET /lists HTTP/1.1\r\nHost: x\r\n\r\n";
        for _ in 0..3000 {
            if writer.write_all(one).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let fresh = || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_string()
    };
    // The stalled connection holds the client's one slot...
    assert_eq!(fresh(), "");
    // ...until its write times out.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if fresh().starts_with("HTTP/1.1 200 OK") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled connection was never closed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = stalled.shutdown(std::net::Shutdown::Both);
}
