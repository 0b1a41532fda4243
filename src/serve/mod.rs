//! The HTTP server (SPEC §10). `run(listener, app, shutdown)` serves until `shutdown` resolves, so tests start
//! a real server on port 0. Every request reads the database, so a `pull` run by another process on the
//! same data directory is served as soon as it commits.

mod caching;
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

/// Serves HTTP on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(ServerState {
        permits: Semaphore::new(app.config.server.max_connections.max(1)),
        app,
        readers: Mutex::new(Vec::new()),
    });
    let router =
        routes::router(state.clone()).layer(middleware::from_fn_with_state(state.clone(), limits));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
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
    let timeout = Duration::from_secs(state.app.config.server.request_timeout_secs.max(1));
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request took too long\n").into_response(),
    }
}
