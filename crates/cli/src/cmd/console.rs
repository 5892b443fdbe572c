//! `strom console`: the web console served on its own, next to a broker it reaches as a client
//! (like kafka-ui). `strom serve` will mount the same router on its HTTP address; this command is
//! for a remote cluster, or for a broker started without HTTP.

use anyhow::Context;

use super::ConnectArgs;

/// Flags of `strom console` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Where to serve the console, HOST:PORT (port 0: any free port, printed at start).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    http_listen: String,
    /// Ask visitors for HTTP basic credentials and log in to the cluster as them with this SASL
    /// mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), so the broker's ACLs decide what each
    /// may see and do. TLS still comes from --command-config (e.g. security.protocol=SSL and a
    /// truststore for SASL_SSL).
    #[arg(long, value_name = "MECHANISM", value_parser = parse_login)]
    login: Option<strom_client::Mechanism>,
    /// The origin the console is reached at also serves the broker's Prometheus `/metrics` (a
    /// reverse proxy in front of both): the overview then draws its throughput sparkline.
    #[arg(long)]
    origin_serves_metrics: bool,
}

fn parse_login(name: &str) -> Result<strom_client::Mechanism, String> {
    strom_client::Mechanism::parse(&name.to_ascii_uppercase())
        .filter(|m| *m != strom_client::Mechanism::OAuthBearer)
        .ok_or_else(|| format!("{name}: expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
}

pub(crate) fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = strom_console::ConsoleConfig {
        client: args.connect.client_config()?,
        metrics_at_origin: args.origin_serves_metrics,
        login: args.login,
    };
    super::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.http_listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.http_listen))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // A stable line on stdout: scripts and tests started with port 0 learn the URL from it.
        println!("strom: console on http://{addr}/");
        axum::serve(listener, strom_console::router(config))
            .with_graceful_shutdown(async {
                if let Err(e) = super::serve::wait_for_signal().await {
                    tracing::warn!(error = %e, "cannot wait for a signal; stopping");
                }
            })
            .await
            .context("serving the console")
    })
}
