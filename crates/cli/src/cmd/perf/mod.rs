//! `strom perf produce|consume|e2e`: load generators in the spirit of kafka-producer-perf-test,
//! kafka-consumer-perf-test and EndToEndLatency, reporting records/s, MB/s and latency percentiles.

mod consume;
mod e2e;
mod produce;
mod stats;

use super::{AcksArg, CompressionArg, ConnectArgs};

/// Flags of `strom perf` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct PerfArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PerfCommand {
    /// Produce fixed-size records as fast as allowed; report throughput and ack latency.
    Produce(ProducePerfArgs),
    /// Consume records from the beginning; report throughput.
    Consume(ConsumePerfArgs),
    /// Produce at a fixed rate and consume; report end-to-end latency.
    E2e(E2ePerfArgs),
}

#[derive(Debug, clap::Args)]
struct ProducePerfArgs {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long)]
    num_records: u64,
    /// Value size in bytes.
    #[arg(long)]
    record_size: usize,
    /// Acknowledgement level.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Target records/s; -1 = unlimited.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    throughput: i64,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Compression codec.
    #[arg(long, value_enum, default_value = "none")]
    compression: CompressionArg,
}

#[derive(Debug, clap::Args)]
struct ConsumePerfArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Number of records to consume.
    #[arg(long)]
    messages: u64,
}

#[derive(Debug, clap::Args)]
struct E2ePerfArgs {
    /// Topic to write to and read from.
    #[arg(long)]
    topic: String,
    /// Records per second to produce.
    #[arg(long)]
    rate: u64,
    /// Number of records.
    #[arg(long)]
    num_records: u64,
    /// Value size in bytes (at least 8: the send timestamp is carried in the value).
    #[arg(long)]
    record_size: usize,
}

pub(crate) fn run(args: PerfArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            PerfCommand::Produce(a) => produce::run(client, a).await,
            PerfCommand::Consume(a) => consume::run(client, a).await,
            PerfCommand::E2e(a) => e2e::run(client, a).await,
        }
    })
}

/// Bytes per MB in reports (Kafka's perf tools use 1024 * 1024).
const MB: f64 = 1024.0 * 1024.0;
