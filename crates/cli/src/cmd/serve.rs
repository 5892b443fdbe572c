//! `strom serve`: run a broker until Ctrl-C / SIGTERM, then shut down cleanly (in-flight requests
//! answered, logs flushed, clean-shutdown marker written).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use strom_broker::{add_scram_if_absent, parse_properties, BrokerConfig, BrokerServer};
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
    if let Some(a) = &args.advertised_listener {
        props.insert("advertised.listeners".into(), format!("PLAINTEXT://{a}"));
    }
    Ok(props)
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
        // openraft narrates every vote and retry at info; its warnings are enough.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = BrokerConfig::from_properties(&properties(&args)?)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom")
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let server = BrokerServer::start(config).await?;
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
        wait_for_signal().await?;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })
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
