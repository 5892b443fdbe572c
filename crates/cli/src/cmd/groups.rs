//! `strom groups list|describe|reset-offsets|delete`: consumer-group administration, like
//! kafka-consumer-groups (`describe` is the seeds' "offset checker": committed offset, log end
//! offset and lag per partition, with the owning member).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{bail, Context};
use strom_client::{Client, GroupDescription, GroupListing, OffsetSpec, TopicPartition};

use super::ConnectArgs;

/// Flags of `strom groups` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct GroupsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupsCommand {
    /// List group ids, one per line, sorted.
    List {
        /// Also print each group's state.
        #[arg(long)]
        state: bool,
    },
    /// Members, assignment, committed offset, log end offset and lag per partition.
    Describe {
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets (the group must have no members).
    ResetOffsets(ResetArgs),
    /// Delete a group and its committed offsets (the group must have no members).
    Delete {
        /// Group id.
        group: String,
    },
}

/// `reset-offsets` of `strom groups` and `strom share-groups` (kafka-consumer-groups' and
/// kafka-share-groups' options).
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).multiple(false)))]
pub(crate) struct ResetArgs {
    /// Group id.
    pub(crate) group: String,
    /// Topic whose partitions to reset (all of them).
    #[arg(long)]
    topic: String,
    /// To the log start offset.
    #[arg(long, group = "to")]
    to_earliest: bool,
    /// To the log end offset.
    #[arg(long, group = "to")]
    to_latest: bool,
    /// To this offset (clamped to the log's range).
    #[arg(long, group = "to", value_name = "N")]
    to_offset: Option<i64>,
    /// To the first record at or after this time: ISO-8601 (2026-11-23T12:00:00Z,
    /// 2026-11-23T12:00:00.5+01:00) or milliseconds since the epoch.
    #[arg(long, group = "to", value_name = "TIME", value_parser = parse_datetime)]
    to_datetime: Option<i64>,
    /// Commit the new offsets (without it, only print the plan).
    #[arg(long)]
    pub(crate) execute: bool,
}

pub(crate) fn run(args: GroupsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            GroupsCommand::List { state } => {
                let groups = client.list_groups().await.context("listing groups")?;
                print!("{}", listing(&groups, state));
            }
            GroupsCommand::Describe { group } => print!("{}", describe(&client, &group).await?),
            GroupsCommand::ResetOffsets(r) => reset(&client, r).await?,
            GroupsCommand::Delete { group } => {
                client
                    .delete_group(&group)
                    .await
                    .with_context(|| format!("deleting group {group}"))?;
                println!("Deleted group {group}");
            }
        }
        Ok(())
    })
}

/// Group ids one per line, or with `state` a GROUP/STATE table (also `strom share-groups list`).
pub(crate) fn listing(groups: &[GroupListing], state: bool) -> String {
    let mut out = String::new();
    if state {
        let w = groups
            .iter()
            .map(|g| g.group_id.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let _ = writeln!(out, "{:<w$}  STATE", "GROUP");
        for g in groups {
            let _ = writeln!(out, "{:<w$}  {}", g.group_id, g.state);
        }
    } else {
        for g in groups {
            let _ = writeln!(out, "{}", g.group_id);
        }
    }
    out
}

/// One row of the describe table.
struct Row {
    tp: Option<TopicPartition>,
    committed: Option<i64>,
    end: Option<i64>,
    member: Option<usize>,
}

async fn describe(client: &Client, group: &str) -> anyhow::Result<String> {
    let desc = client
        .describe_group(group)
        .await
        .with_context(|| format!("describing group {group}"))?;
    let committed = client
        .fetch_group_offsets(group, None)
        .await
        .with_context(|| format!("fetching offsets of group {group}"))?;
    if desc.state == "Dead" && committed.is_empty() {
        bail!("group {group} does not exist");
    }
    let mut owner: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for (i, m) in desc.members.iter().enumerate() {
        for tp in &m.assignment {
            owner.insert(tp.clone(), i);
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owner.keys()).cloned().collect();
    let query: Vec<(TopicPartition, OffsetSpec)> = partitions
        .iter()
        .map(|tp| (tp.clone(), OffsetSpec::Latest))
        .collect();
    let ends = if query.is_empty() {
        Default::default()
    } else {
        client
            .list_offsets(&query)
            .await
            .context("listing log end offsets")?
    };
    let mut rows: Vec<Row> = partitions
        .iter()
        .map(|tp| Row {
            tp: Some(tp.clone()),
            committed: committed.get(tp).copied(),
            end: ends.get(tp).map(|o| o.offset),
            member: owner.get(tp).copied(),
        })
        .collect();
    for (i, m) in desc.members.iter().enumerate() {
        if m.assignment.is_empty() {
            rows.push(Row {
                tp: None,
                committed: None,
                end: None,
                member: Some(i),
            });
        }
    }
    Ok(render(group, &desc, &rows))
}

fn render(group: &str, desc: &GroupDescription, rows: &[Row]) -> String {
    let dash = || "-".to_string();
    let opt = |v: Option<i64>| v.map_or_else(dash, |v| v.to_string());
    let mut table: Vec<[String; 9]> = vec![[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]
    .map(String::from)];
    for r in rows {
        let m = r.member.and_then(|i| desc.members.get(i));
        let lag = match (r.committed, r.end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        table.push([
            group.to_string(),
            r.tp.as_ref().map_or_else(dash, |tp| tp.topic.clone()),
            r.tp.as_ref()
                .map_or_else(dash, |tp| tp.partition.to_string()),
            opt(r.committed),
            opt(r.end),
            opt(lag),
            m.map_or_else(dash, |m| m.member_id.clone()),
            m.map_or_else(dash, |m| m.client_host.clone()),
            m.map_or_else(dash, |m| m.client_id.clone()),
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = format!(
        "Group {group}: state {}, protocol {}, {} member(s)\n\n",
        desc.state,
        if desc.protocol.is_empty() {
            "-"
        } else {
            &desc.protocol
        },
        desc.members.len()
    );
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

async fn reset(client: &Client, r: ResetArgs) -> anyhow::Result<()> {
    let group = &r.group;
    let desc = client
        .describe_group(group)
        .await
        .with_context(|| format!("describing group {group}"))?;
    if !matches!(desc.state.as_str(), "Empty" | "Dead") {
        bail!(
            "group {group} has active members (state {}); offsets can only be reset on an \
             empty group: stop its consumers first",
            desc.state
        );
    }
    let plan = reset_plan(client, &r).await?;
    if r.execute {
        client
            .commit_group_offsets(group, &plan)
            .await
            .with_context(|| format!("committing offsets of group {group}"))?;
        eprintln!("Offsets of group {group} reset.");
    } else {
        eprintln!("Dry run: nothing changed. Add --execute to commit these offsets.");
    }
    Ok(())
}

/// The offsets `reset-offsets` moves each partition of `--topic` to, printed as
/// kafka-consumer-groups prints its plan.
pub(crate) async fn reset_plan(
    client: &Client,
    r: &ResetArgs,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let group = &r.group;
    let meta = client.topic_metadata(&r.topic, false).await?;
    let tps: Vec<TopicPartition> = meta
        .partitions
        .iter()
        .map(|p| TopicPartition::new(r.topic.clone(), p.partition))
        .collect();
    let list = |spec: OffsetSpec| {
        let q: Vec<(TopicPartition, OffsetSpec)> =
            tps.iter().map(|tp| (tp.clone(), spec)).collect();
        async move { client.list_offsets(&q).await.context("listing offsets") }
    };
    let earliest = list(OffsetSpec::Earliest).await?;
    let latest = list(OffsetSpec::Latest).await?;
    let by_time = match r.to_datetime {
        Some(ts) => Some(list(OffsetSpec::Timestamp(ts)).await?),
        None => None,
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &tps {
        let lo = earliest.get(tp).map_or(0, |o| o.offset);
        let hi = latest.get(tp).map_or(lo, |o| o.offset);
        let target = if r.to_earliest {
            lo
        } else if r.to_latest {
            hi
        } else if let Some(n) = r.to_offset {
            n.clamp(lo, hi)
        } else {
            // No record at or after the time: the log end (as Kafka).
            by_time
                .as_ref()
                .and_then(|m| m.get(tp))
                .map(|o| o.offset)
                .filter(|o| *o >= 0)
                .unwrap_or(hi)
        };
        plan.insert(tp.clone(), target);
    }
    let w = group.len().max(5);
    let tw = r.topic.len().max(5);
    let mut out = format!("{:<w$}  {:<tw$}  PARTITION  NEW-OFFSET\n", "GROUP", "TOPIC");
    for (tp, o) in &plan {
        let _ = writeln!(
            out,
            "{group:<w$}  {:<tw$}  {:<9}  {o}",
            tp.topic, tp.partition
        );
    }
    print!("{out}");
    Ok(plan)
}

/// `--to-datetime`: epoch milliseconds, or ISO-8601 `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.
fn parse_datetime(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("{s:?} is not a time (2026-11-23T12:00:00Z or epoch milliseconds)");
    let (date, rest) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |t: &str| t.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    let (time, offset_ms) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (t, sign * (num(oh)? * 3_600_000 + num(om)? * 60_000))
    } else {
        return Err(format!("{s:?} needs a zone: end it with Z or +HH:MM"));
    };
    let t: Vec<&str> = time.split(':').collect();
    let (h, mi, sec) = match t.as_slice() {
        [h, m] => (num(h)?, num(m)?, "0"),
        [h, m, sec] => (num(h)?, num(m)?, *sec),
        _ => return Err(bad()),
    };
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let frac_ms = if frac.is_empty() {
        0
    } else {
        num(&format!("{frac:0<3}")[..3])?
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 {
        return Err(bad());
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + h) * 60 + mi) * 60_000 + num(whole)? * 1000 + frac_ms - offset_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse() {
        assert_eq!(parse_datetime("0"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_datetime("2026-11-23T12:00:00Z"),
            Ok(1_795_435_200_000)
        );
        assert_eq!(
            parse_datetime("2026-11-23T13:00:00.5+01:00"),
            Ok(1_795_435_200_500)
        );
        assert_eq!(parse_datetime("2000-02-29T00:00Z"), Ok(951_782_400_000));
        assert!(parse_datetime("2026-11-23T12:00:00").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2026-13-01T00:00:00Z").is_err());
    }
}
