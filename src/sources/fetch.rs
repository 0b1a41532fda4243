//! Getting a source's bytes onto local disk: HTTP(S) with conditional GET, bounded redirects, timeouts and a
//! size cap, or a local file. The body is streamed to a temporary file, never held in memory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::SourceConfig;

/// Validators from the last successful fetch, sent back as `If-None-Match` / `If-Modified-Since`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum Fetched {
    /// The upstream answered 304: nothing to parse, nothing to publish.
    NotModified,
    /// The body is in `path` (a temporary file removed on drop, or the user's own file).
    Body {
        path: PathBuf,
        validators: Validators,
        _temp: Option<TempFile>,
    },
}

/// A file deleted when dropped.
#[derive(Debug)]
pub struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Http(String),
    #[error("HTTP {status}{retry}", retry = retry_after.map(|s| format!(" (Retry-After {s}s)")).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    #[error("body larger than the {0}-byte cap")]
    TooLarge(u64),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("unsupported URL: {0}")]
    Url(String),
}

/// Fetches `url` for `source` into `tmp_dir`.
pub fn fetch(
    source: &SourceConfig,
    url: &str,
    previous: &Validators,
    tmp_dir: &Path,
) -> Result<Fetched, FetchError> {
    if let Some(rest) = url.strip_prefix("file://") {
        let path = url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .unwrap_or_else(|| PathBuf::from(rest));
        let len = std::fs::metadata(&path)?.len();
        if len > source.max_bytes {
            return Err(FetchError::TooLarge(source.max_bytes));
        }
        return Ok(Fetched::Body {
            path,
            validators: Validators::default(),
            _temp: None,
        });
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::Url(url.to_string()));
    }
    let mut req = agent(source, 5).get(url);
    if let Some(e) = &previous.etag {
        req = req.set("If-None-Match", e);
    }
    if let Some(lm) = &previous.last_modified {
        req = req.set("If-Modified-Since", lm);
    }
    save(source, req.call(), tmp_dir, "")
}

/// POSTs a JSON body (the ThreatFox API) and saves the answer; `headers` may carry a secret, which no
/// error text ever repeats.
pub fn post_json(
    source: &SourceConfig,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    tmp_dir: &Path,
    tag: &str,
) -> Result<Fetched, FetchError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(FetchError::Url(url.to_string()));
    }
    let mut req = agent(source, 0)
        .post(url)
        .set("Content-Type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    save(source, req.send_string(body), tmp_dir, tag)
}

/// An HTTP agent with the source's limits. `redirects` is 0 for requests that carry a secret: ureq would
/// send custom headers (the API's Auth-Key) on to whatever host a redirect names.
fn agent(source: &SourceConfig, redirects: u32) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(source.connect_timeout_secs))
        .timeout_read(Duration::from_secs(source.read_timeout_secs))
        .redirects(redirects)
        .user_agent(&format!("iocfeed/{}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Turns an answer into a saved body or an error: 304, non-2xx (with Retry-After), transport failures,
/// and the size cap.
fn save(
    source: &SourceConfig,
    answer: Result<ureq::Response, ureq::Error>,
    tmp_dir: &Path,
    tag: &str,
) -> Result<Fetched, FetchError> {
    let resp = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let retry_after = retry_after(r.header("Retry-After"));
            return Err(FetchError::Status {
                status: code,
                retry_after,
            });
        }
        // The transport error's own text repeats the URL, which the caller names already.
        Err(ureq::Error::Transport(t)) => {
            let mut detail = t.kind().to_string();
            // A bad-header message quotes the header, value and all: for the API that is the key.
            match t.message() {
                Some(_) if t.kind() == ureq::ErrorKind::BadHeader => {}
                Some(m) => detail.push_str(&format!(": {m}")),
                None => {}
            }
            if let Some(cause) = std::error::Error::source(&t) {
                detail.push_str(&format!(": {cause}"));
            }
            return Err(FetchError::Http(one_line(&detail)));
        }
    };
    if resp.status() == 304 {
        return Ok(Fetched::NotModified);
    }
    if !(200..300).contains(&resp.status()) {
        return Err(FetchError::Status {
            status: resp.status(),
            retry_after: retry_after(resp.header("Retry-After")),
        });
    }
    let validators = Validators {
        etag: resp.header("ETag").map(str::to_string),
        last_modified: resp.header("Last-Modified").map(str::to_string),
    };
    std::fs::create_dir_all(tmp_dir)?;
    let path = tmp_dir.join(format!(
        "{}{tag}-{}.download",
        source.name,
        std::process::id()
    ));
    let temp = TempFile(path.clone());
    let mut out = File::create(&path)?;
    // `timeout_read` bounds each silence; this bounds the whole body, however steadily it trickles.
    // (ureq's overall timeout would replace the per-read one, so the deadline is kept here.)
    let deadline =
        std::time::Instant::now() + Duration::from_secs(source.total_timeout_secs.max(1));
    let mut body = resp.into_reader().take(source.max_bytes + 1);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        let k = body.read(&mut chunk)?;
        if k == 0 {
            break;
        }
        out.write_all(&chunk[..k])?;
        n += k as u64;
        if std::time::Instant::now() > deadline {
            return Err(FetchError::Http(format!(
                "the body took longer than {} s to arrive",
                source.total_timeout_secs
            )));
        }
    }
    if n > source.max_bytes {
        return Err(FetchError::TooLarge(source.max_bytes));
    }
    out.flush()?;
    Ok(Fetched::Body {
        path,
        validators,
        _temp: Some(temp),
    })
}

/// `Retry-After` as seconds, or as an HTTP date (seconds from now).
fn retry_after(v: Option<&str>) -> Option<u64> {
    let v = v?.trim();
    v.parse::<u64>().ok().or_else(|| {
        let t = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        Some((t.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64)
    })
}

/// Error texts from libraries can span lines; a log line must not.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
