//! Shared test helpers: the real ThreatFox fixtures in `../shared`, a loopback upstream that serves recorded
//! bytes, a real iocfeed HTTP server on port 0, and a raw HTTP/1.1 client (what Unbound's fetcher sends).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use iocfeed::clock::FixedClock;
use iocfeed::config::{Config, DEFAULT_CONFIG};
use iocfeed::App;

/// `../shared`, beside the checkout (as CI lays it out).
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The 24 recent-export snapshots, oldest first, with their capture times.
pub fn snapshots() -> Vec<(DateTime<Utc>, PathBuf)> {
    let dir = shared().join("fixtures/threatfox/recent-json");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (tests need ../shared beside the checkout)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json.gz"))
        .map(|p| {
            let stem = p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".json.gz", "");
            let t = NaiveDateTime::parse_from_str(&stem, "%Y%m%dT%H%M%S")
                .unwrap()
                .and_utc();
            (t, p)
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 24, "expected 24 snapshots in {}", dir.display());
    out
}

/// A snapshot decompressed, as the live export is plain JSON.
pub fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The embedded default configuration, pointed at `base_url`, with data in `data_dir`.
pub fn default_config(base_url: &str, data_dir: &Path) -> Config {
    let mut c = Config::parse("default", DEFAULT_CONFIG).unwrap();
    c.threatfox.base_url = base_url.to_string();
    c.server.data_dir = data_dir.to_path_buf();
    c
}

pub fn app(config: Config, now: DateTime<Utc>) -> (Arc<App>, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(now));
    (Arc::new(App::new(config, clock.clone())), clock)
}

// ------------------------------------------------------------------------------- fake upstream server

/// A loopback HTTP server that answers one path with whatever bytes it is given (recorded real data).
pub struct Upstream {
    pub addr: SocketAddr,
    state: Arc<Mutex<UpstreamState>>,
}

#[derive(Default)]
struct UpstreamState {
    routes: HashMap<String, Vec<u8>>,
    requests: usize,
}

impl Upstream {
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(UpstreamState::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).is_err() {
                        return;
                    }
                    let mut inm = None;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("if-none-match") {
                                inm = Some(v.trim().to_string());
                            }
                        }
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .to_string();
                    let body = {
                        let mut s = st.lock().unwrap();
                        s.requests += 1;
                        s.routes.get(&path).cloned()
                    };
                    let resp = match body {
                        Some(b) => {
                            let etag = format!("\"{:x}\"", md5ish(&b));
                            if inm.as_deref() == Some(etag.as_str()) {
                                format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n").into_bytes()
                            } else {
                                let mut r = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
                                    b.len()
                                )
                                .into_bytes();
                                r.extend_from_slice(&b);
                                r
                            }
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = conn.write_all(&resp);
                });
            }
        });
        Upstream { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), body);
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

/// A cheap content hash for the fake upstream's ETags.
fn md5ish(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, x| {
        (h ^ *x as u64).wrapping_mul(0x100000001b3)
    })
}

pub const RECENT_PATH: &str = "/export/json/recent/";

/// Replays snapshots `range` through the fake upstream, pulling `threatfox-recent` after each with the clock
/// at the capture time.
pub fn replay(
    app: &App,
    clock: &FixedClock,
    upstream: &Upstream,
    snaps: &[(DateTime<Utc>, PathBuf)],
) {
    for (t, p) in snaps {
        upstream.set(RECENT_PATH, gunzip(p));
        clock.set(*t);
        app.pull_source("threatfox-recent", None)
            .unwrap_or_else(|e| panic!("pull of {}: {e}", p.display()));
    }
}

// ------------------------------------------------------------------------------------ iocfeed server

/// A real iocfeed HTTP server on a loopback port, stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(app: Arc<App>) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                iocfeed::serve::run(listener, app, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        TestServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----------------------------------------------------------------------------------- raw HTTP client

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// Sends one HTTP/1.1 request with only `Host`, `Connection: close` and the given headers.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body,
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, &[])
}

// ------------------------------------------------------------------------------------ external tools

/// True when `tool` is on PATH. When it is not: false, unless IOCFEED_REQUIRE_EXTERNAL=1, which fails the test.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found && std::env::var("IOCFEED_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("{tool} is required (IOCFEED_REQUIRE_EXTERNAL=1) but not installed");
    }
    if !found {
        eprintln!("note: {tool} not installed; this check did not run");
    }
    found
}

/// A source read from a local file: `toml` gives its keys (name, kind, …) but the schedule and the URL.
#[allow(dead_code)]
pub fn file_source(toml: &str, file: &Path) -> iocfeed::config::SourceConfig {
    let url = url::Url::from_file_path(file).unwrap().to_string();
    toml::from_str(&format!(
        "{toml}\nschedule = \"0 4 * * *\"\nurl = {url:?}\n"
    ))
    .unwrap()
}

/// The iocfeed binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iocfeed"))
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes every retained STIX version of every list of `app` into `dir` and validates them all (when the
/// validator is installed); returns how many were checked.
#[allow(dead_code)]
pub fn validate_every_stix(app: &App, dir: &Path) -> usize {
    if !have_tool("stix2_validator") {
        return 0;
    }
    let st = app.store().unwrap();
    let mut files = Vec::new();
    for l in app
        .config
        .lists
        .iter()
        .filter(|l| l.formats.contains(&iocfeed::config::Format::Stix))
    {
        for ver in iocfeed::store::versions(&st.conn, &l.name).unwrap() {
            let a = iocfeed::store::artifact(&st.conn, &l.name, ver.version, "stix")
                .unwrap()
                .unwrap();
            let f = dir.join(format!("{}-v{}.stix.json", l.name, ver.version));
            std::fs::write(&f, a.body).unwrap();
            files.push(f);
        }
    }
    if !files.is_empty() {
        validate_stix(&files);
    }
    files.len()
}

/// Runs the OASIS STIX 2.1 validator on `files`; every one must be valid.
pub fn validate_stix(files: &[std::path::PathBuf]) {
    let out = Command::new("stix2_validator")
        .args(["--version", "2.1", "--strict-types"])
        .args(files)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stix2_validator:\n{text}");
    assert_eq!(text.matches("[X]").count(), 0, "{text}");
    assert!(text.matches("[+]").count() >= files.len(), "{text}");
}

// ------------------------------------------------------------------ programmable upstream (faults, API)

/// A request as the fake upstream saw it.
#[derive(Clone, Debug, Default)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake upstream does with a request.
pub enum Reply {
    /// Write these bytes (a whole raw HTTP response) and close.
    Raw(Vec<u8>),
    /// Write these bytes, then hold the connection open for this long without a word.
    Stall(Vec<u8>, Duration),
    /// Write these bytes, then one space every interval, this many times.
    Trickle(Vec<u8>, Duration, usize),
}

impl Reply {
    pub fn ok(content_type: &str, body: &[u8]) -> Reply {
        Reply::status(200, content_type, body, &[])
    }
    pub fn status(code: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Reply {
        let mut head = format!("HTTP/1.1 {code} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        Reply::Raw(out)
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

/// A loopback HTTP server whose answers a test programs; it records every request.
pub struct FakeHttp {
    pub addr: SocketAddr,
    handler: Arc<Mutex<Handler>>,
    pub seen: Arc<Mutex<Vec<Req>>>,
}

impl FakeHttp {
    pub fn start(handler: Handler) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(Mutex::new(handler));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, sn) = (handler.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (h, sn) = (h.clone(), sn.clone());
                std::thread::spawn(move || serve_one(conn, h, sn));
            }
        });
        FakeHttp {
            addr,
            handler,
            seen,
        }
    }

    pub fn set(&self, handler: Handler) {
        *self.handler.lock().unwrap() = handler;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve_one(mut conn: TcpStream, handler: Arc<Mutex<Handler>>, seen: Arc<Mutex<Vec<Req>>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let mut req = Req {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("/").to_string(),
        ..Default::default()
    };
    loop {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            req.headers
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    req.body = body;
    seen.lock().unwrap().push(req.clone());
    let h = handler.lock().unwrap().clone();
    match h(&req) {
        Reply::Raw(bytes) => {
            let _ = conn.write_all(&bytes);
        }
        Reply::Stall(bytes, d) => {
            let _ = conn.write_all(&bytes);
            let _ = conn.flush();
            std::thread::sleep(d);
        }
        Reply::Trickle(bytes, every, times) => {
            let _ = conn.write_all(&bytes);
            for _ in 0..times {
                if conn.write_all(b" ").and_then(|()| conn.flush()).is_err() {
                    break;
                }
                std::thread::sleep(every);
            }
        }
    }
}

// ------------------------------------------------------------------------- synthetic ThreatFox exports

/// One report in the ThreatFox JSON export's shape (threat type botnet_cc, no last_seen, not compromised).
pub fn tf_report(
    id: u64,
    value: &str,
    ioc_type: &str,
    family: &str,
    confidence: u8,
    first_seen: &str,
) -> serde_json::Value {
    serde_json::json!({"id": id, "ioc_value": value, "ioc_type": ioc_type, "threat_type": "botnet_cc",
           "malware": format!("win.{}", family.to_lowercase()), "malware_alias": null, "malware_printable": family,
           "first_seen_utc": first_seen, "last_seen_utc": null, "confidence_level": confidence,
           "is_compromised": false, "reference": null, "tags": null, "anonymous": 0, "reporter": "reporter001"})
}

/// A ThreatFox JSON export (object keyed by IOC id, one-element arrays) holding `reports`.
pub fn tf_export(reports: &[serde_json::Value]) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    for r in reports {
        m.insert(r["id"].to_string(), serde_json::json!([r]));
    }
    serde_json::to_vec(&serde_json::Value::Object(m)).unwrap()
}
