//! Every way an upstream fails (connect timeout, slow body, 5xx, 429 with Retry-After, HTML with 200,
//! truncated JSON and ZIP, invalid UTF-8, a body over the cap, a redirect loop). For each: the pull fails
//! with one line naming the source and URL, the list keeps its bytes and version, `/sources` and `/readyz`
//! show the failure, and the scheduler retries on the backoff schedule, driven by a set clock.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use iocfeed::store;

struct Scheduler {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scheduler {
    fn start(app: Arc<iocfeed::App>) -> Scheduler {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(iocfeed::scheduler::run(app, rx));
        });
        Scheduler {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 10, 12, 0, 0).unwrap()
}

/// Runs one fault: a good pull from a file, then scheduled pulls from `base_url` failing with `expect` in
/// their error, retried after `first` and then `second` seconds.
fn fault(
    base_url: &str,
    tweak: impl Fn(&mut iocfeed::config::SourceConfig),
    expect: &str,
    first: i64,
    second: i64,
) {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config(base_url, dir.path());
    cfg.sources.retain(|s| s.name == "threatfox-recent");
    cfg.sources[0].connect_timeout_secs = 1;
    cfg.sources[0].read_timeout_secs = 1;
    tweak(&mut cfg.sources[0]);
    let (app, clock) = app(cfg, t0());
    let good = dir.path().join("good.json");
    std::fs::write(&good, gunzip(&snaps[3].1)).unwrap();
    app.pull_source("threatfox-recent", Some(&good)).unwrap();
    let server = TestServer::start(app.clone());
    let before = get(server.addr, "/lists/remus-domains.txt");
    assert_eq!(before.header("x-iocfeed-version"), Some("1"));

    let _sched = Scheduler::start(app.clone());
    let slot = Utc.with_ymd_and_hms(2026, 7, 10, 12, 15, 0).unwrap();
    wait_for("the first scheduled pull", || {
        (app.next_pull("threatfox-recent") == Some(slot.timestamp())).then_some(())
    });
    clock.set(slot);
    let retry1 = wait_for("the first failure", || {
        (app.failures("threatfox-recent") == 1)
            .then(|| app.next_pull("threatfox-recent"))
            .flatten()
    });
    assert_eq!(retry1, slot.timestamp() + first, "first retry");

    // The failure, in one line naming the source and URL.
    let st = app.store().unwrap();
    let state = store::source_state(&st.conn, "threatfox-recent").unwrap();
    let error = state.last_error.clone().unwrap();
    assert!(!error.contains('\n'));
    assert!(
        error.to_lowercase().contains(&expect.to_lowercase()),
        "{error:?} lacks {expect:?}"
    );
    // The list is untouched; /sources and /readyz show the failure.
    let now = get(server.addr, "/lists/remus-domains.txt");
    assert_eq!(now.body, before.body);
    assert_eq!(now.header("x-iocfeed-version"), Some("1"));
    let sources: serde_json::Value =
        serde_json::from_slice(&get(server.addr, "/sources").body).unwrap();
    assert_eq!(sources[0]["result"], "error");
    assert_eq!(sources[0]["error"].as_str(), Some(error.as_str()));
    assert_eq!(
        sources[0]["next_pull"].as_str().unwrap(),
        iocfeed::clock::iso(retry1)
    );
    let ready = get(server.addr, "/readyz").text();
    assert!(
        ready.contains("warning: source threatfox-recent failing (1 in a row)"),
        "{ready}"
    );

    // The retry comes when the clock reaches it, and backs off again.
    clock.set(DateTime::from_timestamp(retry1, 0).unwrap());
    let retry2 = wait_for("the second failure", || {
        (app.failures("threatfox-recent") == 2)
            .then(|| app.next_pull("threatfox-recent"))
            .flatten()
    });
    assert_eq!(retry2, retry1 + second, "second retry");
    assert_eq!(
        get(server.addr, "/lists/remus-domains.txt").body,
        before.body
    );

    // The error a pull returns (and the scheduler logs) is that one line, naming the source and URL.
    let url = format!("{}/export/json/recent/", base_url.trim_end_matches('/'));
    let e = app
        .pull_source("threatfox-recent", None)
        .unwrap_err()
        .to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.starts_with(&format!("pull threatfox-recent from {url} failed: ")),
        "{e}"
    );
    assert!(e.to_lowercase().contains(&expect.to_lowercase()), "{e}");
}

fn fake(reply: impl Fn(&Req) -> Reply + Send + Sync + 'static) -> FakeHttp {
    FakeHttp::start(Arc::new(reply))
}

#[test]
fn connect_timeout() {
    // A listener whose accept queue is full: the kernel drops further SYNs, so connecting times out.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let _fill: Vec<_> = (0..4)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok()
        })
        .collect();
    fault(
        &format!("http://{addr}"),
        |_| {},
        "connect error: connection timed out",
        30,
        60,
    );
    drop(sock);
}

#[test]
fn slow_body() {
    let f = fake(|_| {
        Reply::Stall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"1\": [".to_vec(), Duration::from_secs(4))
    });
    fault(&f.url(""), |_| {}, "timed out reading response", 30, 60);
}

#[test]
fn server_error_5xx() {
    let f = fake(|_| {
        Reply::status(
            502,
            "text/html",
            b"<html><body>502 Bad Gateway</body></html>",
            &[],
        )
    });
    fault(&f.url(""), |_| {}, "HTTP 502", 30, 60);
}

#[test]
fn too_many_requests_honours_retry_after() {
    let f = fake(|_| Reply::status(429, "text/plain", b"slow down", &[("Retry-After", "120")]));
    fault(&f.url(""), |_| {}, "HTTP 429 (Retry-After 120s)", 120, 120);
}

#[test]
fn html_page_with_200() {
    let f = fake(|_| {
        Reply::ok(
            "text/html",
            b"<!DOCTYPE html><html><head><title>Maintenance</title></head></html>",
        )
    });
    fault(&f.url(""), |_| {}, "got an HTML page", 30, 60);
}

#[test]
fn truncated_json() {
    let snap = gunzip(&snapshots()[5].1);
    let cut = snap[..snap.len() / 2].to_vec();
    let f = fake(move |_| Reply::ok("application/json", &cut));
    fault(
        &f.url(""),
        |_| {},
        "invalid JSON: EOF while parsing",
        30,
        60,
    );
}

#[test]
fn truncated_zip() {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("full.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&gunzip(&snapshots()[5].1)).unwrap();
        z.finish().unwrap();
    }
    let bytes = buf.into_inner();
    let cut = bytes[..bytes.len() * 2 / 3].to_vec();
    let f = fake(move |_| Reply::ok("application/zip", &cut));
    fault(&f.url(""), |_| {}, "invalid ZIP", 30, 60);
}

#[test]
fn invalid_utf8() {
    let body = b"{\"1\": [{\"ioc_value\": \"bad\xff\xfe.example.com\", \"ioc_type\": \"domain\"}]}"
        .to_vec();
    let f = fake(move |_| Reply::ok("application/json", &body));
    fault(
        &f.url(""),
        |_| {},
        "invalid JSON: invalid unicode code point",
        30,
        60,
    );
}

#[test]
fn body_over_the_cap() {
    // Larger than the cap only on the wire: the good pull (a few MB) stays under it.
    let mut body = gunzip(&snapshots()[5].1);
    body.extend(std::iter::repeat_n(b' ', 9_000_000));
    let f = fake(move |_| Reply::ok("application/json", &body));
    fault(
        &f.url(""),
        |s| s.max_bytes = 8_000_000,
        "body larger than the 8000000-byte cap",
        30,
        60,
    );
}

#[test]
fn redirect_loop() {
    let f = fake(|r| Reply::status(302, "text/plain", b"", &[("Location", r.path.as_str())]));
    fault(&f.url(""), |_| {}, "redirect", 30, 60);
}

#[test]
fn trickling_body_hits_the_overall_deadline() {
    // One byte every 300 ms never trips the 1 s read timeout; the 2 s deadline for the whole body stops it.
    let f = FakeHttp::start(Arc::new(|_: &Req| {
        Reply::Trickle(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                .to_vec(),
            Duration::from_millis(300),
            60,
        )
    }));
    fault(
        &f.url(""),
        |s| s.total_timeout_secs = 2,
        "took longer than 2 s",
        30,
        60,
    );
}
