//! `Client`: bootstrap, cached cluster metadata, one pipelined connection per broker, and routing of
//! partition requests to leaders. Admin, producer and consumer are built on it.
//!
//! Concurrency: the metadata snapshot is swapped atomically (readers never block on a refresh); the
//! connection pool is a tokio mutex held while dialing, so two tasks never open two sockets to the
//! same broker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::RwLock;

use crate::connection::Connection;
use crate::error::ClientError;
use crate::metadata::{ClusterMetadata, TopicMetadata};
use crate::security::Security;
use crate::transport::ConnectionConfig;

/// Settings shared by admin, producer and consumer.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Comma-separated "host:port" list (Kafka: bootstrap.servers).
    pub bootstrap_servers: String,
    /// Per-connection settings.
    pub connection: ConnectionConfig,
    /// How every connection is secured — bootstrap and each broker alike (Kafka:
    /// `security.protocol`, `ssl.*`, `sasl.*`). PLAINTEXT by default.
    pub security: Security,
    /// How many times a request hitting stale metadata (NOT_LEADER_OR_FOLLOWER, ...) is retried
    /// after a metadata refresh (Kafka: retries, bounded here).
    pub retries: u32,
    /// Wait before a retry, growing linearly per attempt (Kafka: retry.backoff.ms).
    pub retry_backoff: Duration,
}

impl ClientConfig {
    /// Defaults with the given bootstrap list.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap_servers.into(),
            connection: ConnectionConfig::default(),
            security: Security::plaintext(),
            retries: 5,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

struct ClientInner {
    config: ClientConfig,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Connections by broker id.
    pool: tokio::sync::Mutex<HashMap<i32, Connection>>,
    /// The connection used before broker ids are known.
    bootstrap: tokio::sync::Mutex<Option<Connection>>,
}

/// A handle to a cluster. Cheap to clone; clones share metadata and connections.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

impl Client {
    /// Connects to `bootstrap` ("host:port", or a comma-separated list) with default settings.
    pub async fn connect(bootstrap: &str) -> Result<Client, ClientError> {
        Client::with_config(ClientConfig::new(bootstrap)).await
    }

    /// Connects with explicit settings and loads the broker list.
    pub async fn with_config(config: ClientConfig) -> Result<Client, ClientError> {
        if bootstrap_addrs(&config.bootstrap_servers).is_empty() {
            return Err(ClientError::InvalidAddress(config.bootstrap_servers));
        }
        let client = Client {
            inner: Arc::new(ClientInner {
                config,
                metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
                pool: tokio::sync::Mutex::new(HashMap::new()),
                bootstrap: tokio::sync::Mutex::new(None),
            }),
        };
        // An empty topic list returns brokers and controller only: cheap on big clusters.
        client.refresh_metadata(Some(&[]), false).await?;
        Ok(client)
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The current metadata snapshot (no network).
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.inner.metadata.read().clone()
    }

    /// Fetches metadata for `topics` (`None` = all topics) and folds it into the cache.
    /// `allow_auto_topic_creation` asks the broker to create missing topics if it is configured to.
    pub async fn refresh_metadata(
        &self,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Arc<ClusterMetadata>, ClientError> {
        let mut last_err = None;
        for attempt in 0..=self.inner.config.retries {
            if attempt > 0 {
                self.backoff(attempt).await;
            }
            let conn = match self.any_connection().await {
                Ok(conn) => conn,
                // A refused login or certificate fails the same way on every try (and retrying
                // a wrong password only fills the broker's failed-login log).
                Err(e) if e.is_authentication() => return Err(e),
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            match self
                .metadata_from(&conn, topics, allow_auto_topic_creation)
                .await
            {
                Ok(meta) => return Ok(meta),
                Err(e) if e.is_retriable() => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            ClientError::NoBrokerAvailable(self.inner.config.bootstrap_servers.clone())
        }))
    }

    async fn metadata_from(
        &self,
        conn: &Connection,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Arc<ClusterMetadata>, ClientError> {
        let version = conn.version(ApiKey::Metadata)?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string((*n).to_owned()))))
                    })
                    .collect()
            }))
            // Before v4 the field does not exist and the broker always auto-creates (if enabled).
            .with_allow_auto_topic_creation(allow_auto_topic_creation || version < 4);
        let response = conn.send(version, &request).await?;
        let (fresh, missing) = ClusterMetadata::from_response(&response);
        let mut guard = self.inner.metadata.write();
        let merged = Arc::new(guard.merged(fresh, &missing, topics.is_none()));
        *guard = merged.clone();
        Ok(merged)
    }

    /// Metadata for one topic: from the cache, else refreshed. `UnknownTopic` if the cluster does not
    /// have it (after asking for auto-creation when `allow_auto_topic_creation`).
    pub async fn topic_metadata(
        &self,
        topic: &str,
        allow_auto_topic_creation: bool,
    ) -> Result<TopicMetadata, ClientError> {
        if let Some(t) = self.metadata().topic(topic) {
            return Ok(t.clone());
        }
        let mut attempts = 0;
        loop {
            let meta = self
                .refresh_metadata(Some(&[topic]), allow_auto_topic_creation)
                .await?;
            if let Some(t) = meta.topic(topic) {
                return Ok(t.clone());
            }
            // A topic just auto-created reports LEADER_NOT_AVAILABLE for a moment.
            if !allow_auto_topic_creation || attempts >= self.inner.config.retries {
                return Err(ClientError::UnknownTopic(topic.to_owned()));
            }
            attempts += 1;
            self.backoff(attempts).await;
        }
    }

    /// The connection to broker `broker_id`, dialing it if needed.
    pub async fn connection(&self, broker_id: i32) -> Result<Connection, ClientError> {
        let mut pool = self.inner.pool.lock().await;
        if let Some(conn) = pool.get(&broker_id) {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        let broker = self.metadata().brokers.get(&broker_id).cloned();
        let Some(broker) = broker else {
            return Err(ClientError::NoBrokerAvailable(format!(
                "broker {broker_id} is not in the metadata"
            )));
        };
        let conn = self.dial(&broker.addr()).await?;
        pool.insert(broker_id, conn.clone());
        Ok(conn)
    }

    /// The connection to the leader of `topic`-`partition` and the leader's id, refreshing metadata
    /// once if the leader is unknown.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, Connection), ClientError> {
        let leader = match self.metadata().leader(topic, partition) {
            Some(leader) => leader,
            None => {
                let meta = self.refresh_metadata(Some(&[topic]), false).await?;
                let t = meta
                    .topic(topic)
                    .ok_or_else(|| ClientError::UnknownTopic(topic.to_owned()))?;
                let p = t
                    .partition(partition)
                    .ok_or_else(|| ClientError::UnknownPartition {
                        topic: topic.to_owned(),
                        partition,
                    })?;
                p.leader.ok_or_else(|| {
                    ClientError::broker(
                        format!("{topic}-{partition}"),
                        5, /* LEADER_NOT_AVAILABLE */
                        None,
                    )
                })?
            }
        };
        Ok((leader, self.connection(leader).await?))
    }

    /// A connection to the controller if known, else to any broker (KRaft brokers forward admin
    /// requests to the controller).
    pub async fn controller_connection(&self) -> Result<Connection, ClientError> {
        if let Some(id) = self.metadata().controller_id {
            if let Ok(conn) = self.connection(id).await {
                return Ok(conn);
            }
        }
        self.any_connection().await
    }

    /// Any live connection: a pooled one, else a known broker, else a bootstrap address.
    pub async fn any_connection(&self) -> Result<Connection, ClientError> {
        {
            let pool = self.inner.pool.lock().await;
            if let Some(conn) = pool.values().find(|c| !c.is_closed()) {
                return Ok(conn.clone());
            }
        }
        let brokers: Vec<i32> = self.metadata().brokers.keys().copied().collect();
        for id in brokers {
            if let Ok(conn) = self.connection(id).await {
                return Ok(conn);
            }
        }
        let mut bootstrap = self.inner.bootstrap.lock().await;
        if let Some(conn) = bootstrap.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let mut last_err = None;
        for addr in bootstrap_addrs(&self.inner.config.bootstrap_servers) {
            match self.dial(addr).await {
                Ok(conn) => {
                    *bootstrap = Some(conn.clone());
                    return Ok(conn);
                }
                Err(e) if e.is_authentication() => return Err(e),
                Err(e) => {
                    tracing::debug!(addr, error = %e, "bootstrap connection failed");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            ClientError::NoBrokerAvailable(self.inner.config.bootstrap_servers.clone())
        }))
    }

    async fn dial(&self, addr: &str) -> Result<Connection, ClientError> {
        let config = &self.inner.config;
        Connection::connect_with_security(addr, &config.connection, &config.security).await
    }

    /// Sleeps before retry `attempt` (1-based): linear backoff, capped at 10x the base.
    pub(crate) async fn backoff(&self, attempt: u32) {
        let base = self.inner.config.retry_backoff;
        tokio::time::sleep(base * attempt.clamp(1, 10)).await;
    }
}

/// Splits "a:1,b:2" into addresses, ignoring blanks.
fn bootstrap_addrs(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_list_parsing() {
        assert_eq!(bootstrap_addrs("a:1, b:2,,"), vec!["a:1", "b:2"]);
        assert!(bootstrap_addrs(" ").is_empty());
    }

    #[tokio::test]
    async fn unreachable_bootstrap_fails_without_hanging() {
        // Port 1 on localhost: connection refused immediately.
        let mut config = ClientConfig::new("127.0.0.1:1");
        config.retries = 1;
        config.retry_backoff = Duration::from_millis(1);
        let err = Client::with_config(config).await.unwrap_err();
        assert!(matches!(err, ClientError::Io { .. }), "{err}");
    }
}
