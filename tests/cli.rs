//! The binary as a user runs it: `serve` on the embedded default with no network, `config check|show`,
//! and a `pull` run beside a running `serve` on the same data directory.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// A running `iocfeed serve`, killed on drop; its stderr lines arrive on `lines`.
struct Served {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(mut cmd: std::process::Command) -> Served {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = Served {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
            seen: Vec::new(),
        };
        let line = s.wait_line(|l| l.contains("listening on http://"));
        s.addr = line
            .split("listening on http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        s
    }

    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.seen.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no such line; stderr so far:\n{}", self.seen.join("\n")),
            }
        }
    }
}

#[test]
fn serve_on_the_embedded_default_without_network() {
    let dir = tempfile::tempdir().unwrap();
    // "No network": the ThreatFox base points at a closed loopback port, so every fetch fails at once.
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("IOCFEED_CONFIG")
        .env_remove("IOCFEED_DATA_DIR")
        .env("IOCFEED_THREATFOX_URL", "http://127.0.0.1:9");
    let mut s = Served::start(cmd);

    // It created its data directory and database in the working directory.
    assert!(dir.path().join("iocfeed-data/iocfeed.sqlite").exists());
    // Each source was pulled at once (never pulled before), failed, and said so in one line naming the URL.
    for (source, path) in [
        ("threatfox-recent", "/export/json/recent/"),
        ("threatfox-full", "/export/json/full/"),
    ] {
        let url = format!("http://127.0.0.1:9{path}");
        let line = s.wait_line(|l| l.contains(&format!("pull {source} from {url} failed:")));
        assert!(line.contains("WARN"), "{line}");
        // Followed by its retry plan, not by a continuation of the error.
        s.wait_line(|l| l.contains("pull will be retried") && l.contains(source));
    }
    // /lists still answers, with every list of the default and no version yet.
    let r = get(s.addr, "/lists");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "remus-domains",
            "remus-ips",
            "remus-urls",
            "threatfox-botnet-cc-domains"
        ]
    );
    assert!(v[0]["version"].is_null());
    assert_eq!(get(s.addr, "/healthz").status, 200);
    assert_eq!(get(s.addr, "/readyz").status, 503);
    let sources: serde_json::Value = serde_json::from_slice(&get(s.addr, "/sources").body).unwrap();
    assert_eq!(sources[0]["result"], "error");
    assert_eq!(sources[0]["url"], "http://127.0.0.1:9/export/json/recent/");
    assert!(
        sources[0]["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused"),
        "{sources}"
    );
}

#[test]
fn default_listen_address_and_config_commands() {
    let out = bin()
        .args(["config", "show"])
        .env_remove("IOCFEED_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    assert!(text.contains("schedule = \"*/15 * * * *\""), "{text}");
    assert!(text.contains("mode = \"full\""), "{text}");

    let out = bin()
        .args(["config", "check"])
        .env_remove("IOCFEED_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[list]]\nname = \"x\"\ntypes = [\"domain\"]\nformats = [\"txt\"]\nmin_confidnce = 3\n").unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml:8:") && err.contains("min_confidnce"),
        "{err}"
    );

    let out = bin().args(["pull", "no-such-source"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Mistakes that would otherwise fail quietly at run time are refused with the key and line: a list naming
/// a family nobody declared (it would select nothing), `config show`'s `<redacted>` pasted back as a token,
/// and (for the server only) an `env:` secret whose variable is unset (every client would get 401).
#[test]
fn quiet_config_mistakes_are_refused_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str, env: &[(&str, &str)]| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let mut cmd = bin();
        cmd.args(["config", "check", "--config"])
            .arg(&p)
            .env_remove("IOCFEED_TEST_TOKEN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        (out.status.code(), err)
    };
    let family = "[[family]]\nname = \"Remus\"\naliases = [\"win.remus\"]\n\n";
    let list = |extra: &str| {
        format!("[[list]]\nname = \"l\"\ntypes = [\"domain\"]\nformats = [\"txt\"]\n{extra}\n")
    };

    let (code, err) = check(
        "typo.toml",
        &(family.to_string() + &list("families = [\"Remsu\"]")),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "typo.toml:9: list[0].families: \"Remsu\" is not a [[family]] (declared: Remus)"
        ),
        "{err}"
    );
    // A family's alias names it too, in any case.
    let (code, err) = check(
        "alias.toml",
        &(family.to_string() + &list("families = [\"WIN.Remus\"]")),
        &[],
    );
    assert_eq!(code, Some(0), "{err}");

    let (code, err) = check(
        "redacted.toml",
        &list("access = { tokens = [\"<redacted>\"] }"),
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("redacted.toml:5: list[0].access.tokens:") && err.contains("env:NAME"),
        "{err}"
    );

    for (name, text, want) in [
        (
            "exclude.toml",
            "[[family]]\nname = \"Remus\"\nexclude = [\"com\"]\n".to_string(),
            "exclude.toml:3: family[0].exclude: \"com\" is a public suffix",
        ),
        (
            "admin.toml",
            "[server]\nadmin = \"public\"\n".to_string(),
            "admin.toml:2: server.admin: the admin routes cannot be public",
        ),
        (
            "basic.toml",
            "[[list]]\nname = \"l\"\ntypes = [\"domain\"]\nformats = [\"txt\"]\naccess = { basic = [\"fw:env:FW_PASS\"] }\n".to_string(),
            "basic.toml:5: list[0].access.basic: \"fw\": a password is not read from env: on its own",
        ),
        (
            "edl.toml",
            "[[list]]\nname = \"l\"\ntypes = [\"domain\", \"ip\"]\nformats = [\"edl\"]\n".to_string(),
            "edl.toml:4: list[0].formats: edl needs a list of one type",
        ),
        (
            "noname.toml",
            "[[family]]\nname = \"\"\n".to_string(),
            "noname.toml:2: family[0].name: a family needs a name",
        ),
        (
            "never.toml",
            "[[source]]\nname = \"s\"\nkind = \"text\"\nurl = \"file:///dev/null\"\nschedule = \"0 0 31 2 *\"\n".to_string(),
            "never.toml:5: source[0].schedule: \"0 0 31 2 *\" never fires",
        ),
        (
            "path.toml",
            "[[source]]\nname = \"s\"\nkind = \"text\"\npath = \"inhouse.txt\"\nschedule = \"0 4 * * *\"\n".to_string(),
            "path.toml:3: source[0].kind: `path` is joined to the ThreatFox base URL",
        ),
    ] {
        let (code, err) = check(name, &text, &[]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }

    // An API source without its key: valid, but said.
    let api = dir.path().join("api.toml");
    std::fs::write(
        &api,
        "[[source]]\nname = \"api\"\nkind = \"threatfox-api\"\nschedule = \"0 * * * *\"\n",
    )
    .unwrap();
    let out = bin()
        .args(["config", "check", "--config"])
        .arg(&api)
        .env_remove("THREATFOX_AUTH_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("warning: source \"api\" needs THREATFOX_AUTH_KEY, which is not set"));

    let secret = list("access = { tokens = [\"env:IOCFEED_TEST_TOKEN\"] }");
    let (code, err) = check("unset.toml", &secret, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("unset.toml:5: list[0].access.tokens: environment variable IOCFEED_TEST_TOKEN is not set"),
        "{err}"
    );
    let (code, err) = check("set.toml", &secret, &[("IOCFEED_TEST_TOKEN", "s3cret")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("s3cret"));
    // `serve` refuses it the same way; a `pull` (from cron, without the server's secrets) does not care.
    let out = bin()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-schedule",
            "--config",
        ])
        .arg(dir.path().join("unset.toml"))
        .env_remove("IOCFEED_TEST_TOKEN")
        .env("IOCFEED_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IOCFEED_TEST_TOKEN is not set"));
    let out = bin()
        .args(["lists", "--config"])
        .arg(dir.path().join("unset.toml"))
        .env_remove("IOCFEED_TEST_TOKEN")
        .env("IOCFEED_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_pull_beside_serve_is_served_within_two_seconds() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-schedule"])
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-09T10:00:00Z");
    let s = Served::start(cmd);
    assert_eq!(get(s.addr, "/lists/remus-domains.txt").status, 404);

    let file = dir.path().join("snap.json");
    std::fs::write(&file, gunzip(&snaps[3].1)).unwrap();
    let out = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&file)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-09T10:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done = Instant::now();
    loop {
        let r = get(s.addr, "/lists/remus-domains.txt");
        if r.status == 200 {
            assert!(r.text().contains("beltka.shop\n"));
            break;
        }
        assert!(
            done.elapsed() < Duration::from_secs(2),
            "not served within 2 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The CLI sees the same data.
    let out = bin()
        .arg("lists")
        .env("IOCFEED_DATA_DIR", &data)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("remus-domains ") && l.contains(" 1 ")),
        "{text}"
    );
}

#[test]
fn sighup_reloads_a_valid_config_and_keeps_the_running_one_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iocfeed.toml");
    let list = |name: &str| {
        format!("[[list]]\nname = \"{name}\"\ntypes = [\"domain\"]\nformats = [\"txt\"]\n\n")
    };
    std::fs::write(&config, list("first")).unwrap();
    let mut cmd = bin();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-schedule",
        "--config",
    ])
    .arg(&config)
    .env("IOCFEED_DATA_DIR", dir.path().join("data"));
    let mut s = Served::start(cmd);
    let names = |s: &Served| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&get(s.addr, "/lists").body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&s), ["first"]);
    let hup = |s: &Served| {
        let ok = std::process::Command::new("kill")
            .args(["-HUP", &s.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };

    std::fs::write(&config, list("first") + &list("second")).unwrap();
    hup(&s);
    s.wait_line(|l| l.contains("configuration reloaded"));
    assert_eq!(names(&s), ["first", "second"]);

    std::fs::write(&config, "[[list]]\nname = \"broken\"\n").unwrap();
    hup(&s);
    let line = s.wait_line(|l| l.contains("configuration reload refused"));
    assert!(line.contains("iocfeed.toml"), "{line}");
    assert_eq!(names(&s), ["first", "second"]);
    // One signal, one reload: the first SIGHUP is not acted on again after the restart it caused.
    let reloads = s
        .seen
        .iter()
        .filter(|l| l.contains("configuration reloaded"))
        .count();
    assert_eq!(reloads, 1, "{}", s.seen.join("\n"));
}

/// A format added to a list after its version was published is rendered when the server starts with the
/// new configuration, not only at the next pull that changes the list.
#[test]
fn a_format_added_later_is_served_once_the_server_starts_with_it() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("iocfeed.toml");
    let write_config = |formats: &str| {
        std::fs::write(
            &config,
            format!(
                "[[source]]\nname = \"threatfox-recent\"\nkind = \"threatfox-export\"\npath = \"/export/json/recent/\"\nschedule = \"*/15 * * * *\"\n\n[[family]]\nname = \"Remus\"\n\n[[list]]\nname = \"remus-domains\"\nfamilies = [\"Remus\"]\ntypes = [\"domain\"]\nformats = [{formats}]\n"
            ),
        )
        .unwrap();
    };
    write_config("\"txt\"");
    let file = dir.path().join("snap.json");
    std::fs::write(&file, gunzip(&snaps[3].1)).unwrap();
    let out = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&file)
        .arg("--config")
        .arg(&config)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-09T10:00:00Z")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    write_config("\"txt\", \"json\"");
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("IOCFEED_DATA_DIR", &data)
        .env("IOCFEED_NOW", "2026-07-09T10:00:00Z")
        // The start-up pull of this source fails (closed port); the lists are re-evaluated regardless.
        .env("IOCFEED_THREATFOX_URL", "http://127.0.0.1:9");
    let s = Served::start(cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let r = get(s.addr, "/lists/remus-domains.json");
        if r.status == 200 {
            break r;
        }
        assert!(Instant::now() < deadline, "{} {}", r.status, r.text());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(json.header("x-iocfeed-version"), Some("1"));
    let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    let txt = get(s.addr, "/lists/remus-domains.txt").text();
    let values: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, txt.lines().collect::<Vec<_>>());
    assert!(txt.contains("beltka.shop\n"));
}

/// Recorded data pulled with a clock far past it (IOCFEED_NOW forgotten) ages out on arrival: the pull
/// succeeds, the lists are empty, and one warning line says why.
#[test]
fn a_pull_of_data_older_than_max_age_warns_about_the_clock() {
    let snaps = snapshots();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.json");
    std::fs::write(&file, gunzip(&snaps[3].1)).unwrap();
    let pull = |data: &str, now: &str| {
        let out = bin()
            .args(["pull", "threatfox-recent", "--file"])
            .arg(&file)
            .env("IOCFEED_DATA_DIR", dir.path().join(data))
            .env("IOCFEED_NOW", now)
            .env("IOCFEED_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let late = pull("late", "2027-06-01T00:00:00Z");
    assert!(
        late.contains("every indicator this pull accepted is older than max_age_days (90)")
            && late.contains("IOCFEED_NOW"),
        "{late}"
    );
    let right = pull("right", "2026-07-09T10:00:00Z");
    assert!(!right.contains("older than max_age_days"), "{right}");

    // For log shippers: one JSON object per line, the same message in it.
    let out = bin()
        .args(["pull", "threatfox-recent", "--file"])
        .arg(&file)
        .env("IOCFEED_DATA_DIR", dir.path().join("json"))
        .env("IOCFEED_NOW", "2027-06-01T00:00:00Z")
        .env("IOCFEED_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let warn = lines
        .iter()
        .find(|l| l["level"] == "WARN")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(warn["fields"]["message"]
        .as_str()
        .unwrap()
        .contains("older than max_age_days (90)"));
    assert_eq!(warn["fields"]["source"], "threatfox-recent");
}

/// With no flag, variable or file, `serve` listens where the README says: 127.0.0.1:8080.
#[test]
fn serve_listens_on_127_0_0_1_8080_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args(["serve", "--no-schedule"])
        .env_remove("IOCFEED_CONFIG")
        .env_remove("IOCFEED_DATA_DIR")
        .env_remove("IOCFEED_LISTEN");
    let s = Served::start(cmd);
    assert_eq!(s.addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(get(s.addr, "/healthz").status, 200);
}
