//! `strom serve`: run a broker until Ctrl-C / SIGTERM, then shut down cleanly (in-flight requests
//! answered, logs flushed, clean-shutdown marker written).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use strom_broker::{add_scram_if_absent, parse_properties, BrokerConfig, BrokerServer};
use strom_http::{BasicAuth, HttpListen, HttpServer, HttpState};
use strom_security::BootstrapScramCredential;

/// Flags of `strom serve` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Directory holding partition logs and metadata (Kafka: log.dirs) [default: ./data].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// One PLAINTEXT listener at HOST:PORT, the shorthand of Kafka's `listeners` (which, set with
    /// --set or --config, names any number of listeners and their security) [default:
    /// 127.0.0.1:9092].
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Address advertised to clients in Metadata (Kafka: advertised.listeners).
    #[arg(long)]
    pub(crate) advertised_listener: Option<String>,
    /// This node's id (Kafka: node.id) [default: 1].
    #[arg(long)]
    pub(crate) node_id: Option<i32>,
    /// Controller quorum listener HOST:PORT (Kafka: the CONTROLLER entry of listeners).
    #[arg(long)]
    pub(crate) controller_listen: Option<String>,
    /// Controller quorum voters `id@host:port,...` (Kafka: controller.quorum.voters); omitted =
    /// a one-node cluster of itself.
    #[arg(long)]
    pub(crate) voters: Option<String>,
    /// Any Kafka broker config, `name=value`; repeatable; wins over --config.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub(crate) set: Vec<String>,
    /// A Kafka-style server.properties file.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// A SCRAM credential to create at start when the user has none for that mechanism, in
    /// Kafka's `kafka-storage format --add-scram` form:
    /// `SCRAM-SHA-512=[name=admin,password=admin-secret]` (also `iterations=`, `salt=`);
    /// repeatable.
    #[arg(long = "add-scram", value_name = "MECHANISM=[name=..,password=..]",
          value_parser = |s: &str| BootstrapScramCredential::parse(s).map_err(|e| e.to_string()))]
    pub(crate) add_scram: Vec<BootstrapScramCredential>,
    /// The HTTP endpoint (/health, /ready, /metrics) at HOST:PORT, or `none` (config:
    /// http.listeners) [default: 127.0.0.1:9644; skipped with a warning when taken].
    #[arg(long)]
    pub(crate) http_listen: Option<String>,
    /// Log lines as text (default) or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

/// Merges --config, then --set, then the dedicated flags into Kafka properties.
fn properties(args: &ServeArgs) -> anyhow::Result<BTreeMap<String, String>> {
    let mut props = BTreeMap::new();
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        props.extend(parse_properties(&text)?);
    }
    for kv in &args.set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set expects name=value, got {kv:?}"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(d) = &args.data_dir {
        props.insert("log.dirs".into(), d.display().to_string());
    }
    if let Some(l) = &args.listen {
        props.insert("listeners".into(), format!("PLAINTEXT://{l}"));
    }
    if let Some(c) = &args.controller_listen {
        let base = props
            .get("listeners")
            .cloned()
            .unwrap_or_else(|| "PLAINTEXT://127.0.0.1:9092".into());
        props.insert("listeners".into(), format!("{base},CONTROLLER://{c}"));
    }
    if let Some(n) = args.node_id {
        props.insert("node.id".into(), n.to_string());
    }
    if let Some(v) = &args.voters {
        props.insert("controller.quorum.voters".into(), v.clone());
    }
    if let Some(h) = &args.http_listen {
        props.insert("http.listeners".into(), h.clone());
    }
    if let Some(a) = &args.advertised_listener {
        props.insert("advertised.listeners".into(), format!("PLAINTEXT://{a}"));
    }
    Ok(props)
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        // openraft narrates every vote and retry at info; its warnings are enough.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    let props = properties(&args)?;
    let http = HttpListen::parse(props.get("http.listeners").map(String::as_str))?;
    let config = BrokerConfig::from_properties(&props)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        // Bound first: an explicit address that is taken fails start-up before any storage
        // is touched, and the probes answer (503 on /ready) while the broker starts.
        let http_state = HttpState::default();
        let console = Arc::new(OnceLock::new());
        let http = http
            .bind()
            .await?
            .map(|l| HttpServer::start(l, http_state.clone(), deferred(console.clone())));
        let console_config = config.clone();
        let server = BrokerServer::start(config).await?;
        if let Some(c) = console_for(&console_config, server.local_addrs()) {
            let _ = console.set(strom_console::router(c));
        }
        http_state.set_broker(
            server.broker().clone(),
            BasicAuth::new(server.sasl_servers()),
        );
        // Before the listening line, so a script that waits for it can log in with them (a
        // node whose quorum is not up yet writes them in the background).
        add_scram_if_absent(server.broker().metadata.clone(), args.add_scram).await;
        // A stable line on stdout so scripts and tests started with `--listen 127.0.0.1:0`
        // learn the port.
        println!("strom: listening on {}", server.local_addr());
        // Then every client listener by name (tests with several listeners on port 0).
        for (name, addr) in server.local_addrs() {
            println!("strom: listener {name} on {addr}");
        }
        if let Some(h) = &http {
            println!("strom: http on {}", h.local_addr());
        }
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        if let Some(h) = http {
            h.shutdown().await;
        }
        anyhow::Ok(())
    })
}

/// The console's routes, served once they are set (the broker's address is known only after it
/// started; until then `strom_http` answers 503 anyway).
fn deferred(console: Arc<OnceLock<axum::Router>>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let console = console.clone();
        async move {
            use axum::response::IntoResponse;
            match console.get() {
                Some(router) => match tower::ServiceExt::oneshot(router.clone(), req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                None => axum::http::StatusCode::NOT_FOUND.into_response(),
            }
        }
    })
}

/// The web console of this broker, as a Kafka client of its own first PLAINTEXT listener, or of
/// a SASL_PLAINTEXT one with each visitor's HTTP basic credentials as the SASL login (PLAIN, else
/// SCRAM-SHA-512, else SCRAM-SHA-256, whichever the broker enables), so the broker's ACLs decide
/// what each visitor sees. None on TLS-only brokers (not served there yet).
fn console_for(
    config: &BrokerConfig,
    bound: &[(String, std::net::SocketAddr)],
) -> Option<strom_console::ConsoleConfig> {
    use strom_security::SecurityProtocol;
    let protocol = |name: &str| {
        config
            .listeners
            .listeners
            .iter()
            .find(|l| l.name.as_str() == name)
            .map(|l| l.protocol)
    };
    let reachable = |addr: &std::net::SocketAddr| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        format!("{host}:{}", addr.port())
    };
    if let Some((_, addr)) = bound
        .iter()
        .find(|(n, _)| protocol(n) == Some(SecurityProtocol::Plaintext))
    {
        let mut c = strom_console::ConsoleConfig::new(reachable(addr));
        c.metrics_at_origin = true;
        return Some(c);
    }
    let (_, addr) = bound
        .iter()
        .find(|(n, _)| protocol(n) == Some(SecurityProtocol::SaslPlaintext))?;
    let enabled = config
        .value("sasl.enabled.mechanisms")
        .unwrap_or_default()
        .to_ascii_uppercase();
    let login = ["PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"]
        .into_iter()
        .find(|m| enabled.split(',').any(|e| e.trim() == *m))
        .and_then(strom_client::Mechanism::parse)?;
    let mut c = strom_console::ConsoleConfig::new(reachable(addr));
    c.metrics_at_origin = true;
    c.login = Some(login);
    Some(c)
}

pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
