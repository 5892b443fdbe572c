//! Consumer-group benchmark through `strom-client`: rebalance time for C consumers × P partitions
//! and OffsetCommit throughput.
//!
//! ```text
//! strom serve --data-dir /tmp/gb --listen 127.0.0.1:9092 --set group.initial.rebalance.delay.ms=0 &
//! cargo run --release -p strom-bench --example group_bench -- 127.0.0.1:9092 10 100 20000
//! ```
//! Rebalance: C `GroupConsumer`s (range assignor, heartbeat.interval 100 ms, fetch.max.wait
//! 100 ms) join one group on a fresh P-partition topic; reported are the time until all C own a
//! disjoint cover of the P partitions in one generation (cold start, every join a rebalance), and
//! the time for the C-1 others to take over after one member closes (LeaveGroup). OffsetCommit:
//! N single-partition admin commits (generation -1) sequentially, then with 32 in flight, plus
//! N partitions in commits of 100 partitions each; each commit is acknowledged only once durable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_client::{Client, ConsumerConfig, GroupConfig, GroupConsumer, TopicPartition};
use tokio::sync::watch;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Per consumer: (generation, partitions owned, still a member).
type Views = Arc<std::sync::Mutex<Vec<(i32, usize, bool)>>>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let consumers: usize = args.get(2).map_or(Ok(10), |s| s.parse())?;
    let partitions: i32 = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let commits: usize = args.get(4).map_or(Ok(20_000), |s| s.parse())?;
    let client = Client::connect(&bootstrap).await?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let topic = format!("group-bench-{stamp}");
    client
        .create_topic(&topic, partitions, 1, &BTreeMap::new())
        .await?;
    client.topic_metadata(&topic, false).await?;

    // --- rebalance ---
    let group = format!("group-bench-{stamp}");
    let views: Views = Arc::new(Default::default());
    views
        .lock()
        .map_err(|_| "poisoned")?
        .resize(consumers, (0, 0, true));
    let (stop_tx, stop_rx) = watch::channel(usize::MAX);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..consumers {
        let (client, topic, group, views, mut stop) = (
            client.clone(),
            topic.clone(),
            group.clone(),
            views.clone(),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut gc = GroupConfig::new(group);
            gc.heartbeat_interval = Duration::from_millis(100);
            gc.auto_commit_interval = None;
            let cc = ConsumerConfig {
                max_wait: Duration::from_millis(100),
                ..Default::default()
            };
            let mut c = GroupConsumer::new(client, cc, gc);
            c.subscribe(&[topic.as_str()]);
            loop {
                if *stop.borrow_and_update() == i {
                    if let Ok(mut v) = views.lock() {
                        v[i] = (0, 0, false);
                    }
                    return c.close().await;
                }
                c.poll().await?;
                if let Ok(mut v) = views.lock() {
                    v[i] = (c.generation().0, c.assignment().len(), true);
                }
            }
        }));
    }
    let formed = wait_covered(&views, partitions).await?;
    let cold = start.elapsed();
    let leave = Instant::now();
    stop_tx.send(0)?;
    let after = wait_covered_after(&views, partitions, formed).await?;
    let leave_time = leave.elapsed();
    println!(
        "rebalance: {consumers} consumers x {partitions} partitions: cold start to stable \
         generation {formed}: {:.0} ms; one member leaves -> {} consumers stable in generation \
         {after}: {:.0} ms",
        cold.as_secs_f64() * 1e3,
        consumers - 1,
        leave_time.as_secs_f64() * 1e3
    );
    stop_tx.send(usize::MAX - 1)?;
    for t in tasks {
        t.abort();
    }

    // --- OffsetCommit throughput ---
    let commit_group = format!("commit-bench-{stamp}");
    let one = |i: usize| {
        let p = i32::try_from(i % partitions as usize).unwrap_or(0);
        BTreeMap::from([(TopicPartition::new(topic.clone(), p), i as i64)])
    };
    let t0 = Instant::now();
    for i in 0..commits / 10 {
        client.commit_group_offsets(&commit_group, &one(i)).await?;
    }
    let seq = (commits / 10) as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..32 {
        let (client, g) = (client.clone(), commit_group.clone());
        let mine: Vec<_> = (0..commits).filter(|i| i % 32 == w).map(one).collect();
        workers.push(tokio::spawn(async move {
            for o in mine {
                client.commit_group_offsets(&g, &o).await?;
            }
            Ok::<_, strom_client::ClientError>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let par = commits as f64 / t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let batches = commits / 100;
    for b in 0..batches {
        let all: BTreeMap<TopicPartition, i64> = (0..partitions)
            .map(|p| (TopicPartition::new(topic.clone(), p), b as i64))
            .collect();
        client.commit_group_offsets(&commit_group, &all).await?;
    }
    let batched = (batches as f64 * f64::from(partitions)) / t0.elapsed().as_secs_f64();
    println!(
        "offset commit: sequential 1 partition/request: {seq:.0} commits/s; 32 in flight: \
         {par:.0} commits/s; {partitions} partitions/request: {batched:.0} partition-offsets/s"
    );
    Ok(())
}

/// Waits until every live consumer reports the same generation and their counts cover P.
async fn wait_covered(views: &Views, partitions: i32) -> Result<i32, Error> {
    wait_covered_after(views, partitions, 0).await
}

async fn wait_covered_after(views: &Views, partitions: i32, after: i32) -> Result<i32, Error> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        {
            let v = views.lock().map_err(|_| "poisoned")?;
            let live: Vec<&(i32, usize, bool)> = v.iter().filter(|x| x.2).collect();
            let generation = live.first().map_or(0, |x| x.0);
            let total: usize = live.iter().map(|x| x.1).sum();
            if generation > after
                && live.iter().all(|x| x.0 == generation && x.1 > 0)
                && total == usize::try_from(partitions)?
            {
                return Ok(generation);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("group did not stabilise within 120 s".into())
}
