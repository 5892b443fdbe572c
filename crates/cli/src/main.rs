//! The `strom` binary: parses the command line and dispatches to one module per command.
//! Everything of substance lives in the library crates (`strom-broker`, `strom-client`).

use clap::{Parser, Subcommand};

mod cmd;
mod reserving_alloc;

#[global_allocator]
static ALLOCATOR: reserving_alloc::ReservingAllocator = reserving_alloc::ReservingAllocator;

#[derive(Debug, Parser)]
#[command(
    name = "strom",
    version,
    about = "Strom: a Kafka-compatible streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (zero-config: data in ./data, listening on 127.0.0.1:9092).
    Serve(cmd::serve::ServeArgs),
    /// Create, list, describe and delete topics.
    Topics(cmd::topics::TopicsArgs),
    /// Write stdin lines to a topic, one record per line.
    Produce(cmd::produce::ProduceArgs),
    /// Print a topic's records to stdout.
    Consume(cmd::consume::ConsumeArgs),
    /// Producer, consumer and end-to-end load tests.
    Perf(cmd::perf::PerfArgs),
    /// Describe and alter topic and broker configs.
    Configs(cmd::configs::ConfigsArgs),
    /// Delete records below an offset.
    Records(cmd::records::RecordsArgs),
    /// List, describe, reset offsets of and delete consumer groups.
    Groups(cmd::groups::GroupsArgs),
    /// List and describe transactions and the producers on a partition.
    Transactions(cmd::transactions::TransactionsArgs),
    /// Describe the cluster: brokers, controller, fenced brokers, under-replicated partitions.
    Cluster(cmd::cluster::ClusterArgs),
    /// Create, list and delete SCRAM users (kafka-configs --entity-type users).
    Users(cmd::users::UsersArgs),
    /// List, describe and delete share groups (kafka-share-groups).
    ShareGroups(cmd::share_groups::ShareGroupsArgs),
    /// Add, list and remove ACLs (kafka-acls).
    Acls(cmd::acls::AclsArgs),
    /// Describe and alter client quotas (kafka-configs --entity-type users|clients|ips).
    Quotas(cmd::quotas::QuotasArgs),
    /// Serve the web console for a cluster (standalone, next to a broker).
    Console(cmd::console::ConsoleArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => cmd::serve::run(args),
        Command::Topics(args) => cmd::topics::run(args),
        Command::Produce(args) => cmd::produce::run(args),
        Command::Consume(args) => cmd::consume::run(args),
        Command::Perf(args) => cmd::perf::run(args),
        Command::Configs(args) => cmd::configs::run(args),
        Command::Records(args) => cmd::records::run(args),
        Command::Groups(args) => cmd::groups::run(args),
        Command::Transactions(args) => cmd::transactions::run(args),
        Command::Cluster(args) => cmd::cluster::run(args),
        Command::Users(args) => cmd::users::run(args),
        Command::ShareGroups(args) => cmd::share_groups::run(args),
        Command::Acls(args) => cmd::acls::run(args),
        Command::Quotas(args) => cmd::quotas::run(args),
        Command::Console(args) => cmd::console::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
