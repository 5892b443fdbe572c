//! `ConsoleConfig` and the shared state of the console's handlers: one `strom-client` [`Client`]
//! (cheap to clone; it keeps its metadata cache and one connection per broker), dialed on first
//! use so the console starts even while the cluster is still coming up, and redialed after a
//! failed bootstrap.

use std::sync::Arc;

use strom_client::{Client, ClientConfig, ClientError, Producer, ProducerConfig};
use tokio::sync::Mutex;

/// How the console reaches the cluster and what its host server offers besides.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// The bootstrap address and security of the console's Kafka connections.
    pub client: ClientConfig,
    /// Whether the server the router is mounted in also serves Prometheus `/metrics` at the same
    /// origin (`strom serve` does; `strom console` alone does not). The front end reads the
    /// throughput sparkline from it only then, so a standalone console never requests a 404.
    pub metrics_at_origin: bool,
}

impl ConsoleConfig {
    /// A console of the cluster at `bootstrap_servers` (plaintext), without `/metrics`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        ConsoleConfig {
            client: ClientConfig::new(bootstrap_servers),
            metrics_at_origin: false,
        }
    }
}

/// The handlers' state: cheap to clone (one `Arc`).
#[derive(Clone)]
pub(crate) struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    config: ConsoleConfig,
    /// `None` until the first successful bootstrap. Held while dialing, so concurrent requests
    /// wait for one connection instead of each opening their own.
    client: Mutex<Option<Client>>,
    /// The producer of the "produce a test record" form, made on first use (it runs a sender task).
    producer: Mutex<Option<Producer>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field(
                "bootstrap_servers",
                &self.inner.config.client.bootstrap_servers,
            )
            .finish()
    }
}

impl Console {
    pub(crate) fn new(config: ConsoleConfig) -> Self {
        Console {
            inner: Arc::new(Inner {
                config,
                client: Mutex::new(None),
                producer: Mutex::new(None),
            }),
        }
    }

    pub(crate) fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// The client, bootstrapping it if this is the first use (or the last bootstrap failed).
    pub(crate) async fn client(&self) -> Result<Client, ClientError> {
        let mut slot = self.inner.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut config = self.inner.config.client.clone();
        // A page waits on this: fail fast and let the next poll try again.
        config.retries = config.retries.min(2);
        let client = Client::with_config(config).await?;
        *slot = Some(client.clone());
        Ok(client)
    }

    /// The console's producer (acks=all, so a produced test record is really there when the
    /// form says so).
    pub(crate) async fn producer(&self) -> Result<Producer, ClientError> {
        let client = self.client().await?;
        let mut slot = self.inner.producer.lock().await;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let producer = Producer::new(client, ProducerConfig::default());
        *slot = Some(producer.clone());
        Ok(producer)
    }
}
