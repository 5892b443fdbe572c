//! `SharePersister`: how a share-partition leader reads and writes its durable state (Kafka's
//! `DefaultStatePersister`). The state lives with the share coordinator, the leader of the key's
//! `__share_group_state` partition: when that is this node the call goes straight to
//! `Coordinators::share_state`; otherwise it is a ReadShareGroupState / WriteShareGroupState /
//! DeleteShareGroupState request to that broker on the inter-broker listener (its own connection
//! pool, so a state write never queues behind another purpose's requests).
//!
//! Every error is a Kafka error code; NOT_COORDINATOR and the transient ones are retried here a
//! few times after refreshing the leader, because a leadership move of `__share_group_state` is
//! routine and the caller (a ShareFetch, a ShareAcknowledge) has no coordinator to re-find.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    delete_share_group_state_request as delete_req,
    initialize_share_group_state_request as init_req, read_share_group_state_request as read_req,
    write_share_group_state_request as write_req, ApiKey, DeleteShareGroupStateRequest,
    InitializeShareGroupStateRequest, ReadShareGroupStateRequest, WriteShareGroupStateRequest,
};
use kafka_protocol::protocol::StrBytes;
use strom_coordinator::{SharePartitionKey, ShareStateFailure, SHARE_STATE_TOPIC};
use strom_share::{PersisterStateBatch, RecordState, ShareSnapshot, StateChanges};

use crate::coordinators::Coordinators;
use crate::inter_broker::BrokerConnections;
use crate::local_leaders::{Leader, LocalLeaders};

/// Tries of one call before its error is given to the caller.
const ATTEMPTS: u32 = 5;
/// Pause between tries (a leader election of `__share_group_state` takes about this long).
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Reads and writes share-partition state through the share coordinator, wherever it is.
#[derive(Debug)]
pub(crate) struct SharePersister {
    coordinators: Arc<Coordinators>,
    leaders: Arc<LocalLeaders>,
    connections: BrokerConnections,
}

/// Where a key's state lives right now.
enum Coordinator {
    Here,
    Remote { id: i32, addr: String },
}

/// The `(id, address)` of `key`'s coordinator when it is another broker; when it is this one,
/// returns the answer of the share coordinator's `$method` from the calling function.
macro_rules! remote_or_here {
    ($self:ident, $key:expr, $method:ident($($arg:expr),*)) => {
        match $self.coordinator($key)? {
            Coordinator::Here => {
                return $self
                    .coordinators
                    .share_state
                    .$method($($arg),*)
                    .await
                    .map_err(|e: ShareStateFailure| e.code())
            }
            Coordinator::Remote { id, addr } => (id, addr),
        }
    };
}

/// Codes worth another try after a pause: the coordinator moved or is loading.
fn retriable(code: i16) -> bool {
    [
        ResponseError::NotCoordinator,
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::NetworkException,
        ResponseError::NotLeaderOrFollower,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// The outcome a share-state response gave the key's partition (none: UNKNOWN_SERVER_ERROR).
fn answered(code: Option<i16>) -> Result<(), i16> {
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(code),
        None => Err(ResponseError::UnknownServerError.code()),
    }
}

/// The wire form of a state batch (both request and response types have these four fields).
fn batch_of(first: i64, last: i64, state: i8, count: i16) -> Option<PersisterStateBatch> {
    Some(PersisterStateBatch {
        first_offset: first,
        last_offset: last,
        delivery_state: RecordState::from_id(state)?,
        delivery_count: count,
    })
}

impl SharePersister {
    pub(crate) fn new(coordinators: Arc<Coordinators>, leaders: Arc<LocalLeaders>) -> Self {
        let connections = BrokerConnections::new(
            leaders.node_id(),
            "share-persister",
            leaders.inter_broker_security(),
        );
        SharePersister {
            coordinators,
            leaders,
            connections,
        }
    }

    fn coordinator(&self, key: &SharePartitionKey) -> Result<Coordinator, i16> {
        let image = self.leaders.image();
        let partition = self.coordinators.share_state.partition_for(key);
        match self.leaders.leader_of(&image, SHARE_STATE_TOPIC, partition) {
            Leader::Here { .. } => Ok(Coordinator::Here),
            Leader::Remote { id } => self
                .leaders
                .endpoint(&image, id, self.leaders.inter_broker_listener())
                .map(|(host, port)| Coordinator::Remote {
                    id,
                    addr: format!("{host}:{port}"),
                })
                .ok_or(ResponseError::CoordinatorNotAvailable.code()),
            Leader::Unavailable | Leader::Unknown => {
                Err(ResponseError::CoordinatorNotAvailable.code())
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the tries run out.
    async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, i16>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, i16>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt().await {
                Err(code) if retriable(code) && tries < ATTEMPTS => {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                done => return done,
            }
        }
    }

    async fn remote<R>(&self, id: i32, addr: &str, req: &R) -> Result<R::Response, i16>
    where
        R: kafka_protocol::protocol::Request,
    {
        let conn = self
            .connections
            .connection(id, addr)
            .await
            .map_err(|_| ResponseError::NetworkException.code())?;
        let key = ApiKey::try_from(R::KEY).map_err(|_| ResponseError::UnknownServerError.code())?;
        let version = conn
            .version(key)
            .map_err(|_| ResponseError::UnsupportedVersion.code())?;
        match conn.send(version, req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                tracing::debug!(broker = id, addr, error = %e, "share-state request got no answer");
                self.connections.forget(id);
                Err(ResponseError::NetworkException.code())
            }
        }
    }

    /// The durable state of `key` (ReadShareGroupState), `None` if never initialized.
    pub(crate) async fn read(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
    ) -> Result<Option<ShareSnapshot>, i16> {
        self.retrying(|| self.read_once(key, leader_epoch)).await
    }

    async fn read_once(
        &self,
        key: &SharePartitionKey,
        leader_epoch: i32,
    ) -> Result<Option<ShareSnapshot>, i16> {
        let (id, addr) = remote_or_here!(self, key, read_state(key));
        let req = ReadShareGroupStateRequest::default()
            .with_group_id(StrBytes::from_string(key.group_id.clone()))
            .with_topics(vec![read_req::ReadStateData::default()
                .with_topic_id(key.topic_id)
                .with_partitions(vec![read_req::PartitionData::default()
                    .with_partition(key.partition)
                    .with_leader_epoch(leader_epoch)])]);
        let resp = self.remote(id, &addr, &req).await?;
        let p = resp
            .results
            .iter()
            .filter(|r| r.topic_id == key.topic_id)
            .flat_map(|r| &r.partitions)
            .find(|p| p.partition == key.partition)
            .ok_or(ResponseError::UnknownServerError.code())?;
        if p.error_code != 0 {
            return Err(p.error_code);
        }
        if p.start_offset < 0 {
            return Ok(None);
        }
        let state_batches = p
            .state_batches
            .iter()
            .map(|b| {
                batch_of(
                    b.first_offset,
                    b.last_offset,
                    b.delivery_state,
                    b.delivery_count,
                )
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(ResponseError::UnknownServerError.code())?;
        Ok(Some(ShareSnapshot {
            snapshot_epoch: 0,
            state_epoch: p.state_epoch,
            leader_epoch,
            start_offset: p.start_offset,
            state_batches,
        }))
    }

    /// Makes `changes` durable (WriteShareGroupState); returns once they are.
    pub(crate) async fn write(
        &self,
        key: &SharePartitionKey,
        changes: &StateChanges,
    ) -> Result<(), i16> {
        self.retrying(|| self.write_once(key, changes)).await
    }

    async fn write_once(&self, key: &SharePartitionKey, changes: &StateChanges) -> Result<(), i16> {
        let (id, addr) = remote_or_here!(self, key, write_state(key, changes));
        let batches = changes
            .state_batches
            .iter()
            .map(|b| {
                write_req::StateBatch::default()
                    .with_first_offset(b.first_offset)
                    .with_last_offset(b.last_offset)
                    .with_delivery_state(b.delivery_state.id())
                    .with_delivery_count(b.delivery_count)
            })
            .collect();
        let req = WriteShareGroupStateRequest::default()
            .with_group_id(StrBytes::from_string(key.group_id.clone()))
            .with_topics(vec![write_req::WriteStateData::default()
                .with_topic_id(key.topic_id)
                .with_partitions(vec![write_req::PartitionData::default()
                    .with_partition(key.partition)
                    .with_state_epoch(changes.state_epoch)
                    .with_leader_epoch(changes.leader_epoch)
                    .with_start_offset(changes.start_offset)
                    .with_state_batches(batches)])]);
        let resp = self.remote(id, &addr, &req).await?;
        answered(
            resp.results
                .iter()
                .filter(|r| r.topic_id == key.topic_id)
                .flat_map(|r| &r.partitions)
                .find(|p| p.partition == key.partition)
                .map(|p| p.error_code),
        )
    }

    /// Starts a fresh history for `key` at `snapshot`'s start offset and state epoch
    /// (InitializeShareGroupState): AlterShareGroupOffsets.
    pub(crate) async fn initialize(
        &self,
        key: &SharePartitionKey,
        snapshot: &ShareSnapshot,
    ) -> Result<(), i16> {
        self.retrying(|| self.initialize_once(key, snapshot)).await
    }

    async fn initialize_once(
        &self,
        key: &SharePartitionKey,
        snapshot: &ShareSnapshot,
    ) -> Result<(), i16> {
        let (id, addr) = remote_or_here!(self, key, initialize_state(key, snapshot.clone()));
        let req = InitializeShareGroupStateRequest::default()
            .with_group_id(StrBytes::from_string(key.group_id.clone()))
            .with_topics(vec![init_req::InitializeStateData::default()
                .with_topic_id(key.topic_id)
                .with_partitions(vec![init_req::PartitionData::default()
                    .with_partition(key.partition)
                    .with_state_epoch(snapshot.state_epoch)
                    .with_start_offset(snapshot.start_offset)])]);
        let resp = self.remote(id, &addr, &req).await?;
        answered(
            resp.results
                .iter()
                .filter(|r| r.topic_id == key.topic_id)
                .flat_map(|r| &r.partitions)
                .find(|p| p.partition == key.partition)
                .map(|p| p.error_code),
        )
    }

    /// Forgets the state of `key` (DeleteShareGroupState).
    pub(crate) async fn delete(&self, key: &SharePartitionKey) -> Result<(), i16> {
        self.retrying(|| self.delete_once(key)).await
    }

    async fn delete_once(&self, key: &SharePartitionKey) -> Result<(), i16> {
        let (id, addr) = remote_or_here!(self, key, delete_state(key));
        let req = DeleteShareGroupStateRequest::default()
            .with_group_id(StrBytes::from_string(key.group_id.clone()))
            .with_topics(vec![delete_req::DeleteStateData::default()
                .with_topic_id(key.topic_id)
                .with_partitions(vec![
                    delete_req::PartitionData::default().with_partition(key.partition)
                ])]);
        let resp = self.remote(id, &addr, &req).await?;
        answered(
            resp.results
                .iter()
                .filter(|r| r.topic_id == key.topic_id)
                .flat_map(|r| &r.partitions)
                .find(|p| p.partition == key.partition)
                .map(|p| p.error_code),
        )
    }
}
