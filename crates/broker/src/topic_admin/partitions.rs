//! Adding partitions to a topic (CreatePartitions): the new partitions' replicas are placed
//! round robin over the live brokers as at creation, or as the request assigns them.

use kafka_protocol::error::ResponseError;

use super::{TopicAdmin, TopicError};
use crate::metadata::{MetadataImage, MetadataRecord};

impl TopicAdmin {
    /// Raises a topic's partition count to `count` (CreatePartitions). `assignments`, when given,
    /// name the replicas of each new partition.
    pub async fn create_partitions(
        &self,
        topic: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let live = self.live_brokers();
        let mut results = self
            .propose_each(1, |image: &MetadataImage| {
                let plan = plan_partitions(image, topic, count, assignments.as_deref(), &live);
                match plan {
                    Ok(recs) if !validate_only => (recs, vec![Ok(())]),
                    Ok(_) => (Vec::new(), vec![Ok(())]),
                    Err(e) => (Vec::new(), vec![Err(e)]),
                }
            })
            .await;
        results.pop().unwrap_or(Ok(()))
    }
}

fn plan_partitions(
    image: &MetadataImage,
    topic: &str,
    count: i32,
    assignments: Option<&[Vec<i32>]>,
    live: &[i32],
) -> Result<Vec<MetadataRecord>, TopicError> {
    let Some(t) = image.topic(topic) else {
        return Err(TopicError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{topic}' does not exist."),
        ));
    };
    if super::is_internal_topic(topic) {
        return Err(super::internal_topic_error(
            ResponseError::InvalidTopicException,
            topic,
            "add partitions to",
        ));
    }
    let current = t.partitions.len() as i32;
    if count <= current {
        return Err(TopicError::new(
            ResponseError::InvalidPartitions,
            format!("Topic currently has {current} partitions, which is higher than or equal to the requested {count}."),
        ));
    }
    super::check_added_partitions(
        count - current,
        count,
        &mut super::PartitionBudget::of(image),
    )?;
    let rf = t.partitions.values().next().map_or(1, |p| p.replicas.len());
    let added = (count - current) as usize;
    if let Some(a) = assignments {
        if a.len() != added {
            return Err(TopicError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    a.len()
                ),
            ));
        }
        if let Some(bad) = a.iter().flatten().find(|b| !live.contains(b)) {
            return Err(TopicError::new(
                ResponseError::InvalidReplicaAssignment,
                format!("Unknown broker id {bad} in the replica assignment."),
            ));
        }
    }
    if rf > live.len() {
        return Err(TopicError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Replication factor {rf} is larger than the {} live brokers.",
                live.len()
            ),
        ));
    }
    let mut recs = Vec::with_capacity(added);
    let placed =
        strom_cluster::replication::place_replicas(count, rf, live, t.id.as_bytes()[0] as usize);
    for (i, p) in (current..count).enumerate() {
        let reps: Vec<i32> = match assignments.and_then(|a| a.get(i)) {
            Some(r) if !r.is_empty() => r.clone(),
            _ => placed.get(p as usize).cloned().unwrap_or_default(),
        };
        recs.push(super::new_partition(t.id, p, reps));
    }
    Ok(recs)
}
