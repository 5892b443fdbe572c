//! `strom share-groups list|describe|reset-offsets|delete-offsets|delete`: share-group (KIP-932)
//! administration, like kafka-share-groups (`--list`, `--describe --members --offsets`,
//! `--reset-offsets`, `--delete-offsets`, `--delete`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use strom_client::{Client, OffsetSpec, ShareGroupDescription, TopicPartition};

use super::groups::{reset_plan, ResetArgs};
use super::ConnectArgs;

/// Flags of `strom share-groups` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ShareGroupsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ShareGroupsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ShareGroupsCommand {
    /// List share group ids with their state, sorted.
    List,
    /// The group's state, epoch and members with their assigned partitions, then each share
    /// partition's start offset and lag (records from it to the log end).
    Describe {
        /// Group id.
        group: String,
    },
    /// Move the group's share-partition start offsets on a topic (the group must have no
    /// members); records before the new start are never delivered, those after are available.
    ResetOffsets(ResetArgs),
    /// Forget the group's state on a topic (the group must have no members): the next member
    /// starts there at `share.auto.offset.reset`.
    DeleteOffsets {
        /// Group id.
        group: String,
        /// Topic whose state to delete.
        #[arg(long)]
        topic: String,
    },
    /// Delete a share group (it must have no members).
    Delete {
        /// Group id.
        group: String,
    },
}

pub(crate) fn run(args: ShareGroupsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            ShareGroupsCommand::List => {
                let groups = client
                    .list_share_groups()
                    .await
                    .context("listing share groups")?;
                print!("{}", super::groups::listing(&groups, true));
            }
            ShareGroupsCommand::Describe { group } => {
                let desc = client
                    .describe_share_group(&group)
                    .await
                    .with_context(|| format!("describing share group {group}"))?;
                let offsets = client
                    .describe_share_group_offsets(&group)
                    .await
                    .with_context(|| format!("describing share group offsets of {group}"))?;
                if desc.state == "Dead" && offsets.is_empty() {
                    bail!("share group {group} does not exist");
                }
                print!("{}", render(&desc));
                print!("{}", render_offsets(&client, &group, &offsets).await?);
            }
            ShareGroupsCommand::ResetOffsets(r) => reset(&client, r).await?,
            ShareGroupsCommand::DeleteOffsets { group, topic } => {
                empty_or_bail(&client, &group).await?;
                client
                    .delete_share_group_offsets(&group, std::slice::from_ref(&topic))
                    .await
                    .with_context(|| format!("deleting offsets of share group {group}"))?;
                println!("Deleted the offsets of share group {group} on topic {topic}");
            }
            ShareGroupsCommand::Delete { group } => {
                client
                    .delete_group(&group)
                    .await
                    .with_context(|| format!("deleting share group {group}"))?;
                println!("Deleted share group {group}");
            }
        }
        Ok(())
    })
}

/// kafka-share-groups' member table: one line per member with its partitions.
fn render(desc: &ShareGroupDescription) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "GROUP {} STATE {} EPOCH {} MEMBERS {}",
        desc.group_id,
        desc.state,
        desc.group_epoch,
        desc.members.len()
    );
    let w = desc
        .members
        .iter()
        .map(|m| m.member_id.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let _ = writeln!(out, "{:<w$}  EPOCH  ASSIGNMENT", "MEMBER-ID");
    for m in &desc.members {
        let parts: Vec<String> = m
            .assignment
            .iter()
            .map(|tp| format!("{}:{}", tp.topic, tp.partition))
            .collect();
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {}",
            m.member_id,
            m.member_epoch,
            parts.join(",")
        );
    }
    out
}

/// Offsets can change only while nobody consumes (Kafka's rule, checked by the broker too).
async fn empty_or_bail(client: &Client, group: &str) -> anyhow::Result<()> {
    let desc = client
        .describe_share_group(group)
        .await
        .with_context(|| format!("describing share group {group}"))?;
    if !desc.members.is_empty() {
        bail!(
            "share group {group} has {} active members; its offsets can only change while it \
             is empty: stop its consumers first",
            desc.members.len()
        );
    }
    Ok(())
}

async fn reset(client: &Client, r: ResetArgs) -> anyhow::Result<()> {
    let group = r.group.clone();
    empty_or_bail(client, &group).await?;
    let plan = reset_plan(client, &r).await?;
    if r.execute {
        client
            .alter_share_group_offsets(&group, &plan)
            .await
            .with_context(|| format!("resetting offsets of share group {group}"))?;
        eprintln!("Offsets of share group {group} reset.");
    } else {
        eprintln!("Dry run: nothing changed. Add --execute to apply these offsets.");
    }
    Ok(())
}

/// kafka-share-groups' offsets table: start offset and lag (log end − start offset) per share
/// partition.
async fn render_offsets(
    client: &Client,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<String> {
    let query: Vec<(TopicPartition, OffsetSpec)> = offsets
        .keys()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let ends = client
        .list_offsets(&query)
        .await
        .context("listing log end offsets")?;
    let tw = offsets
        .keys()
        .map(|tp| tp.topic.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let gw = group.len().max(5);
    let mut out = format!(
        "{:<gw$}  {:<tw$}  PARTITION  START-OFFSET  LAG\n",
        "GROUP", "TOPIC"
    );
    for (tp, start) in offsets {
        let lag = ends
            .get(tp)
            .filter(|_| *start >= 0)
            .map_or("-".to_string(), |end| {
                (end.offset - start).max(0).to_string()
            });
        let _ = writeln!(
            out,
            "{group:<gw$}  {:<tw$}  {:<9}  {:<12}  {lag}",
            tp.topic, tp.partition, start
        );
    }
    Ok(out)
}
