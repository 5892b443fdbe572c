//! `strom transactions list|describe|describe-producers`: transaction administration, like
//! kafka-transactions (ListTransactions, DescribeTransactions, DescribeProducers).

use std::fmt::Write as _;

use anyhow::Context;
use strom_client::{ProducerDescription, TransactionDescription};

use super::ConnectArgs;

/// Flags of `strom transactions` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct TransactionsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: TransactionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TransactionsCommand {
    /// Transactional ids with producer id, epoch, state, timeout and partitions.
    List {
        /// Only transactions in this state (Ongoing, CompleteCommit, …); repeatable.
        #[arg(long, value_name = "STATE")]
        state: Vec<String>,
    },
    /// One transactional id: producer id, epoch, state, timeout, start time and partitions.
    Describe {
        /// transactional.id.
        transactional_id: String,
    },
    /// The producers with state on one partition (DescribeProducers).
    DescribeProducers {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long, default_value_t = 0)]
        partition: i32,
    },
}

pub(crate) fn run(args: TransactionsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            TransactionsCommand::List { state } => {
                let listed = client
                    .list_transactions(&state)
                    .await
                    .context("listing transactions")?;
                let mut descs = Vec::with_capacity(listed.len());
                for t in &listed {
                    // Described one by one at the coordinator: ListTransactions carries no epoch,
                    // timeout or partitions. A transactional id expired in between is shown as listed.
                    let d = client
                        .describe_transaction(&t.transactional_id)
                        .await
                        .unwrap_or_else(|_| TransactionDescription {
                            transactional_id: t.transactional_id.clone(),
                            state: t.state.clone(),
                            producer_id: t.producer_id,
                            producer_epoch: -1,
                            timeout_ms: -1,
                            start_time_ms: -1,
                            partitions: Vec::new(),
                        });
                    descs.push(d);
                }
                print!("{}", render_transactions(&descs));
            }
            TransactionsCommand::Describe { transactional_id } => {
                let d = client
                    .describe_transaction(&transactional_id)
                    .await
                    .with_context(|| format!("describing transaction {transactional_id}"))?;
                print!("{}", render_transactions(std::slice::from_ref(&d)));
            }
            TransactionsCommand::DescribeProducers { topic, partition } => {
                let ps = client
                    .describe_producers(&topic, partition)
                    .await
                    .with_context(|| format!("describing producers of {topic}-{partition}"))?;
                print!("{}", render_producers(&ps));
            }
        }
        Ok(())
    })
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn render_transactions(descs: &[TransactionDescription]) -> String {
    let mut rows = vec![[
        "TRANSACTIONAL-ID",
        "PRODUCER-ID",
        "EPOCH",
        "STATE",
        "TIMEOUT-MS",
        "START-TIME-MS",
        "PARTITIONS",
    ]
    .map(String::from)
    .to_vec()];
    let opt = |v: i64| {
        if v < 0 {
            "-".to_string()
        } else {
            v.to_string()
        }
    };
    for d in descs {
        let parts = if d.partitions.is_empty() {
            "-".to_string()
        } else {
            d.partitions
                .iter()
                .map(|tp| format!("{}-{}", tp.topic, tp.partition))
                .collect::<Vec<_>>()
                .join(",")
        };
        rows.push(vec![
            d.transactional_id.clone(),
            d.producer_id.to_string(),
            opt(i64::from(d.producer_epoch)),
            d.state.clone(),
            opt(i64::from(d.timeout_ms)),
            opt(d.start_time_ms),
            parts,
        ]);
    }
    table(&rows)
}

fn render_producers(ps: &[ProducerDescription]) -> String {
    let mut rows = vec![[
        "PRODUCER-ID",
        "EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "CURRENT-TXN-START-OFFSET",
    ]
    .map(String::from)
    .to_vec()];
    for p in ps {
        rows.push(vec![
            p.producer_id.to_string(),
            p.producer_epoch.to_string(),
            p.last_sequence.to_string(),
            p.last_timestamp.to_string(),
            if p.current_txn_start_offset < 0 {
                "-".to_string()
            } else {
                p.current_txn_start_offset.to_string()
            },
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_client::TopicPartition;

    #[test]
    fn renders_aligned_table() {
        let d = TransactionDescription {
            transactional_id: "tx-1".into(),
            state: "Ongoing".into(),
            producer_id: 7,
            producer_epoch: 2,
            timeout_ms: 60000,
            start_time_ms: -1,
            partitions: vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)],
        };
        let out = render_transactions(&[d]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("TRANSACTIONAL-ID  PRODUCER-ID  EPOCH  STATE"));
        assert!(lines[1].starts_with("tx-1              7            2      Ongoing"));
        assert!(
            lines[1].ends_with("60000       -              t-0,t-1"),
            "{}",
            lines[1]
        );
    }
}
