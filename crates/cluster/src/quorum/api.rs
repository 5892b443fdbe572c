//! The broker-facing requests to the active controller (Kafka's BrokerRegistration,
//! BrokerHeartbeat, AlterPartition and ElectLeaders), routed with `call_leader`.

use uuid::Uuid;

use super::wire::{Request, Response};
use super::{BrokerRegistration, HeartbeatReply, Quorum, QuorumError, RemoteError};
use crate::controller::requests::{AlterPartition, Heartbeat};
use crate::metadata::PartitionImage;
use crate::replication::election::{AlterPartitionError, AlterPartitionRequest};

fn unexpected(resp: Response) -> QuorumError {
    QuorumError::Protocol(format!("{resp:?}"))
}

/// The `AlterPartitionError` a Kafka code stands for (the wire carries codes).
pub(crate) fn alter_error_from_code(code: i16) -> AlterPartitionError {
    [
        AlterPartitionError::NotLeaderOrFollower,
        AlterPartitionError::FencedLeaderEpoch,
        AlterPartitionError::InvalidUpdateVersion,
        AlterPartitionError::IneligibleReplica,
    ]
    .into_iter()
    .find(|e| e.kafka_code() == code)
    .unwrap_or(AlterPartitionError::InvalidRequest)
}

impl Quorum {
    /// Registers (or re-registers) a broker with the active controller. The broker starts
    /// fenced; a broker-only node is also added as a Raft learner at `controller_addr`.
    /// Returns once this node's image shows the registration, so the broker's next heartbeat
    /// (with this image's offset) is caught up.
    ///
    /// Refused with `Invalid` when the registration breaks the rules
    /// ([`BrokerRegistration::validate`], or `voter` for an id that is not a configured voter),
    /// and with `Remote(DuplicateBrokerRegistration)` while another incarnation of the id is
    /// registered, unfenced and within its session (retry once it expires, as Kafka's brokers
    /// do). Over the network the registration's controller address or host must be where the
    /// request comes from (see `peer`).
    pub async fn register_broker(&self, reg: BrokerRegistration) -> Result<(), QuorumError> {
        reg.validate()?;
        let answer = self
            .call_leader(Request::RegisterBroker(reg))
            .await
            .map_err(|e| match e {
                QuorumError::Remote(RemoteError::Invalid(r)) => QuorumError::Invalid(r),
                other => other,
            })?;
        match answer {
            Response::Registered { offset } => {
                self.wait_for_offset(offset, self.request_timeout()).await?;
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    /// A broker heartbeat: keeps its session alive, unfences it once caught up with its
    /// registration (`metadata_offset` = its image offset), or with `want_shutdown` runs a
    /// controlled shutdown (fence, move leaders away) and says when it may exit. Returns once this
    /// node's image shows the heartbeat's effect.
    pub async fn heartbeat(
        &self,
        broker_id: i32,
        incarnation: Uuid,
        metadata_offset: i64,
        want_shutdown: bool,
    ) -> Result<HeartbeatReply, QuorumError> {
        let req = Request::Heartbeat(Heartbeat {
            broker_id,
            incarnation,
            metadata_offset,
            want_shutdown,
        });
        match self.call_leader(req).await? {
            Response::Heartbeat { reply, offset } => {
                self.wait_for_offset(offset, self.request_timeout()).await?;
                Ok(reply)
            }
            other => Err(unexpected(other)),
        }
    }

    /// Asks the active controller to change a partition's ISR (from its leader). The inner
    /// result is the controller's verdict; the outer one is about reaching it.
    pub async fn alter_partition(
        &self,
        topic_id: Uuid,
        partition: i32,
        req: AlterPartitionRequest,
    ) -> Result<Result<PartitionImage, AlterPartitionError>, QuorumError> {
        let wire = AlterPartition {
            topic_id,
            partition,
            broker: req.broker,
            leader_epoch: req.leader_epoch,
            partition_epoch: req.partition_epoch,
            new_isr: req.new_isr,
        };
        match self.call_leader(Request::AlterPartition(wire)).await? {
            Response::AlterPartition { result, offset } => {
                self.wait_for_offset(offset, self.request_timeout()).await?;
                Ok(result.map_err(alter_error_from_code))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Preferred leader election for `partitions`; per partition `Ok` or a Kafka error code
    /// (`ELECTION_NOT_NEEDED` 84, `PREFERRED_LEADER_NOT_AVAILABLE` 80,
    /// `UNKNOWN_TOPIC_OR_PARTITION` 3).
    pub async fn elect_leaders(
        &self,
        partitions: Vec<(Uuid, i32)>,
    ) -> Result<Vec<Result<(), i16>>, QuorumError> {
        match self
            .call_leader(Request::ElectLeaders { partitions })
            .await?
        {
            Response::ElectLeaders { results, offset } => {
                self.wait_for_offset(offset, self.request_timeout()).await?;
                Ok(results)
            }
            other => Err(unexpected(other)),
        }
    }
}
