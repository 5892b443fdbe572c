//! `strom records delete`: DeleteRecords, moving a partition's log start offset forward.

use strom_client::TopicPartition;

use super::ConnectArgs;

/// Flags of `strom records` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct RecordsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: RecordsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RecordsCommand {
    /// Delete every record of a partition below an offset.
    Delete {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
        /// Records below this offset go; -1 deletes up to the high watermark.
        #[arg(long, allow_hyphen_values = true)]
        before_offset: i64,
    },
}

pub(crate) fn run(args: RecordsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            RecordsCommand::Delete {
                topic,
                partition,
                before_offset,
            } => {
                let tp = TopicPartition::new(&topic, partition);
                let low = client.delete_records(&tp, before_offset).await?;
                println!("Deleted records of {tp} below {low}; low watermark is now {low}.");
            }
        }
        Ok(())
    })
}
