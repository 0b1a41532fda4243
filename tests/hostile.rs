//! Property test: arbitrary strings (unicode, controls, quotes, newlines, `$INCLUDE`, `;`, `=`) as values of
//! every type, and in every other field, through real pulls. Every rendered txt, rpz and csv line must still
//! match its format's grammar, and every RPZ must pass `named-checkzone` where BIND's tools are installed.

mod common;

use std::net::IpAddr;
use std::process::Command;

use common::*;
use iocfeed::config::ListConfig;
use iocfeed::store;
use serde_json::{json, Value};

/// xorshift64*: deterministic, so a failure replays with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PIECES: &[&str] = &[
    "a",
    "evil",
    "c2",
    "0",
    "9",
    "-",
    "_",
    ".",
    "..",
    "com",
    "example",
    "co.uk",
    "xn--",
    "ü",
    "münchen",
    "中国",
    "\u{200d}",
    "\u{202e}",
    "😀",
    "\n",
    "\r\n",
    "\t",
    "\0",
    "\x1b[31m",
    " ",
    "\"",
    "'",
    "`",
    "\\",
    ";",
    "=",
    "+",
    "@",
    "*",
    "*.",
    "$INCLUDE /etc/passwd",
    "$ORIGIN .",
    "$TTL 0",
    "CNAME",
    " CNAME rpz-passthru.",
    "rpz-ip",
    "32.1.2.3.4",
    ":",
    "::",
    "[",
    "]",
    "/",
    "?q=",
    "#",
    "%00",
    "http://",
    "https://",
    "1.2.3.4",
    "45.192.105.203",
    ":8080",
    "2a01:4f8::1",
    "=HYPERLINK(\"x\")",
    "@SUM(1)",
    "+cmd",
    "-2",
    "\u{feff}",
    "<script>",
    "ﬁ",
    "ǅ",
    "İ",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

const TYPES: &[&str] = &[
    "domain",
    "ip:port",
    "url",
    "md5_hash",
    "sha1_hash",
    "sha256_hash",
    "weird",
];

/// A hostile string: pieces glued together, sometimes around a valid-looking core.
fn hostile(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..1 + rng.below(6) {
        s.push_str(rng.pick(PIECES));
    }
    match rng.below(4) {
        0 => format!("{s}.example.com"),
        1 => format!("http://{s}.example.net:8080/{s}"),
        2 => format!("{}.{s}", rng.below(255)),
        _ => s,
    }
}

fn list(name: &str, types: &[&str], formats: &[&str]) -> ListConfig {
    toml::from_str(&format!(
        "name = {name:?}\ntypes = {types:?}\nformats = {formats:?}\n"
    ))
    .unwrap()
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').count() >= 2 && s.split('.').all(is_label)
}

fn check_txt_line(t: &str, line: &str) {
    let ok = match t {
        "domain" => is_name(line),
        "ip" => line
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_string() == line),
        "url" => {
            !line.is_empty()
                && line.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'"')
                && line.contains("://")
        }
        "md5" => {
            line.len() == 32
                && line
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        "sha1" => {
            line.len() == 40
                && line
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        "sha256" => {
            line.len() == 64
                && line
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        _ => false,
    };
    assert!(ok, "txt line {line:?} is not a {t}");
}

fn check_rpz(zone: &str) {
    let mut lines = zone.lines();
    let ttl = lines.next().unwrap();
    assert!(
        ttl.strip_prefix("$TTL ")
            .is_some_and(|n| n.parse::<u32>().is_ok()),
        "{ttl:?}"
    );
    let soa: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(
        &soa[..5],
        ["@", "IN", "SOA", "localhost.", "hostmaster.localhost."]
    );
    assert!(soa[5..].iter().all(|n| n.parse::<u32>().is_ok()) && soa.len() == 10);
    assert_eq!(lines.next(), Some("@ IN NS localhost."));
    for line in lines {
        let (owner, target) = line
            .split_once(" CNAME ")
            .unwrap_or_else(|| panic!("rpz line {line:?}"));
        assert_eq!(target, ".", "{line:?}");
        let bare = owner.strip_prefix("*.").unwrap_or(owner);
        let ok = if let Some(ip) = bare.strip_suffix(".rpz-ip") {
            let parts: Vec<&str> = ip.split('.').collect();
            (parts[0] == "32"
                && parts.len() == 5
                && parts[1..].iter().all(|p| p.parse::<u8>().is_ok()))
                || (parts[0] == "128"
                    && parts[1..].iter().all(|p| {
                        *p == "zz" || (p.len() <= 4 && p.bytes().all(|b| b.is_ascii_hexdigit()))
                    }))
        } else {
            is_name(bare)
        };
        assert!(ok, "rpz line {line:?}");
    }
}

fn check_csv(csv: &str) {
    assert!(csv.ends_with("\r\n") || csv.is_empty());
    for (i, line) in csv.split("\r\n").filter(|l| !l.is_empty()).enumerate() {
        assert!(
            !line.contains(['\r', '\n']),
            "control inside a row: {line:?}"
        );
        let mut cells = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    cells.last_mut().unwrap().push('"');
                }
                ('"', true) => {
                    quoted = false;
                    assert!(
                        matches!(chars.peek(), None | Some(',')),
                        "text after a closing quote: {line:?}"
                    );
                }
                ('"', false) => {
                    assert!(
                        cells.last().unwrap().is_empty(),
                        "quote inside an unquoted cell: {line:?}"
                    );
                    quoted = true;
                }
                (',', false) => cells.push(String::new()),
                (c, _) => cells.last_mut().unwrap().push(c),
            }
        }
        assert!(!quoted, "unterminated quote: {line:?}");
        assert_eq!(cells.len(), 10, "row {i}: {line:?}");
        for c in &cells {
            assert!(
                !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {c:?}"
            );
            assert!(
                !c.chars().any(|ch| ch.is_control()),
                "control in cell {c:?}"
            );
        }
    }
}

#[test]
fn hostile_values_never_break_a_format() {
    let checkzone = have_tool("named-checkzone");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = default_config("http://127.0.0.1:1", &dir.path().join("data"));
    let every = ["txt", "csv", "json", "stix", "kql", "edl"];
    cfg.lists.push(list(
        "all-domains",
        &["domain"],
        &[&every[..], &["rpz", "hosts"]].concat(),
    ));
    cfg.lists
        .push(list("all-ips", &["ip"], &[&every[..], &["rpz"]].concat()));
    cfg.lists.push(list("all-urls", &["url"], &every));
    cfg.lists
        .push(list("all-hashes", &["md5", "sha1", "sha256"], &every));
    let stix = have_tool("stix2_validator");
    let mut stix_files = Vec::new();
    // A set clock just after the reports' first_seen: the run is the same on any day it runs.
    let (app, clock) = app(
        cfg,
        chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .into(),
    );
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut accepted = 0;
    for round in 0..6 {
        let mut reports = serde_json::Map::new();
        for i in 0..400 {
            let t = rng.pick(TYPES);
            let value = match (t, rng.below(3)) {
                // Valid-looking values with hostile decorations keep the lists from being empty.
                ("domain", 0) => format!("{}.remus-prop.example", rng.below(100_000)),
                ("ip:port", 0) => format!(
                    "{}.{}.{}.{}:{}",
                    1 + rng.below(222),
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                    rng.below(70_000)
                ),
                ("url", 0) => format!(
                    "http://{}.remus-prop.example/{}",
                    rng.below(1000),
                    hostile(&mut rng)
                ),
                ("md5_hash", 0) => format!("{:032x}", rng.next() as u128 * rng.next() as u128),
                ("sha1_hash", 0) => format!(
                    "{:016x}{:016x}{:08x}",
                    rng.next(),
                    rng.next(),
                    rng.below(1 << 31)
                ),
                ("sha256_hash", 0) => format!(
                    "{:016x}{:016x}{:016x}{:016x}",
                    rng.next(),
                    rng.next(),
                    rng.next(),
                    rng.next()
                ),
                _ => hostile(&mut rng),
            };
            let family = if rng.below(2) == 0 {
                "Remus".to_string()
            } else {
                hostile(&mut rng)
            };
            reports.insert(
                format!("{}", round * 1000 + i),
                json!([{
                    "ioc_value": value, "ioc_type": t, "threat_type": if rng.below(2) == 0 { "botnet_cc".to_string() } else { hostile(&mut rng) },
                    "malware": "win.remus", "malware_alias": hostile(&mut rng), "malware_printable": family,
                    "first_seen_utc": "2026-12-01 10:00:00", "last_seen_utc": null, "confidence_level": 100,
                    "is_compromised": rng.below(5) == 0, "reference": hostile(&mut rng), "tags": hostile(&mut rng),
                    "anonymous": 0, "reporter": hostile(&mut rng)
                }]),
            );
        }
        let f = dir.path().join(format!("round{round}.json"));
        std::fs::write(&f, serde_json::to_vec(&Value::Object(reports)).unwrap()).unwrap();
        clock.advance(chrono::Duration::minutes(10));
        let s = app.pull_source("threatfox-recent", Some(&f)).unwrap();
        accepted += s.accepted;
        assert_eq!(s.rows, 400);
    }
    assert!(
        accepted > 300,
        "too few accepted ({accepted}) to exercise the renderers"
    );

    let st = app.store().unwrap();
    // The renderers had entries of every type to write, hostile decorations and all.
    for (name, at_least) in [
        ("all-domains", 100),
        ("all-ips", 100),
        ("all-urls", 40),
        ("all-hashes", 200),
    ] {
        let v = store::latest_version(&st.conn, name).unwrap().unwrap();
        assert!(v.entries >= at_least, "{name}: {} entries", v.entries);
    }
    let hashes = store::latest_version(&st.conn, "all-hashes")
        .unwrap()
        .unwrap();
    for len in [32, 40, 64] {
        assert!(
            hashes.members.lines().any(|h| h.len() == len),
            "no hash of {len} hex digits"
        );
    }
    let mut rpz_checked = 0;
    for l in &app.config.lists {
        for v in store::versions(&st.conn, &l.name).unwrap() {
            for f in &l.formats {
                let body = store::artifact(&st.conn, &l.name, v.version, f.as_str())
                    .unwrap()
                    .unwrap()
                    .body;
                let text = String::from_utf8(body).expect("every artifact is UTF-8");
                match f.as_str() {
                    "txt" => {
                        for line in text.lines() {
                            let t = if l.types.len() == 1 {
                                l.types[0].as_str()
                            } else {
                                iocfeed::normalise::guess_type(line)
                            };
                            check_txt_line(if t == "ip:port" { "ip" } else { t }, line);
                        }
                    }
                    "rpz" => {
                        check_rpz(&text);
                        if checkzone {
                            let p = dir.path().join("z.rpz");
                            std::fs::write(&p, &text).unwrap();
                            let out = Command::new("named-checkzone")
                                .args(["-k", "fail", "-n", "fail"])
                                .arg(l.rpz_zone())
                                .arg(&p)
                                .output()
                                .unwrap();
                            assert!(
                                out.status.success(),
                                "{} v{}: {}",
                                l.name,
                                v.version,
                                String::from_utf8_lossy(&out.stdout)
                            );
                            rpz_checked += 1;
                        }
                    }
                    "csv" => check_csv(&text),
                    "json" => check_json(&text),
                    "hosts" => text.lines().for_each(|l| {
                        check_txt_line("domain", l.strip_prefix("0.0.0.0 ").unwrap())
                    }),
                    "edl" => check_edl(&l.types, &text),
                    "kql" => check_kql(&text),
                    "stix" => {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(v["type"], "bundle");
                        if stix {
                            let p = dir.path().join(format!(
                                "{}-v{}.stix.json",
                                l.name,
                                v["id"].as_str().unwrap()
                            ));
                            std::fs::write(&p, &text).unwrap();
                            stix_files.push(p);
                        }
                    }
                    other => panic!("unexpected format {other}"),
                }
            }
        }
    }
    if checkzone {
        assert!(rpz_checked >= 10, "{rpz_checked}");
    }
    if stix {
        assert!(stix_files.len() >= 10);
        validate_stix(&stix_files);
    }
}

fn check_json(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap();
    for e in v.as_array().unwrap() {
        let t = e["type"].as_str().unwrap();
        check_txt_line(t, e["value"].as_str().unwrap());
    }
}

fn check_edl(types: &[String], text: &str) {
    for line in text.lines() {
        let bare = line.strip_prefix("*.").unwrap_or(line);
        match types[0].as_str() {
            "domain" => check_txt_line("domain", bare),
            "url" => {
                // No scheme before the host (PAN-OS URL form); the path may hold anything printable.
                let host = line.split('/').next().unwrap();
                assert!(
                    !host.is_empty()
                        && !host.ends_with(':')
                        && line.bytes().all(|b| (0x21..0x7f).contains(&b)),
                    "{line:?}"
                )
            }
            "ip" => check_txt_line("ip", line),
            _ => check_txt_line(iocfeed::normalise::guess_type(line), line),
        }
    }
}

/// Every KQL string literal is a validated value: no quote or backslash escapes out of it.
fn check_kql(text: &str) {
    for line in text.lines().filter(|l| l.starts_with("let ")) {
        let inner = line
            .split_once("dynamic([")
            .unwrap()
            .1
            .strip_suffix("]);")
            .unwrap();
        if inner.is_empty() {
            continue;
        }
        for item in inner.split(", ") {
            let v = item
                .strip_prefix('"')
                .and_then(|i| i.strip_suffix('"'))
                .unwrap_or_else(|| panic!("{item:?}"));
            assert!(!v.contains('"') && !v.contains('\\'), "{v:?}");
        }
    }
}
