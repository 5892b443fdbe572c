//! Transaction-family APIs. Today only InitProducerId for idempotent producers; the transaction
//! coordinator (AddPartitionsToTxn, EndTxn, ...) arrives with transactions.

pub(crate) mod init_producer_id;
