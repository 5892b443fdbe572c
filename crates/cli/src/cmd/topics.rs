//! `strom topics create|list|describe|delete`: topic administration over the Kafka protocol.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context};
use strom_client::{Client, OffsetSpec, TopicMetadata, TopicPartition};

use super::ConnectArgs;

/// Flags of `strom topics` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(long)]
        replication_factor: Option<i16>,
        /// A topic config override, `key=value`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// List topic names, one per line, sorted.
    List,
    /// Show partitions, leaders, replicas, ISR, offsets and config overrides.
    Describe {
        /// Topic to describe (default: all).
        name: Option<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Raise a topic's partition count (partitions are never removed).
    Alter {
        /// Topic name.
        name: String,
        /// The new partition count.
        #[arg(long)]
        partitions: i32,
    },
}

pub(crate) fn run(args: TopicsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            TopicsCommand::Create {
                name,
                partitions,
                replication_factor,
                config,
            } => {
                let configs = parse_configs(&config)?;
                client
                    .create_topic(
                        &name,
                        partitions.unwrap_or(-1),
                        replication_factor.unwrap_or(-1),
                        &configs,
                    )
                    .await?;
                println!("Created topic {name}.");
            }
            TopicsCommand::List => {
                for name in client.list_topics().await? {
                    println!("{name}");
                }
            }
            TopicsCommand::Describe { name } => {
                print!("{}", describe(&client, name.as_deref()).await?)
            }
            TopicsCommand::Delete { name } => {
                client.delete_topics(&[&name]).await?;
                println!("Deleted topic {name}.");
            }
            TopicsCommand::Alter { name, partitions } => {
                client.create_partitions(&name, partitions).await?;
                println!("Topic {name} now has {partitions} partitions.");
            }
        }
        Ok(())
    })
}

fn parse_configs(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut configs = BTreeMap::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--config {pair:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--config {pair:?}: empty key");
        }
        configs.insert(k.to_owned(), v.to_owned());
    }
    Ok(configs)
}

/// Renders the describe table: one row per partition, then each topic's config overrides.
async fn describe(client: &Client, name: Option<&str>) -> anyhow::Result<String> {
    let names: Option<Vec<&str>> = name.map(|n| vec![n]);
    let topics = client.describe_topics(names.as_deref()).await?;
    let partitions: Vec<TopicPartition> =
        topics.iter().flat_map(|t| t.topic_partitions()).collect();
    let spec = |s: OffsetSpec| {
        partitions
            .iter()
            .map(|tp| (tp.clone(), s))
            .collect::<Vec<_>>()
    };
    // Offsets are best effort: a partition without a leader still gets its row.
    let starts = client
        .list_offsets(&spec(OffsetSpec::Earliest))
        .await
        .unwrap_or_default();
    let ends = client
        .list_offsets(&spec(OffsetSpec::Latest))
        .await
        .unwrap_or_default();

    let mut rows = vec![[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "LOG-START-OFFSET",
        "LOG-END-OFFSET",
    ]
    .map(String::from)
    .to_vec()];
    for t in &topics {
        for p in &t.partitions {
            let tp = TopicPartition::new(&t.name, p.partition);
            let offset =
                |m: &std::collections::HashMap<TopicPartition, strom_client::ListedOffset>| {
                    m.get(&tp)
                        .map_or_else(|| "-".to_owned(), |o| o.offset.to_string())
                };
            rows.push(vec![
                t.name.clone(),
                p.partition.to_string(),
                p.leader
                    .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                join(&p.replicas),
                join(&p.isr),
                offset(&starts),
                offset(&ends),
            ]);
        }
    }
    let mut out = render_table(&rows);
    for t in &topics {
        let overrides = config_overrides(client, t).await?;
        if !overrides.is_empty() {
            let _ = writeln!(out, "\nConfigs for {}: {}", t.name, overrides.join(", "));
        }
    }
    Ok(out)
}

async fn config_overrides(client: &Client, topic: &TopicMetadata) -> anyhow::Result<Vec<String>> {
    let entries = client
        .describe_topic_configs(&topic.name)
        .await
        .with_context(|| format!("describe configs of {}", topic.name))?;
    Ok(entries
        .iter()
        .filter(|e| e.is_topic_override())
        .map(|e| {
            let value = if e.sensitive {
                "<sensitive>"
            } else {
                e.value.as_deref().unwrap_or("null")
            };
            format!("{}={}", e.name, value)
        })
        .collect())
}

pub(crate) fn join(ids: &[i32]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn render_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_key_value_pairs() {
        let c = parse_configs(&[
            "retention.ms=1000".into(),
            "cleanup.policy=compact,delete".into(),
        ])
        .unwrap();
        assert_eq!(c["retention.ms"], "1000");
        assert_eq!(c["cleanup.policy"], "compact,delete");
        assert!(parse_configs(&["nope".into()]).is_err());
        assert!(parse_configs(&["=x".into()]).is_err());
        assert_eq!(parse_configs(&["a=".into()]).unwrap()["a"], "");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["A".to_owned(), "BB".to_owned()],
            vec!["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(render_table(&rows), "A    BB\nccc  d\n");
    }
}
