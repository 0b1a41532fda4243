//! The HTTP server (SPEC §10). `run(listener, app, shutdown)` serves until `shutdown` resolves, so tests start
//! a real server on port 0. Every request reads the database, so a `pull` run by another process on the
//! same data directory is served as soon as it commits.

pub mod access;
mod caching;
mod clients;
mod routes;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::store::Store;
use crate::App;

/// Shared state of the server: the app and a small pool of read-only database connections.
pub struct ServerState {
    pub app: Arc<App>,
    readers: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ServerState {
    /// Runs `f` with a read connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = me.readers.lock().unwrap().pop();
            let conn = match conn {
                Some(c) => c,
                None => Store::open_reader(&me.app.data_dir).map_err(|e| e.to_string())?,
            };
            let out = f(&conn);
            let mut pool = me.readers.lock().unwrap();
            if pool.len() < 8 {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Largest request head (request line and headers) buffered.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then finishes in-flight requests (at most
/// ten seconds). At most `server.max_connections` connections are open at once; more are closed at once.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(&listener, app, shutdown).await
}

/// [`run`] on a borrowed listener, so that a configuration reload can serve on the same socket.
pub async fn serve_on(
    listener: &TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = app.config.server.max_connections.max(1);
    // Slow or silent clients must not hold connections: headers must arrive within this time, and an idle
    // keep-alive connection is closed after it.
    let header_timeout = Duration::from_secs(app.config.server.header_timeout_secs.max(1));
    let write_timeout = Duration::from_secs(app.config.server.request_timeout_secs.max(1));
    let state = Arc::new(ServerState {
        permits: Semaphore::new(max),
        app,
        readers: Mutex::new(Vec::new()),
    });
    let router =
        routes::router(state.clone()).layer(middleware::from_fn_with_state(state.clone(), limits));
    let connections = Arc::new(Semaphore::new(max));
    let server = &state.app.config.server;
    let per_client = clients::ClientSlots::new(
        server
            .max_connections_per_client
            .min(server.max_connections),
    );
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = per_client.take(peer.ip()) else {
            drop(stream);
            continue;
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        // The peer's address travels with each request, for per-list network rules.
        let service = hyper_util::service::TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(access::Peer(peer.ip()))),
        );
        // A client that stops reading a response would hold its connection (and the response in memory)
        // for ever: a write that makes no progress for `request_timeout_secs` closes the connection.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(write_timeout));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(hyper_util::rt::TokioIo::new(Box::pin(stream)), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop((permit, slot));
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

/// Bounds the requests in flight and the time each may take.
async fn limits(
    axum::extract::State(state): axum::extract::State<Arc<ServerState>>,
    req: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = state.permits.try_acquire() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "server busy, retry later\n",
        )
            .into_response();
    };
    // Count by route pattern, never by raw path: a scanner must not grow the metrics without bound.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let timeout = Duration::from_secs(state.app.config.server.request_timeout_secs.max(1));
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    };
    state.app.counters.http(&route, response.status().as_u16());
    response
}
