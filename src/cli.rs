//! The command line (SPEC §3): flag definitions in one place, errors as one line, meaningful exit codes:
//! 0 ok, 1 runtime error, 2 usage or configuration error.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{Config, Format};
use crate::{clock, scheduler, serve, store, App};

#[derive(Parser, Debug)]
#[command(
    name = "iocfeed",
    version,
    about = "ThreatFox IOCs to versioned blocklists (txt, RPZ, CSV) over HTTP"
)]
pub struct Cli {
    /// Configuration file (default: the embedded configuration built from feeds/).
    #[arg(long, global = true, env = "IOCFEED_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: the SQLite database lives here (default ./iocfeed-data).
    #[arg(long, global = true, env = "IOCFEED_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the lists over HTTP and pull every source on its schedule.
    Serve {
        /// Address to listen on (default from config: 127.0.0.1:8080).
        #[arg(long, env = "IOCFEED_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
        /// Serve only; do not pull.
        #[arg(long)]
        no_schedule: bool,
    },
    /// Pull sources now (all of them when none is named).
    Pull {
        sources: Vec<String>,
        /// Import a downloaded export file as the named source instead of fetching it.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Show every list: current version, entries, last update.
    Lists,
    /// Show every source: last pull, result, counts, rejects by reason.
    Sources,
    /// Write a list (current or a retained version) in one format.
    Export {
        list: String,
        #[arg(long, value_name = "FMT")]
        format: String,
        #[arg(long, value_name = "N")]
        version: Option<i64>,
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Release a list held by the safety brake: publish its current set now.
    Publish {
        list: String,
        /// Required: publishing past the safety brake is a deliberate act.
        #[arg(long)]
        force: bool,
    },
    /// What iocfeed knows of a value and why it is (not) listed, as JSON.
    Ioc { value: String },
    /// The seed-style Markdown hunting page for a family, from live data.
    Report { family: String },
    /// Manage allowlist entries (names cover their subdomains; addresses and CIDRs).
    Allow {
        #[command(subcommand)]
        action: AllowAction,
    },
    /// Validate or print the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum AllowAction {
    /// Never publish VALUE (and, for a name, anything below it); lists are re-published at once.
    Add {
        value: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove an entry added with `allow add`.
    Rm { value: String },
    /// Every entry in force: config, allowlist sources, command line.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Validate the configuration and exit 0, or print the error and exit 2.
    Check,
    /// Print the effective configuration with every default filled in.
    Show,
}

/// An error at the edge, with the exit code it means.
struct Failure {
    code: i32,
    message: String,
}

fn usage(message: impl ToString) -> Failure {
    Failure {
        code: 2,
        message: message.to_string(),
    }
}

fn runtime(message: impl ToString) -> Failure {
    Failure {
        code: 1,
        message: message.to_string(),
    }
}

/// Parses the command line, runs the command, returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging();
    // A report piped into `head` should end quietly when the reader goes away, as other Unix tools do.
    // Not for `serve`: a client closing its connection must never kill the server.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve { .. }) {
        // SAFETY: restoring the default disposition of one signal, before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("iocfeed: error: {}", f.message);
            f.code
        }
    }
}

/// Logs go to stderr: text by default, one JSON object per line with `IOCFEED_LOG_FORMAT=json` (for log
/// shippers); `IOCFEED_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IOCFEED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if std::env::var("IOCFEED_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Loads the configuration and applies environment and command-line overrides.
fn load(cli: &Cli, listen: Option<String>) -> Result<App, Failure> {
    load_for(cli, listen, false)
}

/// [`load`]; `serving` also requires every `env:` secret to be set, since the server would otherwise
/// refuse every client of that list.
fn load_for(cli: &Cli, listen: Option<String>, serving: bool) -> Result<App, Failure> {
    let loaded = Config::load(cli.config.as_deref()).map_err(usage)?;
    if serving {
        unset_secrets(&loaded)?;
    }
    let mut config = loaded.config;
    // `serve --listen` reads IOCFEED_LISTEN through clap; other commands (config show) read it here.
    let listen = listen.or_else(|| {
        std::env::var("IOCFEED_LISTEN")
            .ok()
            .filter(|s| !s.is_empty())
    });
    let threatfox = std::env::var("IOCFEED_THREATFOX_URL")
        .ok()
        .filter(|s| !s.is_empty());
    config.apply_overrides(listen, cli.data_dir.clone(), threatfox);
    if config.server.listen.parse::<SocketAddr>().is_err() {
        return Err(usage(format!(
            "--listen: not an address:port: {:?}",
            config.server.listen
        )));
    }
    let clock = clock::from_env().map_err(usage)?;
    Ok(App::new(config, clock))
}

fn unset_secrets(loaded: &crate::config::Loaded) -> Result<(), Failure> {
    match loaded.unset_secrets.as_slice() {
        [] => Ok(()),
        [one] => Err(usage(one)),
        [first, rest @ ..] => Err(usage(format!("{first} (and {} more)", rest.len()))),
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Config { action } => {
            let loaded = Config::load(cli.config.as_deref()).map_err(usage)?;
            match action {
                ConfigAction::Check => {
                    unset_secrets(&loaded)?;
                    // Not an error: the other sources pull without it. But every pull of these will fail.
                    let key_set =
                        std::env::var("THREATFOX_AUTH_KEY").is_ok_and(|k| !k.trim().is_empty());
                    for s in
                        loaded.config.sources.iter().filter(|s| {
                            s.kind == crate::config::SourceKind::ThreatfoxApi && !key_set
                        })
                    {
                        eprintln!(
                            "iocfeed: warning: source {:?} needs THREATFOX_AUTH_KEY, which is not set: its pulls will fail",
                            s.name
                        );
                    }
                    println!(
                        "{}: ok ({} sources, {} lists)",
                        loaded.origin,
                        loaded.config.sources.len(),
                        loaded.config.lists.len()
                    );
                }
                ConfigAction::Show => {
                    let app = load(&cli, None)?;
                    print!("{}", app.config.to_toml());
                }
            }
            Ok(())
        }
        Command::Serve {
            listen,
            no_schedule,
        } => {
            let app = load_for(&cli, listen.clone(), true)?;
            let (config, data_dir) = (cli.config.clone(), cli.data_dir.clone());
            let listen = listen.clone();
            serve_cmd(app, *no_schedule, move || {
                let cli = Cli {
                    config: config.clone(),
                    data_dir: data_dir.clone(),
                    command: Command::Lists,
                };
                load_for(&cli, listen.clone(), true)
            })
        }
        Command::Pull { sources, file } => {
            let app = load(&cli, None)?;
            let names: Vec<String> = if sources.is_empty() {
                if file.is_some() {
                    return Err(usage("--file needs the SOURCE it stands for, e.g. `iocfeed pull threatfox-full --file full.zip`"));
                }
                app.config.sources.iter().map(|s| s.name.clone()).collect()
            } else {
                sources.clone()
            };
            if file.is_some() && names.len() != 1 {
                return Err(usage("--file imports into exactly one SOURCE"));
            }
            for n in &names {
                if app.config.source(n).is_none() {
                    return Err(usage(format!(
                        "no source named {n:?} in {}",
                        config_origin(&cli)
                    )));
                }
            }
            // Each failure is one line; the last one is the command's error (exit 1).
            let mut failed: Vec<String> = Vec::new();
            for n in &names {
                match app.pull_source(n, file.as_deref()) {
                    Ok(s) => crate::log_summary(&s),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            match failed.pop() {
                Some(last) => {
                    for e in failed {
                        eprintln!("iocfeed: error: {e}");
                    }
                    Err(runtime(last))
                }
                None => Ok(()),
            }
        }
        Command::Publish { list, force } => {
            let app = load(&cli, None)?;
            if !force {
                return Err(usage(
                    "publish needs --force: it overrides the safety brake",
                ));
            }
            if app.config.list(list).is_none() {
                return Err(usage(format!(
                    "no list named {list:?} in {}",
                    config_origin(&cli)
                )));
            }
            let mut store = app.store().map_err(runtime)?;
            let tx = store.write().map_err(runtime)?;
            let outcomes = crate::publish::publish_all(&tx, &app.config, app.now(), Some(list))
                .map_err(runtime)?;
            // The operator has looked: source holds are released too, and a held source's next pull is
            // taken as it comes (its size is no longer compared with the pull before the hold).
            let mut released = Vec::new();
            for h in store::holds(&tx).map_err(runtime)? {
                if let Some(source) = h.scope.strip_prefix("source:") {
                    store::clear_hold(&tx, &h.scope).map_err(runtime)?;
                    store::reset_baseline(&tx, source).map_err(runtime)?;
                    released.push(source.to_string());
                }
            }
            tx.commit().map_err(runtime)?;
            for s in released {
                println!("source {s} released: its next pull is published as it comes");
            }
            for o in outcomes {
                let what = match (&o.held, o.changed) {
                    (Some(r), _) => format!("still held: {r}"),
                    (None, true) => "published".to_string(),
                    (None, false) => "unchanged".to_string(),
                };
                println!("{} v{} ({} entries): {what}", o.list, o.version, o.entries);
            }
            Ok(())
        }
        Command::Report { family } => {
            let app = load(&cli, None)?;
            let f = app.config.family(family).ok_or_else(|| {
                usage(format!(
                    "no family named {family:?} in {}",
                    config_origin(&cli)
                ))
            })?;
            let store = app.store().map_err(runtime)?;
            let now = app.now();
            let entries = crate::publish::report::entries(&store.conn, &app.config, f, now)
                .map_err(runtime)?;
            print!("{}", crate::publish::report::render(f, &entries, now));
            Ok(())
        }
        Command::Ioc { value } => {
            let app = load(&cli, None)?;
            let store = app.store().map_err(runtime)?;
            let v = crate::lookup::lookup(&store.conn, &app.config, value, app.now())
                .map_err(runtime)?;
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            Ok(())
        }
        Command::Allow { action } => {
            let app = load(&cli, None)?;
            let mut store = app.store().map_err(runtime)?;
            let now = app.now();
            match action {
                AllowAction::List => {
                    for e in &app.config.allowlist.entries {
                        println!("{e}\tconfig");
                    }
                    for e in crate::allow::stored(&store.conn).map_err(runtime)? {
                        let scope = if e.subdomains { "" } else { " (exact)" };
                        println!(
                            "{}{scope}\t{}\t{}",
                            e.entry,
                            e.origin,
                            e.reason.unwrap_or_default()
                        );
                    }
                    return Ok(());
                }
                AllowAction::Add { value, reason } => {
                    let tx = store.write().map_err(runtime)?;
                    let entry =
                        crate::allow::add(&tx, value, reason.as_deref(), now).map_err(usage)?;
                    let outcomes = crate::publish::publish_all(&tx, &app.config, now, None)
                        .map_err(runtime)?;
                    tx.commit().map_err(runtime)?;
                    println!("allowed {entry}");
                    report_published(&outcomes);
                }
                AllowAction::Rm { value } => {
                    let tx = store.write().map_err(runtime)?;
                    if !crate::allow::remove(&tx, value).map_err(usage)? {
                        return Err(usage(format!(
                            "{value:?} is not an entry added with `allow add`"
                        )));
                    }
                    let outcomes = crate::publish::publish_all(&tx, &app.config, now, None)
                        .map_err(runtime)?;
                    tx.commit().map_err(runtime)?;
                    println!("removed {value}");
                    report_published(&outcomes);
                }
            }
            Ok(())
        }
        Command::Lists => {
            let app = load(&cli, None)?;
            let store = app.store().map_err(runtime)?;
            let mut out = String::new();
            out.push_str(&format!(
                "{:<32} {:>8} {:>8}  {}\n",
                "LIST", "VERSION", "ENTRIES", "UPDATED"
            ));
            for l in &app.config.lists {
                let v = store::latest_version(&store.conn, &l.name).map_err(runtime)?;
                match v {
                    Some(v) => out.push_str(&format!(
                        "{:<32} {:>8} {:>8}  {}\n",
                        l.name,
                        v.version,
                        v.entries,
                        clock::iso(v.published_at)
                    )),
                    None => out.push_str(&format!(
                        "{:<32} {:>8} {:>8}  {}\n",
                        l.name, "-", "-", "never"
                    )),
                }
            }
            print!("{out}");
            Ok(())
        }
        Command::Sources => {
            let app = load(&cli, None)?;
            let store = app.store().map_err(runtime)?;
            // ROWS, ACCEPTED and REJECTED are those of the last successful pull.
            println!(
                "{:<24} {:<21} {:<13} {:<21} {:>8} {:>8} {:>8}  REJECTS / ERROR",
                "SOURCE", "LAST PULL", "RESULT", "LAST OK", "ROWS", "ACCEPTED", "REJECTED"
            );
            for s in &app.config.sources {
                let st = store::source_state(&store.conn, &s.name).map_err(runtime)?;
                let detail = match &st.last_error {
                    Some(e) if st.last_result.as_deref() == Some("error") => e.clone(),
                    _ => st
                        .rejects
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let hold = store::holds(&store.conn)
                    .map_err(runtime)?
                    .into_iter()
                    .find(|h| h.scope == crate::pull::source_scope(&s.name));
                let detail = match hold {
                    Some(h) => format!("HELD since {}: {}", clock::iso(h.since), h.reason),
                    None => detail,
                };
                println!(
                    "{:<24} {:<21} {:<13} {:<21} {:>8} {:>8} {:>8}  {}",
                    s.name,
                    st.last_attempt
                        .map(clock::iso)
                        .unwrap_or_else(|| "never".into()),
                    st.last_result.as_deref().unwrap_or("-"),
                    st.last_success
                        .map(clock::iso)
                        .unwrap_or_else(|| "never".into()),
                    st.rows,
                    st.accepted,
                    st.rejected,
                    detail
                );
                for (reason, samples) in
                    store::reject_samples(&store.conn, &s.name, 3).map_err(runtime)?
                {
                    println!(
                        "{:<24}   recent rejects, {reason}: {}",
                        "",
                        samples.join("  ")
                    );
                }
            }
            for h in store::holds(&store.conn).map_err(runtime)? {
                if h.scope.starts_with("list:") {
                    println!(
                        "HELD {} since {}: {}",
                        h.scope,
                        clock::iso(h.since),
                        h.reason
                    );
                }
            }
            Ok(())
        }
        Command::Export {
            list,
            format,
            version,
            output,
        } => {
            let app = load(&cli, None)?;
            let fmt = Format::parse(format).ok_or_else(|| {
                usage(format!(
                    "--format {format:?}: use one of txt, hosts, rpz, csv, json, stix, kql, edl"
                ))
            })?;
            let l = app.config.list(list).ok_or_else(|| {
                usage(format!("no list named {list:?} in {}", config_origin(&cli)))
            })?;
            if !l.formats.contains(&fmt) {
                return Err(usage(format!("list {list:?} is not published as {format}")));
            }
            let store = app.store().map_err(runtime)?;
            let v = match version {
                Some(n) => store::version(&store.conn, list, *n),
                None => store::latest_version(&store.conn, list),
            }
            .map_err(runtime)?
            .ok_or_else(|| runtime(format!("list {list:?} has no such version")))?;
            let a = store::artifact(&store.conn, list, v.version, fmt.as_str())
                .map_err(runtime)?
                .ok_or_else(|| runtime(format!("list {list:?} v{} has no {format}", v.version)))?;
            match output {
                Some(p) => std::fs::write(p, &a.body)
                    .map_err(|e| runtime(format!("{}: {e}", p.display())))?,
                None => std::io::stdout().write_all(&a.body).map_err(runtime)?,
            }
            Ok(())
        }
    }
}

fn report_published(outcomes: &[crate::publish::Outcome]) {
    for o in outcomes.iter().filter(|o| o.changed || o.held.is_some()) {
        match &o.held {
            Some(r) => println!("{}: held: {r}", o.list),
            None => println!("{}: v{} ({} entries)", o.list, o.version, o.entries),
        }
    }
}

fn config_origin(cli: &Cli) -> String {
    cli.config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the embedded configuration".into())
}

/// Serves until SIGINT/SIGTERM. SIGHUP reloads the configuration: a valid one replaces the running one
/// (scheduler and server restart on the same socket, in-flight requests finish); an invalid one is logged
/// and the running configuration stays.
fn serve_cmd(
    app: App,
    no_schedule: bool,
    reload: impl Fn() -> Result<App, Failure> + Send + Sync + 'static,
) -> Result<(), Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(runtime)?;
    rt.block_on(async move {
        // Create the data directory and schema before the first request or pull.
        app.store().map_err(runtime)?;
        let listen = app.config.server.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| runtime(format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(runtime)?;
        tracing::info!(data_dir = %app.data_dir.display(), "listening on http://{addr}");
        let (exit_tx, exit_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = exit_tx.send(true);
        });
        // One stored permit per SIGHUP not yet acted on: a signal that arrives while the server restarts
        // after a reload is kept for the next round, and a round consumes it, so one signal is one reload.
        let hup = Arc::new(tokio::sync::Notify::new());
        #[cfg(unix)]
        {
            let mut signals = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(runtime)?;
            let hup = hup.clone();
            tokio::spawn(async move {
                while signals.recv().await.is_some() {
                    hup.notify_one();
                }
            });
        }
        let reload = Arc::new(reload);
        let mut app = Arc::new(app);
        loop {
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let sched = (!no_schedule).then(|| tokio::spawn(scheduler::run(app.clone(), stop_rx.clone())));
            let next: Arc<std::sync::Mutex<Option<App>>> = Default::default();
            let (mut exit, hup, slot, reload) = (exit_rx.clone(), hup.clone(), next.clone(), reload.clone());
            let stop = async move {
                loop {
                    tokio::select! {
                        _ = exit.changed() => break,
                        _ = hup.notified() => {
                            match reload() {
                                Ok(new) => {
                                    *slot.lock().unwrap() = Some(new);
                                    break;
                                }
                                Err(f) => tracing::error!("configuration reload refused, keeping the running one: {}", f.message),
                            }
                        }
                    }
                }
                let _ = stop_tx.send(true);
            };
            serve::serve_on(&listener, app.clone(), stop).await.map_err(runtime)?;
            if let Some(s) = sched {
                let _ = s.await;
            }
            let Some(new) = next.lock().unwrap().take() else {
                return Ok(());
            };
            if new.config.server.listen != listen {
                tracing::warn!("server.listen changed to {}: a new address takes a restart", new.config.server.listen);
            }
            new.store().map_err(runtime)?;
            tracing::info!("configuration reloaded");
            app = Arc::new(new);
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
