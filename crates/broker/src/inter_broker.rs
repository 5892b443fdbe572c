//! Connections from this broker to the others for its own requests: one cached, multiplexed
//! `strom_client::Connection` per broker id, replaced when the broker's address changes or the
//! connection failed.
//!
//! One pool per purpose, as Kafka gives its marker channel and its verification manager their
//! own network clients: a broker answers a connection's requests in order, and a verification
//! can wait on a transaction's lock while that transaction's coordinator waits for markers. Were
//! both on one connection, two brokers could each hold the other's markers behind a waiting
//! verification. The transaction-marker channel and `txn_verifier` each own a pool; the replica
//! fetcher keeps its own connections (long polls).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use std::sync::Arc;

use parking_lot::Mutex;
use strom_client::{ClientError, Connection, ConnectionConfig, Security};

/// Cached connections to other brokers.
#[derive(Debug)]
pub(crate) struct BrokerConnections {
    config: ConnectionConfig,
    /// TLS and SASL of the inter-broker listener.
    security: Arc<Security>,
    conns: Mutex<HashMap<i32, Connection>>,
}

impl BrokerConnections {
    /// A pool whose connections name themselves `broker-<node_id>-<purpose>`.
    pub(crate) fn new(node_id: i32, purpose: &str, security: Arc<Security>) -> Self {
        BrokerConnections {
            security,
            config: ConnectionConfig {
                client_id: format!("broker-{node_id}-{purpose}"),
                // A dead broker is found out quickly; the image then names its successor.
                connect_timeout: Duration::from_secs(3),
                ..ConnectionConfig::default()
            },
            conns: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to broker `id` at `addr`, opened if needed.
    pub(crate) async fn connection(&self, id: i32, addr: &str) -> Result<Connection, ClientError> {
        if let Some(c) = self.conns.lock().get(&id) {
            if c.addr() == addr && !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let c = Connection::connect_with_security(addr, &self.config, &self.security).await?;
        self.conns.lock().insert(id, c.clone());
        Ok(c)
    }

    /// Drops the cached connection to `id` after a failure (the next call reconnects).
    pub(crate) fn forget(&self, id: i32) {
        self.conns.lock().remove(&id);
    }
}

/// Partitions grouped by topic, as inter-broker requests name them (topics in name order,
/// partitions in the given order).
pub(crate) fn by_topic(parts: &[(String, i32)]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        topics.entry(t.as_str()).or_default().push(*p);
    }
    topics
}
