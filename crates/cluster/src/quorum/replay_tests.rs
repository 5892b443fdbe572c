//! Entries no checked proposer writes (a log from before the checks, a forged one) are skipped
//! when a node replays its log at start-up: never applied, not even in part, never a panic or a
//! stopped quorum, and the valid entries around them apply as before.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::{BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership};
use uuid::Uuid;

use super::entry_codec::Entry;
use super::log_store::LogStore;
use super::types::{Proposal, ProposalPart};
use super::{Quorum, QuorumConfig};
use crate::metadata::MetadataRecord;

fn topic(name: &str) -> MetadataRecord {
    MetadataRecord::Topic {
        name: name.into(),
        topic_id: Uuid::new_v4(),
    }
}

fn entry(index: u64, based_on: i64, records: Vec<MetadataRecord>) -> Entry {
    part(index, based_on, records, None)
}

fn part(
    index: u64,
    based_on: i64,
    records: Vec<MetadataRecord>,
    part: Option<ProposalPart>,
) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(Proposal {
            based_on,
            records,
            part,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_entries_in_the_log_are_skipped_on_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::open(&dir.path().join("metadata")).expect("open the log");
    let membership = Membership::new(
        vec![[1u64].into()],
        BTreeMap::from([(1u64, BasicNode::default())]),
    );
    let ok_id = Uuid::new_v4();
    let group = Uuid::new_v4();
    let half = ProposalPart {
        group,
        index: 0,
        count: 2,
    };
    let entries = vec![
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 0),
            payload: EntryPayload::Membership(membership),
        },
        entry(1, 1, vec![topic("../x")]),
        entry(2, 2, vec![topic("/abs")]),
        // Based on an offset after the entry: would pass every conflict check.
        entry(3, i64::MAX, vec![topic("forged")]),
        // One bad record spoils the whole entry: "ok" is not applied either.
        entry(
            4,
            4,
            vec![
                MetadataRecord::Topic {
                    name: "ok".into(),
                    topic_id: ok_id,
                },
                MetadataRecord::Partition {
                    topic_id: ok_id,
                    partition: 0,
                    replicas: vec![1],
                    isr: vec![1],
                    leader: 9,
                    leader_epoch: 0,
                    partition_epoch: 0,
                },
            ],
        ),
        entry(5, 5, vec![topic("good")]),
        // A split proposal whose last part never came.
        part(6, 6, vec![topic("half")], Some(half)),
    ];
    store.append_for_test(entries).await.expect("append");
    store.shutdown();
    drop(store);

    let q = Quorum::start(QuorumConfig::new(1, dir.path()))
        .await
        .expect("start on the forged log");
    q.wait_for_offset(7, Duration::from_secs(10))
        .await
        .expect("replayed");
    assert!(q.caught_up());
    let names: Vec<String> = q.image().topics().map(|t| t.name.clone()).collect();
    assert_eq!(names, ["good"]);
    // The quorum goes on.
    let (_, img) = q
        .propose(|_| (vec![topic("after")], ()))
        .await
        .expect("propose");
    assert!(img.topic("after").is_some());
    q.shutdown().await;
}
