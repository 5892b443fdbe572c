//! The producer's settings: [`ProducerConfig`] (Kafka producer config names in the docs) and
//! [`Acks`].

use std::time::Duration;

use kafka_protocol::records::Compression;

/// How many replicas must have the records before the broker answers (Kafka: acks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// All in-sync replicas (-1).
    All,
    /// The leader only (1).
    Leader,
    /// No answer at all (0): offsets are reported as -1 and errors are not seen.
    None,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::All => -1,
            Acks::Leader => 1,
            Acks::None => 0,
        }
    }
}

/// Producer settings (Kafka producer config names in the docs).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// acks
    pub acks: Acks,
    /// linger.ms: how long a non-full batch waits for more records.
    pub linger: Duration,
    /// batch.size: target encoded size of one batch, in bytes.
    pub batch_size: usize,
    /// compression.type
    pub compression: Compression,
    /// max.in.flight.requests: Produce requests outstanding at once (across brokers).
    pub max_in_flight: usize,
    /// buffer.memory: bytes accumulated or in flight before `send` waits.
    pub buffer_memory: usize,
    /// The broker-side timeout sent in Produce (Kafka: request.timeout.ms).
    pub produce_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            max_in_flight: 5,
            buffer_memory: 32 * 1024 * 1024,
            produce_timeout: Duration::from_secs(30),
        }
    }
}
