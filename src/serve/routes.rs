//! The routes of SPEC §10.1 and the 404s of §10.5.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::access::{self, Decision, Peer};
use super::caching::{accepts_gzip, etag, not_modified, value};
use super::ServerState;
use crate::clock::{http_date, iso};
use crate::config::Format;
use crate::store;

type St = State<Arc<ServerState>>;

/// Sentinel's limit for a watchlist uploaded from a local file: 3.8 MB.
pub const SENTINEL_UPLOAD_LIMIT: i64 = 3_800_000;

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/lists", get(index))
        .route("/lists/{file}", get(current))
        .route("/lists/{name}/versions", get(versions))
        .route("/lists/{name}/diff", get(diff))
        .route("/families", get(families))
        .route("/families/{name}/report.md", get(family_report))
        .route("/lists/{name}/{file}", get(versioned))
        .route("/sources", get(sources))
        .route("/iocs", get(iocs))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/admin/pull/{source}", post(admin_pull))
        .fallback(|| async { not_found("no such route") })
        .with_state(state)
}

/// A 404 with one line of reason (SPEC §10.5).
fn not_found(reason: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("not found: {reason}\n")).into_response()
}

fn server_error(e: String) -> Response {
    tracing::error!("http: {e}");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}

/// Splits `name.fmt` at its last dot.
fn split_file(file: &str) -> Option<(&str, Format)> {
    let (name, ext) = file.rsplit_once('.')?;
    Some((name, Format::parse(ext)?))
}

async fn index(State(st): St, caller: Caller) -> Response {
    let cfg = st.app.config.clone();
    // A restricted list the caller may not fetch shows its name and URLs, not what it holds or when it
    // changed.
    let readable: Vec<bool> = cfg
        .lists
        .iter()
        .map(|l| caller.refuse(l).is_none())
        .collect();
    let res = st
        .read(move |conn| {
            let mut out = Vec::new();
            for (l, readable) in cfg.lists.iter().zip(readable) {
                let v = if readable {
                    store::latest_version(conn, &l.name).map_err(|e| e.to_string())?
                } else {
                    None
                };
                let sizes = match &v {
                    Some(v) => store::artifact_sizes(conn, &l.name, v.version)
                        .map_err(|e| e.to_string())?,
                    None => Default::default(),
                };
                let urls: serde_json::Map<String, serde_json::Value> = l
                    .formats
                    .iter()
                    .map(|f| {
                        (
                            f.as_str().to_string(),
                            json!(format!("/lists/{}.{}", l.name, f.as_str())),
                        )
                    })
                    .collect();
                // Sentinel's local watchlist upload takes at most 3.8 MB.
                let csv_over = sizes.get("csv").is_some_and(|n| *n > SENTINEL_UPLOAD_LIMIT);
                out.push(json!({
                    "csv_over_sentinel_upload_limit": csv_over,
                    "access": if l.access == crate::config::Access::Public { "public" } else { "restricted" },
                    "name": l.name,
                    "types": l.types,
                    "families": l.families,
                    "version": v.as_ref().map(|v| v.version),
                    "entries": v.as_ref().map(|v| v.entries),
                    "updated_at": v.as_ref().map(|v| iso(v.published_at)),
                    "urls": urls,
                    "sizes": sizes,
                }));
            }
            Ok(out)
        })
        .await;
    match res {
        Ok(lists) => Json(lists).into_response(),
        Err(e) => server_error(e),
    }
}

/// `?token=` for clients that cannot send an Authorization header.
#[derive(serde::Deserialize, Default)]
struct TokenQuery {
    token: Option<String>,
}

/// Who is asking: the connection's address, the headers, and any `?token=`. An extractor, so that every
/// route that checks access takes it in one argument.
struct Caller {
    peer: Option<std::net::IpAddr>,
    headers: HeaderMap,
    token: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Caller, Self::Rejection> {
        // A query that does not parse has no token: the request is then simply unauthenticated.
        let token = parts
            .uri
            .query()
            .and_then(query_token)
            .filter(|t| !t.is_empty());
        Ok(Caller {
            peer: parts.extensions.get::<Peer>().map(|Peer(ip)| *ip),
            headers: parts.headers.clone(),
            token,
        })
    }
}

/// The `token` parameter of a query string.
fn query_token(query: &str) -> Option<String> {
    Query::<TokenQuery>::try_from_uri(&format!("/?{query}").parse().ok()?)
        .ok()
        .and_then(|Query(q)| q.token)
}

impl Caller {
    /// The refusal for a list this caller may not fetch, if any (SPEC §10.4).
    fn refuse(&self, list: &crate::config::ListConfig) -> Option<Response> {
        self.refuse_access(&list.access, "this list")
    }

    /// The refusal for the views that span every list (`/iocs`, `/families`, reports, `/sources`), if any.
    fn refuse_views(&self, cfg: &crate::config::Config) -> Option<Response> {
        match cfg.views_access() {
            Some(a) => self.refuse_access(&a, "this view"),
            None => Some(
                (
                    StatusCode::FORBIDDEN,
                    "forbidden: this view spans every list and some lists are restricted; open it with [server] access\n",
                )
                    .into_response(),
            ),
        }
    }

    fn refuse_access(&self, a: &crate::config::Access, what: &str) -> Option<Response> {
        match access::check(a, self.peer, &self.headers, self.token.as_deref()) {
            Decision::Allow => None,
            Decision::Unauthorized => Some(
                (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        "Bearer realm=\"iocfeed\", Basic realm=\"iocfeed\"",
                    )],
                    format!("unauthorized: {what} needs a token or a user\n"),
                )
                    .into_response(),
            ),
            Decision::Forbidden => Some(
                (
                    StatusCode::FORBIDDEN,
                    format!("forbidden: your network may not fetch {what}\n"),
                )
                    .into_response(),
            ),
        }
    }
}

async fn current(State(st): St, Path(file): Path<String>, caller: Caller) -> Response {
    let Some((name, fmt)) = split_file(&file) else {
        return not_found(&format!(
            "{file:?} is not LIST.FORMAT (formats: txt, hosts, rpz, csv, json, stix, kql, edl)"
        ));
    };
    serve_artifact(st, name.to_string(), fmt, None, caller).await
}

async fn versioned(
    State(st): St,
    Path((name, file)): Path<(String, String)>,
    caller: Caller,
) -> Response {
    // Exactly `v` and the decimal number: `v01` or `v+1` would be a second URL for the same immutable bytes.
    let parsed = split_file(&file).and_then(|(v, fmt)| {
        v.strip_prefix('v')
            .filter(|n| {
                !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
            })
            .and_then(|n| n.parse::<i64>().ok())
            .map(|n| (n, fmt))
    });
    let Some((version, fmt)) = parsed else {
        return not_found(&format!("{file:?} is not vN.FORMAT"));
    };
    serve_artifact(st, name, fmt, Some(version), caller).await
}

async fn serve_artifact(
    st: Arc<ServerState>,
    name: String,
    fmt: Format,
    version: Option<i64>,
    caller: Caller,
) -> Response {
    let Some(list) = st.app.config.list(&name) else {
        return not_found(&format!("no list named {name:?}"));
    };
    if let Some(refusal) = caller.refuse(list) {
        return refusal;
    }
    let headers = caller.headers;
    let restricted = list.access != crate::config::Access::Public;
    if !list.formats.contains(&fmt) {
        return not_found(&format!(
            "list {name:?} is not published as {}",
            fmt.as_str()
        ));
    }
    let res = st
        .read(move |conn| {
            let v = match version {
                Some(n) => store::version(conn, &name, n),
                None => store::latest_version(conn, &name),
            }
            .map_err(|e| e.to_string())?;
            let Some(v) = v else { return Ok(None) };
            let a =
                store::artifact(conn, &name, v.version, fmt.as_str()).map_err(|e| e.to_string())?;
            Ok(a.map(|a| (v, a)))
        })
        .await;
    let (v, a) = match res {
        Ok(Some(x)) => x,
        Ok(None) => {
            let current = current_version(&st, &list.name).await;
            return not_found(&match version {
                Some(n) if n <= current => {
                    format!("version {n} of {:?} is no longer retained", list.name)
                }
                Some(n) => format!("list {:?} has no version {n}", list.name),
                None if current > 0 => format!(
                    "list {:?} v{current} is not rendered as {} yet (a format added since; the next re-evaluation renders it)",
                    list.name,
                    fmt.as_str()
                ),
                None => format!("list {:?} has no version yet", list.name),
            });
        }
        Err(e) => return server_error(e),
    };
    let gzip = accepts_gzip(&headers);
    let mut h = HeaderMap::new();
    h.insert(header::ETAG, value(&etag(&a.etag, gzip)));
    h.insert(header::LAST_MODIFIED, value(&http_date(v.published_at)));
    h.insert(header::VARY, value("Accept-Encoding"));
    h.insert("x-iocfeed-version", value(&v.version.to_string()));
    h.insert(
        header::CACHE_CONTROL,
        // A restricted list must not sit in shared caches.
        value(match (version.is_some(), restricted) {
            (true, false) => "public, max-age=31536000, immutable",
            (true, true) => "private, max-age=31536000, immutable",
            (false, false) => "public, no-cache",
            (false, true) => "private, no-cache",
        }),
    );
    if not_modified(&headers, &a.etag, v.published_at) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(header::CONTENT_TYPE, value(fmt.content_type()));
    let body = if gzip {
        h.insert(header::CONTENT_ENCODING, value("gzip"));
        a.gzip
    } else {
        a.body
    };
    (StatusCode::OK, h, body).into_response()
}

/// The current version number of a list (0 when none).
async fn current_version(st: &Arc<ServerState>, name: &str) -> i64 {
    let name = name.to_string();
    st.read(move |conn| {
        store::latest_version(conn, &name)
            .map(|v| v.map_or(0, |v| v.version))
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or(0)
}

async fn versions(State(st): St, Path(name): Path<String>, caller: Caller) -> Response {
    let Some(list) = st.app.config.list(&name) else {
        return not_found(&format!("no list named {name:?}"));
    };
    if let Some(refusal) = caller.refuse(list) {
        return refusal;
    }
    let res = st
        .read(move |conn| store::versions(conn, &name).map_err(|e| e.to_string()))
        .await;
    match res {
        Ok(vs) => Json(
            vs.iter()
                .map(|v| {
                    json!({
                        "version": v.version,
                        "entries": v.entries,
                        "serial": v.serial,
                        "published_at": iso(v.published_at),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => server_error(e),
    }
}

async fn sources(State(st): St, caller: Caller) -> Response {
    if let Some(refusal) = caller.refuse_views(&st.app.config) {
        return refusal;
    }
    let cfg = st.app.config.clone();
    let app = st.app.clone();
    let res = st
        .read(move |conn| {
            let holds = store::holds(conn).map_err(|e| e.to_string())?;
            cfg.sources
                .iter()
                .map(|s| {
                    let state = store::source_state(conn, &s.name).map_err(|e| e.to_string())?;
                    let scope = crate::pull::source_scope(&s.name);
                    let hold = holds.iter().find(|h| h.scope == scope);
                    // List holds that this source's latest pull set (the per-list brake).
                    let lists_held: Vec<_> = holds
                        .iter()
                        .filter(|h| {
                            h.scope.starts_with("list:")
                                && Some(h.since) == state.last_attempt
                                && state.last_result.as_deref() == Some("ok")
                        })
                        .map(|h| json!({"list": &h.scope["list:".len()..], "reason": h.reason}))
                        .collect();
                    let samples =
                        store::reject_samples(conn, &s.name, 5).map_err(|e| e.to_string())?;
                    Ok(json!({
                        "name": s.name,
                        "url": s.effective_url(&cfg.threatfox),
                        "mode": s.mode,
                        "schedule": s.schedule,
                        "last_attempt": state.last_attempt.map(iso),
                        "last_success": state.last_success.map(iso),
                        "result": state.last_result,
                        "error": state.last_error,
                        "failures": state.failures,
                        "rows": state.rows,
                        "accepted": state.accepted,
                        "rejected": state.rejected,
                        "rejects": state.rejects,
                        "rejected_samples": samples,
                        "hold": hold.map(|h| json!({"reason": h.reason, "since": iso(h.since)})),
                        "lists_held": lists_held,
                        "next_pull": app.next_pull(&s.name).map(iso),
                        "stale": crate::scheduler::is_stale(&s.schedule, state.last_success, app.clock.now()),
                    }))
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .await;
    match res {
        Ok(v) => Json(v).into_response(),
        Err(e) => server_error(e),
    }
}

/// Ready once a list has been published, while nothing is held by the safety brake and no source is stale.
/// A source whose last pull failed is named either way.
async fn readyz(State(st): St) -> Response {
    let app = st.app.clone();
    let res = st
        .read(move |conn| {
            let db = |e: store::StoreError| e.to_string();
            let mut problems = Vec::new();
            let mut notes = Vec::new();
            for h in store::holds(conn).map_err(db)? {
                problems.push(format!("held: {}: {}", h.scope, h.reason));
            }
            let now = app.clock.now();
            for s in &app.config.sources {
                let state = store::source_state(conn, &s.name).map_err(db)?;
                if crate::scheduler::is_stale(&s.schedule, state.last_success, now) {
                    problems.push(format!(
                        "stale: source {} last pulled {}",
                        s.name,
                        state.last_success.map(iso).unwrap_or_default()
                    ));
                }
                if state.last_result.as_deref() == Some("error") {
                    notes.push(format!(
                        "source {} failing ({} in a row): {}",
                        s.name,
                        state.failures,
                        state.last_error.unwrap_or_default()
                    ));
                }
            }
            let mut published = false;
            for l in &app.config.lists {
                published |= store::latest_version(conn, &l.name).map_err(db)?.is_some();
            }
            if !published {
                problems.push("no list published yet".into());
            }
            Ok((problems, notes))
        })
        .await;
    match res {
        Ok((problems, notes)) => {
            let mut body = if problems.is_empty() {
                "ready\n".to_string()
            } else {
                problems
                    .iter()
                    .map(|p| format!("not ready: {p}\n"))
                    .collect()
            };
            for n in notes {
                body.push_str(&format!("warning: {n}\n"));
            }
            let code = if problems.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, body).into_response()
        }
        Err(e) => server_error(e),
    }
}

#[derive(serde::Deserialize)]
struct IocQuery {
    value: Option<String>,
}

/// `GET /iocs?value=V`: the lookup of `iocfeed ioc`.
async fn iocs(State(st): St, Query(q): Query<IocQuery>, caller: Caller) -> Response {
    if let Some(refusal) = caller.refuse_views(&st.app.config) {
        return refusal;
    }
    let Some(value) = q.value.filter(|v| !v.is_empty() && v.len() <= 2048) else {
        return (
            StatusCode::BAD_REQUEST,
            "give ?value=INDICATOR (at most 2048 bytes)\n",
        )
            .into_response();
    };
    let app = st.app.clone();
    let res = st
        .read(move |conn| crate::lookup::lookup(conn, &app.config, &value, app.now()))
        .await;
    match res {
        Ok(v) => Json(v).into_response(),
        Err(e) => server_error(e),
    }
}

#[derive(serde::Deserialize)]
struct DiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /lists/{name}/diff?from=N[&to=M]`: what changed between two retained versions.
async fn diff(
    State(st): St,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
    caller: Caller,
) -> Response {
    let Some(list) = st.app.config.list(&name) else {
        return not_found(&format!("no list named {name:?}"));
    };
    if let Some(refusal) = caller.refuse(list) {
        return refusal;
    }
    let Some(from) = q.from else {
        return (
            StatusCode::BAD_REQUEST,
            "give ?from=N (and optionally &to=M)\n",
        )
            .into_response();
    };
    let res = st
        .read(move |conn| {
            let db = |e: store::StoreError| e.to_string();
            let Some(latest) = store::latest_version(conn, &name).map_err(db)? else {
                return Ok(Err((
                    StatusCode::NOT_FOUND,
                    format!("not found: list {name:?} has no version yet\n"),
                )));
            };
            let to = q.to.unwrap_or(latest.version);
            for n in [from, to] {
                if n < 1 || n > latest.version {
                    return Ok(Err((
                        StatusCode::NOT_FOUND,
                        format!("not found: list {name:?} has no version {n}\n"),
                    )));
                }
            }
            let (Some(a), Some(b)) = (
                store::version(conn, &name, from).map_err(db)?,
                store::version(conn, &name, to).map_err(db)?,
            ) else {
                return Ok(Err((
                    StatusCode::GONE,
                    format!(
                        "gone: version {} of {name:?} is no longer retained\n",
                        from.min(to)
                    ),
                )));
            };
            let old: std::collections::BTreeSet<&str> = a.members.lines().collect();
            let new: std::collections::BTreeSet<&str> = b.members.lines().collect();
            Ok(Ok(json!({
                "from": from,
                "to": to,
                "added": new.difference(&old).collect::<Vec<_>>(),
                "removed": old.difference(&new).collect::<Vec<_>>(),
            })))
        })
        .await;
    match res {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err((code, msg))) => (code, msg).into_response(),
        Err(e) => server_error(e),
    }
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(State(st): St) -> Response {
    let app = st.app.clone();
    match st
        .read(move |conn| {
            crate::metrics::render(&app.counters, conn, &app.config).map_err(|e| e.to_string())
        })
        .await
    {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => server_error(e),
    }
}

/// `GET /families`: the tracked families, their current IOC count, and the report URL.
async fn families(State(st): St, caller: Caller) -> Response {
    if let Some(refusal) = caller.refuse_views(&st.app.config) {
        return refusal;
    }
    let app = st.app.clone();
    let res = st
        .read(move |conn| {
            let now = app.now();
            app.config
                .families
                .iter()
                .map(|f| {
                    let n = crate::publish::report::entries(conn, &app.config, f, now)
                        .map_err(|e| e.to_string())?
                        .len();
                    Ok(json!({
                        "name": f.name,
                        "aliases": f.aliases,
                        "exclude": f.exclude,
                        "iocs": n,
                        "report": format!("/families/{}/report.md", f.name),
                    }))
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .await;
    match res {
        Ok(v) => Json(v).into_response(),
        Err(e) => server_error(e),
    }
}

/// `GET /families/{name}/report.md`: the seed-style hunting page, from live data.
async fn family_report(State(st): St, Path(name): Path<String>, caller: Caller) -> Response {
    if let Some(refusal) = caller.refuse_views(&st.app.config) {
        return refusal;
    }
    let Some(family) = st.app.config.family(&name).cloned() else {
        return not_found(&format!("no family named {name:?}"));
    };
    let app = st.app.clone();
    let res = st
        .read(move |conn| {
            let now = app.now();
            let entries = crate::publish::report::entries(conn, &app.config, &family, now)
                .map_err(|e| e.to_string())?;
            Ok(crate::publish::report::render(&family, &entries, now))
        })
        .await;
    match res {
        Ok(md) => ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response(),
        Err(e) => server_error(e),
    }
}

/// `POST /admin/pull/{source}`: starts a pull of `source` now (`[server] admin` credentials). Answers 202
/// at once (a full dump takes longer than a request may); `/sources` shows the result. 409 while this
/// server is already pulling it.
async fn admin_pull(State(st): St, Path(source): Path<String>, caller: Caller) -> Response {
    let Some(admin) = st.app.config.server.admin.clone() else {
        return (
            StatusCode::FORBIDDEN,
            "forbidden: the admin routes are off; set [server] admin to open them\n",
        )
            .into_response();
    };
    if let Some(refusal) = caller.refuse_access(&admin, "this route") {
        return refusal;
    }
    if st.app.config.source(&source).is_none() {
        return not_found(&format!("no source named {source:?}"));
    }
    if st.app.is_pulling(&source) {
        return (
            StatusCode::CONFLICT,
            format!("a pull of {source} is already running\n"),
        )
            .into_response();
    }
    let app = st.app.clone();
    let name = source.clone();
    tokio::task::spawn_blocking(move || {
        tracing::info!(source = %name, "pull requested over HTTP");
        let _ = app.pull_source_logged(&name);
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"source": source, "started": true})),
    )
        .into_response()
}
