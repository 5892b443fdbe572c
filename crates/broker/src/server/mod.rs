//! The network server: one accept loop per client listener (`listeners`, each with its
//! security protocol: `listener.rs`, `transport.rs`, `sasl.rs`) and one task per connection.

pub(crate) mod codec;
mod connection;
mod limits;
mod listener;
mod sasl;
mod sendfile;
pub(crate) mod splice_buf;
mod transport;

pub(crate) use connection::{route, Route};

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use strom_security::FailedLoginLog;

use crate::broker::{Broker, StartError};
use crate::config::BrokerConfig;
use crate::listener_tls::ListenerTls;
use connection::ConnectionContext;
use limits::{ConnectionLimits, RequestMemory};
use listener::BoundListener;

/// A running broker: its address, and the way to stop it.
#[derive(Debug)]
pub struct BrokerServer {
    broker: Arc<Broker>,
    /// Each client listener's name and bound address, in `listeners` order.
    local_addrs: Vec<(String, SocketAddr)>,
    stop: watch::Sender<bool>,
    accept: Vec<tokio::task::JoinHandle<()>>,
    /// The SASL servers of the client listeners that have SASL (the HTTP endpoint checks its
    /// basic-auth logins with them).
    sasl: Vec<Arc<strom_security::SaslServerFactory>>,
}

impl BrokerServer {
    /// Binds the client listeners, opens storage and starts accepting. Must run inside a tokio
    /// runtime.
    pub async fn start(config: BrokerConfig) -> Result<BrokerServer, StartError> {
        let client_listeners: Vec<strom_security::Listener> = config
            .listeners
            .listeners
            .iter()
            .filter(|l| !config.listeners.is_controller_listener(&l.name))
            .cloned()
            .collect();
        let mut sockets = Vec::with_capacity(client_listeners.len());
        for l in &client_listeners {
            sockets.push(BoundListener::bind(l).await?);
        }
        let bound: Vec<(String, SocketAddr)> = client_listeners
            .iter()
            .zip(&sockets)
            .map(|(l, (_, addr))| (l.name.as_str().to_string(), *addr))
            .collect();
        if bound.is_empty() {
            return Err(StartError::Config(crate::config::ConfigError::Invalid {
                name: "listeners".into(),
                value: String::new(),
                reason: "no client listener".into(),
            }));
        }
        let quorum_config = config.quorum_config()?;
        let quorum = crate::metadata::Quorum::start(quorum_config).await?;
        let broker = tokio::task::block_in_place(|| Broker::open(config, &bound, quorum))?;
        let (stop, stop_rx) = watch::channel(false);
        let limits = Arc::new(
            ConnectionLimits::new(
                broker.config.max_connections,
                broker.config.max_connections_per_ip,
                &broker.config.max_connections_per_ip_overrides,
            )
            .map_err(|reason| {
                StartError::Config(crate::config::ConfigError::Invalid {
                    name: "max.connections.per.ip.overrides".into(),
                    value: broker.config.max_connections_per_ip_overrides.clone(),
                    reason,
                })
            })?,
        );
        let memory = RequestMemory::new(
            broker.config.queued_max_request_bytes,
            broker.config.socket_request_max_bytes,
        );
        let failed_logins = Arc::new(FailedLoginLog::default());
        let mut accept = Vec::new();
        let mut local_addrs = Vec::new();
        let mut sasl = Vec::new();
        // SCRAM logins check the credentials in the metadata image (KIP-554).
        let scram: Arc<dyn strom_security::ScramCredentialStore> = broker.metadata.clone();
        let security = ListenerTls::effective_security(
            &broker.config.security,
            &broker.metadata.image(),
            broker.config.node_id,
        );
        for (l, (tcp, addr)) in client_listeners.iter().zip(sockets) {
            let bound = BoundListener::secure(&security, l, Some(scram.clone())).await?;
            if let Some(tls) = &bound.security.tls {
                broker.listener_tls.register(l.clone(), tls.clone());
            }
            sasl.extend(bound.security.sasl.clone());
            local_addrs.push((bound.name.clone(), addr));
            let cx = ConnectionContext {
                broker: broker.clone(),
                listener: Arc::new(bound),
                memory: memory.clone(),
                failed_logins: failed_logins.clone(),
                connections: broker.metrics.listener_connections(l.name.as_str()),
            };
            accept.push(tokio::spawn(accept_loop(
                tcp,
                cx,
                stop_rx.clone(),
                limits.clone(),
            )));
        }
        crate::lifecycle::start_metadata_listener(std::sync::Arc::downgrade(&broker));
        // Registered and unfenced (so leading what it should) before clients are told the
        // address; a node whose quorum is not up yet goes on after the limit.
        crate::lifecycle::join(&broker, std::time::Duration::from_secs(20)).await;
        tracing::info!(listeners = ?local_addrs, advertised = ?broker.advertised, cluster_id = %broker.cluster_id, "strom broker started");
        Ok(BrokerServer {
            broker,
            local_addrs,
            stop,
            accept,
            sasl,
        })
    }

    /// The SASL servers of the client listeners with SASL (none: no listener authenticates
    /// with a password).
    pub fn sasl_servers(&self) -> &[Arc<strom_security::SaslServerFactory>] {
        &self.sasl
    }

    /// Every client listener's name and bound address (useful with port 0).
    pub fn local_addrs(&self) -> &[(String, SocketAddr)] {
        &self.local_addrs
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0].1
    }

    /// The shared broker state.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, lets in-flight requests finish (bounded), then shuts storage down cleanly.
    pub async fn shutdown(self) {
        let broker = self.broker;
        broker.begin_shutdown();
        // Other brokers can take over leadership before this one stops answering.
        if !broker.config.voters.is_empty() {
            crate::lifecycle::controlled_shutdown(&broker, std::time::Duration::from_secs(10))
                .await;
        }
        let _ = self.stop.send(true);
        for a in self.accept {
            let _ = a.await;
        }
        let quorum = broker.metadata.clone();
        let _ = tokio::task::spawn_blocking(move || broker.shutdown()).await;
        quorum.shutdown().await;
        tracing::info!("strom broker stopped cleanly");
    }
}

async fn accept_loop(
    listener: TcpListener,
    cx: ConnectionContext,
    mut stop: watch::Receiver<bool>,
    limits: Arc<ConnectionLimits>,
) {
    let mut conns = JoinSet::new();
    let mut refusals = RefusalLog::default();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let admitted = match limits.admit(peer.ip()) {
                        Ok(p) => p,
                        Err(why) => {
                            refusals.log(peer, why);
                            drop(stream);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    conns.spawn(connection::serve(
                        cx.clone(),
                        stream,
                        peer,
                        stop.clone(),
                        admitted,
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    // Connections answer what they already read, then close; bounded so shutdown cannot hang.
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("connections did not finish within 10 s; closing them");
        conns.abort_all();
    }
}

/// Refused connections are logged at most once a second (with how many were refused since), so a
/// flood cannot flood the log too.
#[derive(Debug, Default)]
struct RefusalLog {
    last: Option<std::time::Instant>,
    since: u64,
}

impl RefusalLog {
    fn log(&mut self, peer: SocketAddr, why: limits::Refused) {
        self.since += 1;
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1))
        {
            return;
        }
        tracing::warn!(%peer, refused = self.since, reason = %why, "closing new connection over the connection limits");
        self.last = Some(now);
        self.since = 0;
    }
}
