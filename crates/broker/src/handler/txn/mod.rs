//! Transaction-family APIs: InitProducerId (idempotent and transactional), AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit, EndTxn, WriteTxnMarkers (broker to broker), and the admin
//! side (ListTransactions, DescribeTransactions, DescribeProducers). Thin handlers over
//! `strom_coordinator::txn::TransactionCoordinator`; this module is the one place its errors
//! become Kafka error codes ([`code`]).
//!
//! Transactions V2 (KIP-890 part 2) is advertised (ApiVersions finalizes `transaction.version`
//! 2; EndTxn v5, TxnOffsetCommit v5, Produce v12). Not advertised: InitProducerId v6 (KIP-939),
//! ListTransactions v2.

pub(crate) mod add_partitions_to_txn;
pub(crate) mod admin;
pub(crate) mod end_txn;
pub(crate) mod init_producer_id;
pub(crate) mod txn_offset_commit;
pub(crate) mod write_txn_markers;

use kafka_protocol::error::ResponseError;
use strom_coordinator::txn::TxnError;
use strom_coordinator::WriteError;

/// Kafka error code for a coordinator error. `fenced_code` is false for request versions older
/// than KIP-588's, which get INVALID_PRODUCER_EPOCH instead of PRODUCER_FENCED.
pub(crate) fn code(e: &TxnError, fenced_code: bool) -> i16 {
    let r = match e {
        TxnError::InvalidRequest(_) => ResponseError::InvalidRequest,
        TxnError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        TxnError::NotCoordinator | TxnError::Write(WriteError::NotCoordinator(_)) => {
            ResponseError::NotCoordinator
        }
        TxnError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::ProducerFenced if fenced_code => ResponseError::ProducerFenced,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        TxnError::ProducerIdUnavailable(_) => ResponseError::UnknownServerError,
        TxnError::Write(WriteError::TooLarge) => ResponseError::UnknownServerError,
        TxnError::Write(_) => ResponseError::CoordinatorNotAvailable,
        TxnError::Group(g) => return super::group::code(g),
    };
    r.code()
}
