//! [`RecordState`] and [`AcknowledgeType`]: the states of a delivered record and the four ways a
//! consumer answers for it, with Kafka's ids (they are on the wire and in `__share_group_state`).
//!
//! The transitions are Kafka's `RecordState.validateTransition`: AVAILABLE → ACQUIRED, and
//! ACQUIRED → AVAILABLE | ACKNOWLEDGED | ARCHIVED; ACKNOWLEDGED and ARCHIVED are terminal.
//! Kafka 4.2's ARCHIVING (3, KIP-1191 dead-letter queues) is not modelled: no DLQ here.

use serde::{Deserialize, Serialize};

/// The state of one in-flight record (`SharePartition.RecordState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i8", try_from = "i8")]
pub enum RecordState {
    /// May be acquired by the next fetch (id 0).
    Available,
    /// Delivered to one member, under a time-limited acquisition lock (id 1). Never durable.
    Acquired,
    /// Processed by the consumer: never delivered again (id 2).
    Acknowledged,
    /// Rejected, a gap, or past the delivery count limit: never delivered again (id 4).
    Archived,
}

impl RecordState {
    /// Kafka's id of the state (`DeliveryState` in `ShareSnapshotValue`).
    pub fn id(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    /// The state of a Kafka id; `None` for 3 (ARCHIVING, unsupported) and anything unknown.
    pub fn from_id(id: i8) -> Option<RecordState> {
        match id {
            0 => Some(RecordState::Available),
            1 => Some(RecordState::Acquired),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    /// ACKNOWLEDGED or ARCHIVED: the start offset may move past such a record.
    pub fn is_terminal(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

impl From<RecordState> for i8 {
    fn from(state: RecordState) -> i8 {
        state.id()
    }
}

impl TryFrom<i8> for RecordState {
    type Error = String;

    fn try_from(id: i8) -> Result<RecordState, String> {
        RecordState::from_id(id).ok_or_else(|| format!("unknown record state id {id}"))
    }
}

/// How a consumer answers for a record (`AcknowledgeType`, plus the wire's 0 for gaps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcknowledgeType {
    /// 0 on the wire: the offset holds no record the consumer could see (compacted away, a
    /// control record). Kafka archives it, as a REJECT.
    Gap,
    /// 1: processed; the record becomes ACKNOWLEDGED.
    Accept,
    /// 2: not processed; the record becomes AVAILABLE again (ARCHIVED at the delivery limit).
    Release,
    /// 3: unprocessable; the record becomes ARCHIVED.
    Reject,
    /// 4 (KIP-1222): still processing; the acquisition lock restarts, the state is unchanged.
    Renew,
}

impl AcknowledgeType {
    /// Kafka's id of the type.
    pub fn id(self) -> i8 {
        match self {
            AcknowledgeType::Gap => 0,
            AcknowledgeType::Accept => 1,
            AcknowledgeType::Release => 2,
            AcknowledgeType::Reject => 3,
            AcknowledgeType::Renew => 4,
        }
    }

    /// The type of a wire id; `None` for an unknown id (the broker answers `INVALID_REQUEST`,
    /// as Kafka's `fetchAckTypeMapForBatch`).
    pub fn from_id(id: i8) -> Option<AcknowledgeType> {
        match id {
            0 => Some(AcknowledgeType::Gap),
            1 => Some(AcknowledgeType::Accept),
            2 => Some(AcknowledgeType::Release),
            3 => Some(AcknowledgeType::Reject),
            4 => Some(AcknowledgeType::Renew),
            _ => None,
        }
    }

    /// The state an ACQUIRED record moves to, before the delivery-limit rule; `None` for RENEW,
    /// which moves nothing (`ACK_TYPE_TO_RECORD_STATE` in Kafka).
    pub(crate) fn target_state(self) -> Option<RecordState> {
        match self {
            AcknowledgeType::Gap | AcknowledgeType::Reject => Some(RecordState::Archived),
            AcknowledgeType::Accept => Some(RecordState::Acknowledged),
            AcknowledgeType::Release => Some(RecordState::Available),
            AcknowledgeType::Renew => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_match_kafka() {
        for state in [
            RecordState::Available,
            RecordState::Acquired,
            RecordState::Acknowledged,
            RecordState::Archived,
        ] {
            assert_eq!(RecordState::from_id(state.id()), Some(state));
        }
        assert_eq!(RecordState::Archived.id(), 4);
        assert_eq!(RecordState::from_id(3), None, "ARCHIVING is not supported");
        for id in 0..=4 {
            assert_eq!(
                AcknowledgeType::from_id(id).map(AcknowledgeType::id),
                Some(id)
            );
        }
        assert_eq!(AcknowledgeType::from_id(5), None);
        assert_eq!(AcknowledgeType::from_id(-1), None);
    }

    #[test]
    fn serde_uses_the_kafka_id() {
        let json = serde_json::to_string(&RecordState::Acknowledged).unwrap_or_default();
        assert_eq!(json, "2");
        let back: Result<RecordState, _> = serde_json::from_str("4");
        assert_eq!(back.ok(), Some(RecordState::Archived));
        assert!(serde_json::from_str::<RecordState>("3").is_err());
    }

    #[test]
    fn terminal_states() {
        assert!(RecordState::Acknowledged.is_terminal());
        assert!(RecordState::Archived.is_terminal());
        assert!(!RecordState::Available.is_terminal());
        assert!(!RecordState::Acquired.is_terminal());
    }
}
