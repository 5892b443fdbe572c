//! `strom cluster describe`: the brokers, the active controller, fenced brokers and the
//! partitions whose ISR is smaller than their replica set (under-replicated).

use std::fmt::Write as _;

use super::ConnectArgs;

/// Flags of `strom cluster` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Brokers, controller, fenced brokers, under-replicated partitions.
    Describe,
}

pub(crate) fn run(args: ClusterArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            ClusterCommand::Describe => print!("{}", describe(&client).await?),
        }
        Ok(())
    })
}

async fn describe(client: &strom_client::Client) -> anyhow::Result<String> {
    let cluster = client.describe_cluster().await?;
    let topics = client.describe_topics(None).await?;
    let mut out = String::new();
    let _ = writeln!(out, "Cluster id: {}", cluster.cluster_id);
    let _ = writeln!(
        out,
        "Controller: {}",
        cluster
            .controller_id
            .map_or_else(|| "none".to_owned(), |c| c.to_string())
    );
    let mut rows = vec![["BROKER", "HOST", "PORT", "STATE"]
        .map(String::from)
        .to_vec()];
    for b in &cluster.brokers {
        rows.push(vec![
            b.id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            "live".into(),
        ]);
    }
    for id in &cluster.fenced {
        rows.push(vec![
            id.to_string(),
            "-".into(),
            "-".into(),
            "fenced".into(),
        ]);
    }
    out.push_str(&super::topics::render_table(&rows));
    let mut under = vec![["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"]
        .map(String::from)
        .to_vec()];
    for t in &topics {
        for p in &t.partitions {
            if p.isr.len() < p.replicas.len() {
                under.push(vec![
                    t.name.clone(),
                    p.partition.to_string(),
                    p.leader
                        .map_or_else(|| "none".to_owned(), |l| l.to_string()),
                    super::topics::join(&p.replicas),
                    super::topics::join(&p.isr),
                ]);
            }
        }
    }
    if under.len() == 1 {
        out.push_str("\nUnder-replicated partitions: none\n");
    } else {
        let _ = writeln!(out, "\nUnder-replicated partitions: {}", under.len() - 1);
        out.push_str(&super::topics::render_table(&under));
    }
    Ok(out)
}
