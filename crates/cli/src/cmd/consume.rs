//! `strom consume`: print a topic's records, like kafka-console-consumer. Without `--group` it
//! reads assigned partitions; with `--group G` it joins consumer group G (subscribed to
//! `--topic`), resumes after the group's committed offsets and commits what it printed (after a
//! batch, at most once a second, and on exit), so a restart continues where it stopped. With
//! `--share-group G` it is a member of share group G (KIP-932, like kafka-console-share-consumer):
//! records are shared with the group's other members, and each is accepted once printed.

use std::io::Write;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use strom_client::{
    AcknowledgeType, Consumer, ConsumerConfig, ConsumerRecord, GroupConfig, GroupConsumer,
    OffsetReset, ShareConsumer, ShareConsumerConfig, StartOffset, TopicPartition,
};

use super::ConnectArgs;

/// Flags of `strom consume` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the earliest offset instead of the latest.
    #[arg(long)]
    from_beginning: bool,
    /// Join this consumer group (Kafka: group.id) instead of reading every partition; with
    /// --from-beginning, partitions without a committed offset start at the earliest.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    group: Option<String>,
    /// Consume as a member of this share group (KIP-932): the group's members share the
    /// records, and each record is accepted once printed. Where the group starts in a partition
    /// is its `share.auto.offset.reset` config (latest unless set), so --from-beginning does not
    /// apply.
    #[arg(long, conflicts_with_all = ["group", "partition", "offset", "from_beginning"])]
    share_group: Option<String>,
    /// Read only this partition.
    #[arg(long)]
    partition: Option<i32>,
    /// Start offset in --partition: a number, `earliest` or `latest`.
    #[arg(long, requires = "partition", value_parser = parse_offset)]
    offset: Option<StartOffset>,
    /// Exit after printing this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Print `key<TAB>value`.
    #[arg(long)]
    print_key: bool,
    /// Prefix each line with `partition:offset<TAB>`.
    #[arg(long)]
    print_offset: bool,
}

fn parse_offset(s: &str) -> Result<StartOffset, String> {
    match s {
        "earliest" => Ok(StartOffset::Earliest),
        "latest" => Ok(StartOffset::Latest),
        n => match n.parse::<i64>() {
            Ok(o) if o >= 0 => Ok(StartOffset::Offset(o)),
            _ => Err(format!(
                "{s:?} is not an offset (a non-negative number, earliest or latest)"
            )),
        },
    }
}

pub(crate) fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        let start = match (args.offset, args.from_beginning) {
            (Some(o), _) => o,
            (None, true) => StartOffset::Earliest,
            (None, false) => StartOffset::Latest,
        };
        let reset = if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        };
        let config = ConsumerConfig {
            auto_offset_reset: reset,
            ..ConsumerConfig::default()
        };
        if let Some(group) = &args.group {
            return consume_group(client, config, group, &args).await;
        }
        if let Some(group) = &args.share_group {
            return consume_share_group(client, group, &args).await;
        }
        let mut consumer = Consumer::new(client, config);
        match args.partition {
            Some(p) => {
                let meta = consumer.client().topic_metadata(&args.topic, false).await?;
                if meta.partition(p).is_none() {
                    bail!("topic {} has no partition {p}", args.topic);
                }
                consumer.assign(&args.topic, p, start);
            }
            None => consumer.assign_topic(&args.topic, start).await?,
        }
        if args.max_messages == Some(0) {
            return Ok(());
        }

        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let mut printed = 0u64;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let records = tokio::select! {
                r = consumer.poll() => r.with_context(|| format!("consuming {}", args.topic))?,
                _ = &mut ctrl_c => break,
            };
            for r in &records {
                if write_record(&mut out, r, args.print_key, args.print_offset).is_err() {
                    return Ok(()); // stdout closed (e.g. piped into `head`): done
                }
                printed += 1;
                if args.max_messages.is_some_and(|max| printed >= max) {
                    let _ = out.flush();
                    return Ok(());
                }
            }
            if out.flush().is_err() {
                return Ok(());
            }
        }
        let _ = out.flush();
        eprintln!("Processed a total of {printed} messages");
        Ok(())
    })
}

/// `--group`: poll as a group member, print, commit what was printed, leave on exit.
async fn consume_group(
    client: strom_client::Client,
    config: ConsumerConfig,
    group: &str,
    args: &ConsumeArgs,
) -> anyhow::Result<()> {
    let mut gc = GroupConfig::new(group);
    gc.auto_commit_interval = None; // we commit exactly what we printed
    let mut consumer = GroupConsumer::new(client, config, gc);
    consumer.subscribe(&[args.topic.as_str()]);
    if args.max_messages == Some(0) {
        return consumer.close().await.map_err(Into::into);
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut done: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut finished = false;
    while !finished {
        let records = tokio::select! {
            r = consumer.poll() => r.with_context(|| format!("consuming {} in group {group}", args.topic))?,
            _ = &mut ctrl_c => break,
        };
        for r in &records {
            if write_record(&mut out, r, args.print_key, args.print_offset).is_err() {
                finished = true; // stdout closed: commit what was printed, leave
                break;
            }
            done.insert(TopicPartition::new(&*r.topic, r.partition), r.offset + 1);
            printed += 1;
            if args.max_messages.is_some_and(|max| printed >= max) {
                finished = true;
                break;
            }
        }
        if out.flush().is_err() {
            finished = true;
        }
        if !done.is_empty() && last_commit.elapsed() >= Duration::from_secs(1) {
            if let Err(e) = consumer.commit_offsets(std::mem::take(&mut done)).await {
                tracing::warn!(error = %e, "offset commit failed");
            }
            last_commit = Instant::now();
        }
    }
    let _ = out.flush();
    let committed = consumer.commit_offsets(done).await;
    consumer.close().await?;
    committed.with_context(|| format!("committing offsets of group {group}"))?;
    if args.max_messages.is_none_or(|max| printed < max) {
        eprintln!("Processed a total of {printed} messages");
    }
    Ok(())
}

/// `--share-group`: poll as a share-group member, print, accept what was printed (sent with the
/// next fetch, or on exit) and release what was fetched but not printed; on exit close the share
/// sessions and leave the group.
async fn consume_share_group(
    client: strom_client::Client,
    group: &str,
    args: &ConsumeArgs,
) -> anyhow::Result<()> {
    let mut consumer = ShareConsumer::new(client, ShareConsumerConfig::new(group));
    consumer.subscribe(&[args.topic.as_str()]);
    if args.max_messages == Some(0) {
        return Ok(()); // never joined: nothing to leave
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let printed = print_shared(&mut consumer, args, &mut out).await;
    // Close even after a failure: records still held go back to the group at once.
    let closed = consumer
        .close()
        .await
        .with_context(|| format!("acknowledging records of share group {group}"));
    let printed =
        printed.with_context(|| format!("consuming {} in share group {group}", args.topic))?;
    closed?;
    if args.max_messages.is_none_or(|max| printed < max) {
        eprintln!("Processed a total of {printed} messages");
    }
    Ok(())
}

/// The `--share-group` loop; returns how many records were printed. Ctrl-C lets the fetch in
/// flight finish, since it carries the acknowledgements of what was printed before.
async fn print_shared(
    consumer: &mut ShareConsumer,
    args: &ConsumeArgs,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let mut printed = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let (records, interrupted) = {
            let poll = consumer.poll();
            tokio::pin!(poll);
            tokio::select! {
                r = &mut poll => (r?, false),
                _ = &mut ctrl_c => (poll.await?, true),
            }
        };
        let mut written = 0u64;
        let mut finished = interrupted;
        if !interrupted {
            for r in &records {
                if write_record(out, &r.record, args.print_key, args.print_offset).is_err() {
                    finished = true; // stdout closed (e.g. piped into `head`)
                    break;
                }
                written += 1;
                if args
                    .max_messages
                    .is_some_and(|max| printed + written >= max)
                {
                    finished = true;
                    break;
                }
            }
        }
        // Accepted only once on stdout; the rest goes back to the group.
        if out.flush().is_err() {
            written = 0;
            finished = true;
        }
        for (r, i) in records.iter().zip(0u64..) {
            let kind = if i < written {
                AcknowledgeType::Accept
            } else {
                AcknowledgeType::Release
            };
            consumer.acknowledge(r, kind);
        }
        printed += written;
        if finished {
            return Ok(printed);
        }
    }
}

fn write_record(
    out: &mut impl Write,
    r: &ConsumerRecord,
    print_key: bool,
    print_offset: bool,
) -> std::io::Result<()> {
    if print_offset {
        write!(out, "{}:{}\t", r.partition, r.offset)?;
    }
    if print_key {
        out.write_all(r.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\t")?;
    }
    out.write_all(r.value.as_deref().unwrap_or(b"null"))?;
    out.write_all(b"\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: 2,
            offset: 17,
            timestamp: 0,
            timestamp_type: strom_client::TimestampType::Creation,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: Vec::new(),
        }
    }

    fn line(print_key: bool, print_offset: bool) -> String {
        let mut buf = Vec::new();
        write_record(&mut buf, &record(), print_key, print_offset).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn output_formats() {
        assert_eq!(line(false, false), "v\n");
        assert_eq!(line(true, false), "k\tv\n");
        assert_eq!(line(false, true), "2:17\tv\n");
        assert_eq!(line(true, true), "2:17\tk\tv\n");
        let mut r = record();
        r.key = None;
        let mut buf = Vec::new();
        write_record(&mut buf, &r, true, false).unwrap();
        assert_eq!(buf, b"null\tv\n");
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_offset("5"), Ok(StartOffset::Offset(5)));
        assert_eq!(parse_offset("earliest"), Ok(StartOffset::Earliest));
        assert!(parse_offset("-3").is_err());
        assert!(parse_offset("x").is_err());
    }
}
