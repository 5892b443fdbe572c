//! `strom share-groups list|describe|delete`: share-group (KIP-932) administration, like
//! kafka-share-groups (`--list`, `--describe --members`, `--delete`). Offsets (`reset-offsets`)
//! wait for the share-group offset APIs.

use std::fmt::Write as _;

use anyhow::Context;
use strom_client::ShareGroupDescription;

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
    /// The group's state, epoch and members with their assigned partitions.
    Describe {
        /// Group id.
        group: String,
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
                if desc.state == "Dead" {
                    anyhow::bail!("share group {group} does not exist");
                }
                print!("{}", render(&desc));
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
