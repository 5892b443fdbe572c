//! A share-group member's membership (KIP-932): ShareGroupHeartbeat at the group coordinator, as
//! Kafka 4's `ShareMembershipManager` runs it. The member id is made by the client (a random
//! UUID in Kafka's base64 form) and kept for the member's life; epoch 0 joins with the
//! subscription, each later heartbeat carries the epoch last returned (and the subscription only
//! when it changed), every `heartbeat_interval_ms` the coordinator returned. The assignment comes
//! from the coordinator (a partition may go to several members) and is replaced whenever a
//! response carries one. UNKNOWN_MEMBER_ID or FENCED_MEMBER_EPOCH drop the assignment and rejoin
//! at once with epoch 0 and the same id; epoch -1 leaves.
//!
//! Concurrency: [`ShareMembership`] is shared by the consumer and its heartbeat task behind a
//! mutex never held across `.await`; an answer is applied only if the epoch it was sent with is
//! still current, so a late answer cannot undo a rejoin.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kafka_protocol::messages::{ApiKey, ShareGroupHeartbeatRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;

use crate::client::Client;
use crate::error::ClientError;
use crate::group_admin::{check, gid, needs_new_coordinator};
use crate::share_fetch::TopicIdPartition;

/// Kafka's member epoch to leave a group.
const LEAVE_EPOCH: i32 = -1;

/// Until the coordinator says otherwise (Kafka's `group.share.heartbeat.interval.ms` default).
const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// This member's state in its share group.
#[derive(Debug)]
pub(crate) struct ShareMembership {
    pub(crate) group_id: String,
    pub(crate) member_id: String,
    /// 0 until joined (and after being fenced).
    pub(crate) epoch: i32,
    /// The subscription, sent when joining or when it changed.
    topics: Vec<String>,
    subscription_sent: bool,
    /// The partitions the coordinator assigned to this member.
    pub(crate) assignment: BTreeSet<TopicIdPartition>,
    interval: Duration,
    /// An error the heartbeat task cannot recover from, for the next `poll` to return.
    pub(crate) fatal: Option<ClientError>,
}

/// A member id as Kafka 4 clients make one: a random UUID, base64url without padding.
pub(crate) fn new_member_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

impl ShareMembership {
    pub(crate) fn new(group_id: &str) -> Self {
        ShareMembership {
            group_id: group_id.to_owned(),
            member_id: new_member_id(),
            epoch: 0,
            topics: Vec::new(),
            subscription_sent: false,
            assignment: BTreeSet::new(),
            interval: DEFAULT_HEARTBEAT_INTERVAL,
            fatal: None,
        }
    }

    pub(crate) fn subscribe(&mut self, topics: Vec<String>) {
        if topics != self.topics {
            self.topics = topics;
            self.subscription_sent = false;
        }
    }

    pub(crate) fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The next heartbeat to send, and the epoch it carries.
    fn heartbeat_request(&self, epoch: i32) -> ShareGroupHeartbeatRequest {
        let subscription = (epoch == 0 || !self.subscription_sent).then(|| {
            self.topics
                .iter()
                .map(|t| TopicName(StrBytes::from_string(t.clone())))
                .collect()
        });
        ShareGroupHeartbeatRequest::default()
            .with_group_id(gid(&self.group_id))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(epoch)
            .with_subscribed_topic_names(subscription)
    }
}

/// Whether an error means the member must rejoin with epoch 0.
fn is_fenced(code: i16) -> bool {
    code == ResponseError::UnknownMemberId.code() || code == ResponseError::FencedMemberEpoch.code()
}

/// Sends one heartbeat (at the coordinator, found again if it moved) and applies the answer.
/// A fenced member is reset to epoch 0 and `Ok` is returned: the caller heartbeats again.
pub(crate) async fn heartbeat(
    client: &Client,
    membership: &Mutex<ShareMembership>,
) -> Result<(), ClientError> {
    let (group, epoch, request) = {
        let m = membership.lock();
        (m.group_id.clone(), m.epoch, m.heartbeat_request(m.epoch))
    };
    let response = client
        .with_coordinator(&group, |conn| {
            let request = request.clone();
            let group = group.clone();
            async move {
                let version = conn.version(ApiKey::ShareGroupHeartbeat)?;
                let resp = conn.send(version, &request).await?;
                check(|| format!("share group heartbeat {group}"), resp.error_code)?;
                Ok(resp)
            }
        })
        .await;
    let mut m = membership.lock();
    if m.epoch != epoch {
        return Ok(()); // rejoined or left meanwhile: this answer is stale
    }
    match response {
        Ok(resp) => {
            m.epoch = resp.member_epoch;
            m.subscription_sent = true;
            if let Ok(ms) = u64::try_from(resp.heartbeat_interval_ms) {
                if ms > 0 {
                    m.interval = Duration::from_millis(ms);
                }
            }
            if let Some(assignment) = resp.assignment {
                m.assignment = assignment
                    .topic_partitions
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                    .collect();
                tracing::info!(group = %m.group_id, epoch = m.epoch, partitions = m.assignment.len(), "share group assignment");
            }
            Ok(())
        }
        Err(e) if e.kafka_code().is_some_and(is_fenced) => {
            tracing::info!(group = %m.group_id, error = %e, "share group member fenced; rejoining");
            m.epoch = 0;
            m.assignment.clear();
            m.subscription_sent = false;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether a heartbeat may succeed when sent again: the coordinator moving or loading, or a
/// connection that failed.
fn transient(e: &ClientError) -> bool {
    e.is_retriable() || needs_new_coordinator(e)
}

/// Joins (epoch 0) and returns once the member has an epoch; bounded by the client's retries.
pub(crate) async fn join(
    client: &Client,
    membership: &Mutex<ShareMembership>,
) -> Result<(), ClientError> {
    let mut attempt = 0;
    loop {
        match heartbeat(client, membership).await {
            Ok(()) if membership.lock().epoch > 0 => return Ok(()),
            Ok(()) => {}
            Err(e) if !transient(&e) || attempt >= client.config().retries => return Err(e),
            Err(e) => tracing::debug!(error = %e, "share group join failed; retrying"),
        }
        attempt += 1;
        client.backoff(attempt).await;
    }
}

/// The heartbeat task: every interval, or at once after being fenced. Retriable failures are
/// retried next round; anything else is left in `fatal` for `poll` and ends the task.
pub(crate) fn spawn_heartbeat(
    client: Client,
    membership: Arc<Mutex<ShareMembership>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (interval, joined) = {
                let m = membership.lock();
                (m.interval, m.epoch > 0)
            };
            if joined {
                tokio::time::sleep(interval).await;
            } else {
                client.backoff(1).await;
            }
            match heartbeat(&client, &membership).await {
                Ok(()) => {}
                Err(e) if transient(&e) => {
                    tracing::debug!(error = %e, "share group heartbeat failed; retrying");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "share group heartbeat failed");
                    membership.lock().fatal = Some(e);
                    return;
                }
            }
        }
    })
}

/// Leaves the group (epoch -1); the outcome only matters to the log.
pub(crate) async fn leave(client: &Client, membership: &Mutex<ShareMembership>) {
    let (group, request) = {
        let m = membership.lock();
        if m.epoch <= 0 {
            return; // never joined, or fenced: the coordinator has no such member
        }
        (m.group_id.clone(), m.heartbeat_request(LEAVE_EPOCH))
    };
    let left = client
        .with_coordinator(&group, |conn| {
            let request = request.clone();
            async move {
                let version = conn.version(ApiKey::ShareGroupHeartbeat)?;
                let resp = conn.send(version, &request).await?;
                check(|| "leave share group".to_owned(), resp.error_code)
            }
        })
        .await;
    if let Err(e) = left {
        tracing::debug!(group, error = %e, "leaving the share group failed");
    }
    let mut m = membership.lock();
    m.epoch = LEAVE_EPOCH;
    m.assignment.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_kafka_uuid_strings() {
        let a = new_member_id();
        assert_eq!(a.len(), 22, "{a}");
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, new_member_id());
    }

    #[test]
    fn subscription_goes_with_a_join_and_after_a_change_only() {
        let mut m = ShareMembership::new("g");
        m.subscribe(vec!["t".into()]);
        let join = m.heartbeat_request(0);
        assert_eq!(join.member_epoch, 0);
        assert_eq!(join.subscribed_topic_names.map(|t| t.len()), Some(1));
        m.subscription_sent = true;
        assert!(m.heartbeat_request(3).subscribed_topic_names.is_none());
        assert!(m.heartbeat_request(0).subscribed_topic_names.is_some());
        m.subscribe(vec!["t".into(), "u".into()]);
        assert!(m.heartbeat_request(3).subscribed_topic_names.is_some());
        let leave = m.heartbeat_request(LEAVE_EPOCH);
        assert_eq!(leave.member_id.as_str(), m.member_id);
        assert!(is_fenced(ResponseError::FencedMemberEpoch.code()));
        assert!(!is_fenced(ResponseError::NotCoordinator.code()));
    }
}
