//! The listener model: `listeners`, `advertised.listeners`, `listener.security.protocol.map`,
//! `inter.broker.listener.name` / `security.inter.broker.protocol`, `controller.listener.names`
//! and `process.roles`, parsed and validated with Kafka's rules and messages, into a
//! [`ListenerConfig`] the broker iterates to bind one socket per [`Listener`].
//!
//! Listener names are normalised to upper case as Kafka's `ListenerName.normalised` does, and
//! their per-listener config prefix is the lower-cased `listener.name.<name>.` ([`ListenerProps`]).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::config::properties::{split_list, Properties};
use crate::error::ConfigError;

/// Kafka's `security.protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityProtocol {
    /// No TLS, no SASL: every client is `User:ANONYMOUS`.
    Plaintext,
    /// TLS; the principal comes from the client certificate when there is one.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, in Kafka's order.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses a protocol name, case-insensitively (Kafka upper-cases before `forName`).
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        let upper = name.trim().to_ascii_uppercase();
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name() == upper)
    }

    /// Whether connections are wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before other requests.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A listener's name, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerName(String);

impl ListenerName {
    /// Normalises `name` to upper case.
    pub fn new(name: &str) -> Self {
        ListenerName(name.trim().to_ascii_uppercase())
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `listener.name.<lower-cased name>.`
    pub fn config_prefix(&self) -> String {
        format!("listener.name.{}.", self.0.to_ascii_lowercase())
    }

    /// `listener.name.<lower-cased name>.<lower-cased mechanism>.`
    pub fn mechanism_config_prefix(&self, mechanism: &str) -> String {
        format!(
            "{}{}.",
            self.config_prefix(),
            mechanism.to_ascii_lowercase()
        )
    }
}

impl fmt::Display for ListenerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One endpoint of `listeners` or `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener's name (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: ListenerName,
    /// Its security protocol, from the protocol map.
    pub protocol: SecurityProtocol,
    /// The host; `None` when written empty (`PLAINTEXT://:9092`): bind every interface, or for an
    /// advertised listener, advertise the machine's canonical host name.
    pub host: Option<String>,
    /// The port; 0 binds an ephemeral port.
    pub port: u16,
}

impl Listener {
    /// The host to bind: the configured one, or `0.0.0.0` when empty.
    pub fn bind_host(&self) -> &str {
        self.host.as_deref().unwrap_or("0.0.0.0")
    }

    /// `host:port` for `TcpListener::bind` (IPv6 literals bracketed).
    pub fn bind_address(&self) -> String {
        let host = self.bind_host();
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.host.as_deref().unwrap_or("");
        if host.contains(':') {
            write!(f, "{}://[{host}]:{}", self.name, self.port)
        } else {
            write!(f, "{}://{host}:{}", self.name, self.port)
        }
    }
}

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Serves clients.
    pub broker: bool,
    /// Votes in the metadata quorum.
    pub controller: bool,
}

/// The validated listener configuration of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Sockets to bind, in configuration order.
    pub listeners: Vec<Listener>,
    /// Broker endpoints to publish in metadata (controller listeners excluded).
    pub advertised_listeners: Vec<Listener>,
    /// The listener other brokers connect to; `None` on a controller-only node.
    pub inter_broker_listener_name: Option<ListenerName>,
    /// `controller.listener.names`, in order (the first is the one brokers use).
    pub controller_listener_names: Vec<ListenerName>,
    /// The effective `listener.security.protocol.map`.
    pub protocol_map: BTreeMap<ListenerName, SecurityProtocol>,
    /// `process.roles`; when unset this node is taken to be a broker.
    pub roles: ProcessRoles,
}

const LISTENERS: &str = "listeners";
const ADVERTISED: &str = "advertised.listeners";
const PROTOCOL_MAP: &str = "listener.security.protocol.map";
const INTER_BROKER_NAME: &str = "inter.broker.listener.name";
const INTER_BROKER_PROTOCOL: &str = "security.inter.broker.protocol";
const CONTROLLER_NAMES: &str = "controller.listener.names";
const PROCESS_ROLES: &str = "process.roles";

impl ListenerConfig {
    /// Parses and validates the listener keys of `props`.
    pub fn from_props(props: &Properties) -> Result<Self, ConfigError> {
        let roles = parse_roles(props)?;
        let controller_listener_names: Vec<ListenerName> = props
            .get_list(CONTROLLER_NAMES)
            .unwrap_or_default()
            .iter()
            .map(|n| ListenerName::new(n))
            .collect();
        let protocol_map = effective_protocol_map(props, &controller_listener_names)?;
        let listeners_text = props.get(LISTENERS).unwrap_or("PLAINTEXT://:9092");
        let listeners = parse_endpoints(LISTENERS, listeners_text, &protocol_map, true)?;
        let is_controller = |n: &ListenerName| controller_listener_names.contains(n);

        let advertised_listeners = match props.get_trimmed(ADVERTISED) {
            Some(text) => {
                let advertised = parse_endpoints(ADVERTISED, text, &protocol_map, false)?;
                for a in &advertised {
                    if !listeners.iter().any(|l| l.name == a.name) {
                        return Err(ConfigError::invalid(ADVERTISED, format!(
                            "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners; {} is not in listeners", a.name)));
                    }
                    if roles.broker && is_controller(&a.name) {
                        return Err(ConfigError::invalid(ADVERTISED, format!(
                            "the advertised.listeners config must not contain KRaft controller listeners from controller.listener.names when process.roles contains the broker role; found {}", a.name)));
                    }
                }
                advertised
            }
            None => listeners
                .iter()
                .filter(|l| !is_controller(&l.name))
                .cloned()
                .collect(),
        };
        if advertised_listeners
            .iter()
            .any(|l| l.host.as_deref() == Some("0.0.0.0"))
        {
            return Err(ConfigError::invalid(
                ADVERTISED,
                "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.",
            ));
        }

        for name in &controller_listener_names {
            if !protocol_map.contains_key(name) {
                return Err(ConfigError::invalid(
                    CONTROLLER_NAMES,
                    format!("no security protocol defined for controller listener {name} (add it to {PROTOCOL_MAP})"),
                ));
            }
        }
        if props.get(PROCESS_ROLES).is_some() {
            if controller_listener_names.is_empty() {
                return Err(ConfigError::invalid(
                    CONTROLLER_NAMES,
                    "controller.listener.names must contain at least one value when running in KRaft mode",
                ));
            }
            let bound_controller = listeners.iter().any(|l| is_controller(&l.name));
            if roles.controller && !bound_controller {
                return Err(ConfigError::invalid(CONTROLLER_NAMES,
                    "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role"));
            }
            if !roles.controller && bound_controller {
                return Err(ConfigError::invalid(CONTROLLER_NAMES,
                    "controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role"));
            }
        }

        let inter_broker_listener_name = if roles.broker {
            let name = inter_broker_name(props)?;
            if is_controller(&name) {
                return Err(ConfigError::invalid(
                    INTER_BROKER_NAME,
                    format!("the inter-broker listener {name} must not be a controller listener"),
                ));
            }
            if !advertised_listeners.iter().any(|l| l.name == name) {
                return Err(ConfigError::invalid(
                    INTER_BROKER_NAME,
                    format!("inter.broker.listener.name must be a listener name defined in advertised.listeners; {name} is not (advertised: {})",
                        advertised_listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(",")),
                ));
            }
            Some(name)
        } else {
            None
        };

        Ok(ListenerConfig {
            listeners,
            advertised_listeners,
            inter_broker_listener_name,
            controller_listener_names,
            protocol_map,
            roles,
        })
    }

    /// The bound listener of that name.
    pub fn listener(&self, name: &ListenerName) -> Option<&Listener> {
        self.listeners.iter().find(|l| &l.name == name)
    }

    /// Whether `name` is one of `controller.listener.names`.
    pub fn is_controller_listener(&self, name: &ListenerName) -> bool {
        self.controller_listener_names.contains(name)
    }

    /// The security protocol of the inter-broker listener.
    pub fn inter_broker_protocol(&self) -> Option<SecurityProtocol> {
        self.inter_broker_listener_name
            .as_ref()
            .and_then(|n| self.protocol_map.get(n).copied())
    }
}

fn parse_roles(props: &Properties) -> Result<ProcessRoles, ConfigError> {
    let Some(list) = props.get_list(PROCESS_ROLES) else {
        return Ok(ProcessRoles {
            broker: true,
            controller: false,
        });
    };
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in &list {
        match role.to_ascii_lowercase().as_str() {
            "broker" if !roles.broker => roles.broker = true,
            "controller" if !roles.controller => roles.controller = true,
            _ => {
                return Err(ConfigError::invalid(
                    PROCESS_ROLES,
                    format!("unknown or duplicate process role {role:?} (expected broker and/or controller)"),
                ))
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(ConfigError::invalid(
            PROCESS_ROLES,
            "must contain broker and/or controller",
        ));
    }
    Ok(roles)
}

/// Kafka's default map, or the configured one; when the map was not configured, controller
/// listeners missing from it default to PLAINTEXT (or to the protocol they are named after), as
/// Kafka's `effectiveListenerSecurityProtocolMap` does in KRaft mode.
fn effective_protocol_map(
    props: &Properties,
    controller_names: &[ListenerName],
) -> Result<BTreeMap<ListenerName, SecurityProtocol>, ConfigError> {
    let mut map = BTreeMap::new();
    match props.get_trimmed(PROTOCOL_MAP) {
        Some(text) => {
            for entry in split_list(text) {
                let (name, protocol) = entry.split_once(':').ok_or_else(|| {
                    ConfigError::invalid(
                        PROTOCOL_MAP,
                        format!(
                            "entry {entry:?} is not of the form LISTENER_NAME:SECURITY_PROTOCOL"
                        ),
                    )
                })?;
                let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
                    ConfigError::invalid(
                        PROTOCOL_MAP,
                        format!(
                            "unknown security protocol {:?} in entry {entry:?}",
                            protocol.trim()
                        ),
                    )
                })?;
                if map.insert(ListenerName::new(name), protocol).is_some() {
                    return Err(ConfigError::invalid(
                        PROTOCOL_MAP,
                        format!("listener {} is mapped twice", name.trim()),
                    ));
                }
            }
        }
        None => {
            for p in SecurityProtocol::ALL {
                map.insert(ListenerName::new(p.name()), p);
            }
            for name in controller_names {
                map.entry(name.clone())
                    .or_insert(SecurityProtocol::Plaintext);
            }
        }
    }
    Ok(map)
}

fn inter_broker_name(props: &Properties) -> Result<ListenerName, ConfigError> {
    match (props.get_trimmed(INTER_BROKER_NAME), props.get_trimmed(INTER_BROKER_PROTOCOL)) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            INTER_BROKER_NAME,
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.",
        )),
        (Some(name), None) => Ok(ListenerName::new(name)),
        (None, Some(protocol)) => SecurityProtocol::parse(protocol)
            .map(|p| ListenerName::new(p.name()))
            .ok_or_else(|| ConfigError::invalid(INTER_BROKER_PROTOCOL, format!("unknown security protocol {protocol:?}"))),
        (None, None) => Ok(ListenerName::new(SecurityProtocol::Plaintext.name())),
    }
}

/// Parses `NAME://host:port,...` and checks Kafka's uniqueness rules.
fn parse_endpoints(
    key: &str,
    text: &str,
    protocol_map: &BTreeMap<ListenerName, SecurityProtocol>,
    require_distinct_ports: bool,
) -> Result<Vec<Listener>, ConfigError> {
    let mut out: Vec<Listener> = Vec::new();
    for item in split_list(text) {
        let listener = parse_endpoint(key, &item, protocol_map)?;
        if out.iter().any(|l| l.name == listener.name) {
            return Err(ConfigError::invalid(
                key,
                format!("Each listener must have a different name, listeners: {text}"),
            ));
        }
        out.push(listener);
    }
    if require_distinct_ports {
        check_ports(key, text, &out)?;
    }
    Ok(out)
}

fn parse_endpoint(
    key: &str,
    item: &str,
    protocol_map: &BTreeMap<ListenerName, SecurityProtocol>,
) -> Result<Listener, ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid(
            key,
            format!("unable to parse {item:?} to a broker endpoint: {why}"),
        )
    };
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| bad("expected NAME://host:port"))?;
    if name.is_empty() {
        return Err(bad("empty listener name"));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed '['"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected :port after ']'"))?;
        (host, port)
    } else {
        rest.rsplit_once(':')
            .ok_or_else(|| bad("expected host:port"))?
    };
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c))
    {
        return Err(bad("invalid character in host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("port must be a number from 0 to 65535"))?;
    let name = ListenerName::new(name);
    let protocol = *protocol_map.get(&name).ok_or_else(|| {
        ConfigError::invalid(
            key,
            format!("No security protocol defined for listener {name} (see {PROTOCOL_MAP})"),
        )
    })?;
    Ok(Listener {
        name,
        protocol,
        host: (!host.is_empty()).then(|| host.to_string()),
        port,
    })
}

/// Kafka's rule: non-zero ports are distinct, except that exactly two listeners may share one
/// when one binds an IPv4 address and the other an IPv6 address.
fn check_ports(key: &str, text: &str, listeners: &[Listener]) -> Result<(), ConfigError> {
    let mut by_port: BTreeMap<u16, Vec<&Listener>> = BTreeMap::new();
    for l in listeners.iter().filter(|l| l.port != 0) {
        by_port.entry(l.port).or_default().push(l);
    }
    for (port, group) in by_port.into_iter().filter(|(_, g)| g.len() > 1) {
        let ips: Vec<IpAddr> = group
            .iter()
            .filter_map(|l| l.host.as_deref().and_then(|h| h.parse().ok()))
            .collect();
        let others = group.len() - ips.len();
        if others > 1 {
            return Err(ConfigError::invalid(
                key,
                format!("Each listener must have a different port, listeners: {text}"),
            ));
        }
        let ok = others == 0
            && ips.len() == 2
            && ips.iter().any(IpAddr::is_ipv4)
            && ips.iter().any(IpAddr::is_ipv6);
        if !ok {
            return Err(ConfigError::invalid(key, format!(
                "Each listener must have a different port unless exactly one listener has an IPv4 address and the other IPv6 address, listeners: {text}, port: {port}")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
