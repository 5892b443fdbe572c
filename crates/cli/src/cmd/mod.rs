//! One module per `strom` subcommand, plus the bits they share: the `--bootstrap-server` flag,
//! the `--acks`/`--compression` value types, and a tokio runtime for the client commands
//! (`serve` runs its own).

use anyhow::Context;

pub(crate) mod cluster;
pub(crate) mod configs;
pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod perf;
pub(crate) mod produce;
pub(crate) mod records;
pub(crate) mod serve;
pub(crate) mod topics;
pub(crate) mod transactions;

/// `--bootstrap-server`, accepted by every client command (at any subcommand level).
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
}

impl ConnectArgs {
    pub(crate) async fn connect(&self) -> anyhow::Result<strom_client::Client> {
        strom_client::Client::connect(&self.bootstrap_server)
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
