//! `Endpoints`: the address a broker is known by, per listener. Kafka answers each client with
//! the endpoints of the listener it connected to (a client on SASL_SSL must not be sent to the
//! PLAINTEXT port), and brokers reach each other on `inter.broker.listener.name`. This node's
//! own endpoints come from its advertised listeners and the ports it actually bound (port 0);
//! another broker's from its registration in the metadata image, falling back to the
//! registration's default endpoint when it names no such listener (a broker registered before
//! it had several, or a single-listener cluster).

use std::net::SocketAddr;

use strom_cluster::metadata::BrokerEndpoint;
use strom_security::{ListenerName, SecurityProtocol};

use crate::config::BrokerConfig;
use crate::metadata::BrokerImage;

/// One listener's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) listener: String,
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) protocol: SecurityProtocol,
}

/// This node's advertised endpoints, and how to find another broker's.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    node_id: i32,
    /// This node's client listeners, in `listeners` order (the first is the default).
    own: Vec<Endpoint>,
    /// `inter.broker.listener.name`.
    inter_broker: String,
}

impl Endpoints {
    /// From the config and the addresses the client listeners are bound to (name, address).
    pub(crate) fn new(config: &BrokerConfig, bound: &[(String, SocketAddr)]) -> Self {
        let own = bound
            .iter()
            .map(|(name, addr)| {
                let advertised = config
                    .listeners
                    .advertised_listeners
                    .iter()
                    .find(|l| l.name.as_str() == name);
                let host = advertised
                    .and_then(|l| l.host.clone())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| addr.ip().to_string());
                let port = advertised
                    .map(|l| l.port)
                    .filter(|p| *p != 0)
                    .unwrap_or(addr.port());
                let protocol = config
                    .listeners
                    .protocol_map
                    .get(&ListenerName::new(name))
                    .copied()
                    .unwrap_or(SecurityProtocol::Plaintext);
                Endpoint {
                    listener: name.clone(),
                    host,
                    port: i32::from(port),
                    protocol,
                }
            })
            .collect::<Vec<_>>();
        let inter_broker = config
            .listeners
            .inter_broker_listener_name
            .as_ref()
            .map(|n| n.as_str().to_string())
            .or_else(|| own.first().map(|e| e.listener.clone()))
            .unwrap_or_default();
        Endpoints {
            node_id: config.node_id,
            own,
            inter_broker,
        }
    }

    /// This node's default endpoint (its first client listener).
    pub(crate) fn default_own(&self) -> (String, i32) {
        self.own
            .first()
            .map_or((String::new(), 0), |e| (e.host.clone(), e.port))
    }

    /// This node's endpoints as its registration records them.
    pub(crate) fn registration_endpoints(&self) -> Vec<BrokerEndpoint> {
        self.own
            .iter()
            .map(|e| BrokerEndpoint::new(&e.listener, &e.host, e.port, e.protocol))
            .collect()
    }

    /// `inter.broker.listener.name`.
    pub(crate) fn inter_broker_listener(&self) -> &str {
        &self.inter_broker
    }

    /// This node's endpoint on `listener` (the default one if it has no such listener).
    pub(crate) fn own_on(&self, listener: &str) -> (String, i32) {
        match self.own.iter().find(|e| e.listener == listener) {
            Some(e) => (e.host.clone(), e.port),
            None => self.default_own(),
        }
    }

    /// Broker `b`'s endpoint on `listener`: this node's own when `b` is this node, else the
    /// registration's endpoint of that name, else its default.
    pub(crate) fn of(&self, b: &BrokerImage, listener: &str) -> (String, i32) {
        if b.id() == self.node_id {
            return self.own_on(listener);
        }
        let r = &b.registration;
        match r.endpoint(listener) {
            Some((host, port)) => (host.to_string(), port),
            None => (r.host.clone(), r.port),
        }
    }

    /// Broker `b`'s `host:port` on the inter-broker listener.
    pub(crate) fn inter_broker_addr(&self, b: &BrokerImage) -> String {
        let (host, port) = self.of(b, &self.inter_broker);
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }
}
