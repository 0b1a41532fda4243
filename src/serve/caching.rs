//! HTTP caching for artifacts (SPEC §10.2): strong ETags, Last-Modified, conditional requests, and the
//! choice between the stored identity and gzip bodies.

use axum::http::{header, HeaderMap, HeaderValue};

/// True when the client accepts gzip (`gzip`, `x-gzip` or `*` with a non-zero q-value).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").map(str::trim))
                .filter_map(|q| q.parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            matches!(coding.as_str(), "gzip" | "x-gzip" | "*") && q > 0.0
        })
}

/// The ETag of a representation: the body's SHA-256, with `-gz` for the gzip body.
pub fn etag(hash: &str, gzip: bool) -> String {
    if gzip {
        format!("\"{hash}-gz\"")
    } else {
        format!("\"{hash}\"")
    }
}

/// True when the request's validators say the client's copy is current, so the answer is 304.
/// `If-None-Match` wins over `If-Modified-Since` (RFC 9110 §13.2.2).
pub fn not_modified(headers: &HeaderMap, hash: &str, last_modified: i64) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(inm) = inm.to_str() else { return false };
        return inm.split(',').map(str::trim).any(|t| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t == "*" || t == etag(hash, false) || t == etag(hash, true)
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(http_date_to_unix)
        .is_some_and(|since| last_modified <= since)
}

/// Parses the three date forms HTTP allows (RFC 9110 §5.6.7): IMF-fixdate, RFC 850 and asctime.
pub fn http_date_to_unix(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(v) {
        return Some(t.timestamp());
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(v, f).ok())
        .map(|t| t.and_utc().timestamp())
}

pub fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h(&[(
            header::ACCEPT_ENCODING,
            "br, gzip;q=0.5"
        )])));
        assert!(!accepts_gzip(&h(&[(header::ACCEPT_ENCODING, "gzip;q=0")])));
        assert!(!accepts_gzip(&h(&[(header::ACCEPT_ENCODING, "identity")])));
        assert!(!accepts_gzip(&h(&[])));
    }

    #[test]
    fn conditionals() {
        assert!(not_modified(
            &h(&[(header::IF_NONE_MATCH, "\"x\", \"abc\"")]),
            "abc",
            10
        ));
        assert!(!not_modified(
            &h(&[(header::IF_NONE_MATCH, "\"x\"")]),
            "abc",
            10
        ));
        let ims = h(&[(header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT")]);
        assert!(not_modified(&ims, "abc", 10));
        assert!(!not_modified(&ims, "abc", 11));
        for old in [
            "Thursday, 01-Jan-70 00:00:10 GMT",
            "Thu Jan  1 00:00:10 1970",
        ] {
            assert_eq!(http_date_to_unix(old), Some(10), "{old}");
        }
        // A non-matching ETag is not rescued by a date.
        let both = h(&[
            (header::IF_NONE_MATCH, "\"x\""),
            (header::IF_MODIFIED_SINCE, "Thu, 01 Jan 1970 00:00:10 GMT"),
        ]);
        assert!(!not_modified(&both, "abc", 10));
    }
}
