//! One module per `strom` subcommand, plus the bits they share: the connection flags
//! (`--bootstrap-server`, `--command-config`), the `--acks`/`--compression` value types, and a
//! tokio runtime for the client commands (`serve` runs its own).

use anyhow::Context;

pub(crate) mod acls;
pub(crate) mod cluster;
pub(crate) mod configs;
pub(crate) mod console;
pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod perf;
pub(crate) mod produce;
pub(crate) mod quotas;
pub(crate) mod records;
pub(crate) mod serve;
pub(crate) mod share_groups;
pub(crate) mod topics;
pub(crate) mod transactions;
pub(crate) mod users;

/// How every client command reaches the cluster, accepted at any subcommand level. Each command
/// makes its connections through [`ConnectArgs::connect`], so the security settings apply to the
/// bootstrap connection and to every broker connection alike.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ConnectArgs {
    /// Broker to bootstrap from (Kafka: bootstrap.servers); a comma-separated list also works.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092"
    )]
    pub(crate) bootstrap_server: String,
    /// Client properties file, as Kafka's tools take it: security.protocol, sasl.mechanism,
    /// sasl.jaas.config (PlainLoginModule / ScramLoginModule username="…" password="…"),
    /// ssl.truststore.location (PEM), ssl.keystore.location; librdkafka's sasl.username,
    /// sasl.password and ssl.ca.location too.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) command_config: Option<std::path::PathBuf>,
}

impl ConnectArgs {
    /// The client settings these flags describe (the properties file read and checked).
    pub(crate) fn client_config(&self) -> anyhow::Result<strom_client::ClientConfig> {
        let mut config = strom_client::ClientConfig::new(&self.bootstrap_server);
        if let Some(path) = &self.command_config {
            config.security = strom_client::Security::load(path)
                .with_context(|| format!("invalid --command-config {}", path.display()))?;
        }
        Ok(config)
    }

    pub(crate) async fn connect(&self) -> anyhow::Result<strom_client::Client> {
        strom_client::Client::with_config(self.client_config()?)
            .await
            .with_context(|| format!("cannot connect to {}", self.bootstrap_server))
    }
}

/// `--acks all|1|0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AcksArg {
    /// Wait for all in-sync replicas.
    All,
    /// Wait for the leader only.
    #[value(name = "1")]
    Leader,
    /// Do not wait (offsets unknown, errors unseen).
    #[value(name = "0")]
    None,
}

impl From<AcksArg> for strom_client::Acks {
    fn from(a: AcksArg) -> Self {
        match a {
            AcksArg::All => strom_client::Acks::All,
            AcksArg::Leader => strom_client::Acks::Leader,
            AcksArg::None => strom_client::Acks::None,
        }
    }
}

/// `--compression none|gzip|snappy|lz4|zstd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl From<CompressionArg> for strom_client::Compression {
    fn from(c: CompressionArg) -> Self {
        match c {
            CompressionArg::None => strom_client::Compression::None,
            CompressionArg::Gzip => strom_client::Compression::Gzip,
            CompressionArg::Snappy => strom_client::Compression::Snappy,
            CompressionArg::Lz4 => strom_client::Compression::Lz4,
            CompressionArg::Zstd => strom_client::Compression::Zstd,
        }
    }
}

/// A multi-threaded runtime for one client command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}
