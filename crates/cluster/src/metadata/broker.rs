//! A broker's registration, one struct for what a broker asks the controller for
//! ([`BrokerRegistration`]) and what the image holds about it ([`BrokerImage`]: the registration
//! plus `fenced`, which only the controller decides).
//!
//! Listeners: like Kafka's `RegisterBrokerRecord`, a registration carries one [`BrokerEndpoint`]
//! per advertised listener (name, host, port, security protocol), so a broker answers each client
//! with the endpoints of the listener the client came in on, and brokers reach each other on
//! `inter.broker.listener.name` ([`BrokerRegistration::endpoint`]). `host`/`port` stay as the
//! default endpoint: a registration written before listeners were recorded has none, and then
//! its one address serves every listener name (it had one listener).
//!
//! On-disk compatibility: snapshots written before the two were one struct hold a broker as
//! `{"id":…,"incarnation":…,…,"fenced":…}`. `BrokerImage` flattens the registration into the same
//! object and `broker_id` also reads `id`, so those snapshots still load; new snapshots write
//! `broker_id`. `endpoints` defaults to none when absent and is not written when empty, so the
//! `RegisterBroker` record of a broker without listeners keeps its old JSON.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::endpoint::BrokerEndpoint;
use super::record::MetadataRecord;
use super::validate::{
    valid_host, valid_host_port, valid_port, InvalidRecord, RegistrationProblem,
    MAX_LISTENERS_PER_BROKER, MAX_LISTENER_NAME_LEN, MAX_RACK_LEN,
};

/// What is wrong with one endpoint, if anything.
fn endpoint_problem(e: &BrokerEndpoint) -> Option<RegistrationProblem> {
    if e.name.is_empty()
        || e.name.len() > MAX_LISTENER_NAME_LEN
        || !e.name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Some(RegistrationProblem::ListenerName);
    }
    if !valid_host(&e.host) {
        return Some(RegistrationProblem::ListenerHost);
    }
    if !valid_port(e.port) {
        return Some(RegistrationProblem::ListenerPort);
    }
    if e.protocol().is_none() {
        return Some(RegistrationProblem::SecurityProtocol);
    }
    None
}

/// A broker's registration (the fields of `MetadataRecord::RegisterBroker`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Broker id (`node.id`).
    #[serde(alias = "id")]
    pub broker_id: i32,
    /// A new value each process start.
    pub incarnation: Uuid,
    /// Host advertised to clients.
    pub host: String,
    /// Port advertised to clients.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// The node's controller listener `host:port`, or empty.
    pub controller_addr: String,
    /// True when the node votes in the quorum.
    pub voter: bool,
    /// One endpoint per advertised listener; none in registrations written before listeners
    /// were recorded (then `host`/`port` serve every listener name: see [`Self::endpoint`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<BrokerEndpoint>,
}

impl BrokerRegistration {
    /// Where clients of listener `listener_name` reach this broker: the endpoint of that name
    /// (compared case-insensitively), or `None` when the broker has no such listener (Kafka
    /// leaves such a broker out of the answer). A registration without endpoints (written before
    /// they were recorded) had one listener, so its `host`/`port` answer every name.
    pub fn endpoint(&self, listener_name: &str) -> Option<(&str, i32)> {
        if self.endpoints.is_empty() {
            return Some((self.host.as_str(), self.port));
        }
        self.endpoints
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(listener_name))
            .map(|e| (e.host.as_str(), e.port))
    }

    /// Checks the registration on its own: id ≥ 0, a real incarnation, a sane host, a port in
    /// 1..=65535, a short printable rack, a controller address that is empty or `host:port`, and
    /// at most `MAX_LISTENERS_PER_BROKER` endpoints with distinct printable names (≤ 255
    /// bytes), sane hosts and ports and a known security protocol.
    /// Whether the id may register now (voters, a live incarnation) is the controller's call.
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        let bad = |problem| {
            Err(InvalidRecord::Registration {
                broker_id: self.broker_id,
                problem,
            })
        };
        if self.broker_id < 0 {
            return bad(RegistrationProblem::NegativeId);
        }
        if self.incarnation.is_nil() {
            return bad(RegistrationProblem::NilIncarnation);
        }
        if !valid_host(&self.host) {
            return bad(RegistrationProblem::Host);
        }
        if !valid_port(self.port) {
            return bad(RegistrationProblem::Port);
        }
        if self
            .rack
            .as_ref()
            .is_some_and(|r| r.len() > MAX_RACK_LEN || r.chars().any(char::is_control))
        {
            return bad(RegistrationProblem::Rack);
        }
        if !self.controller_addr.is_empty() && !valid_host_port(&self.controller_addr) {
            return bad(RegistrationProblem::ControllerAddr);
        }
        if self.endpoints.len() > MAX_LISTENERS_PER_BROKER {
            return bad(RegistrationProblem::TooManyListeners);
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if let Some(problem) = endpoint_problem(e) {
                return bad(problem);
            }
            // Few endpoints (bounded above): a quadratic scan is cheaper than a set.
            if self.endpoints[..i]
                .iter()
                .any(|o| o.name.eq_ignore_ascii_case(&e.name))
            {
                return bad(RegistrationProblem::DuplicateListener);
            }
        }
        Ok(())
    }

    /// The record that registers it.
    pub fn to_record(&self) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            broker_id: self.broker_id,
            incarnation: self.incarnation,
            host: self.host.clone(),
            port: self.port,
            rack: self.rack.clone(),
            controller_addr: self.controller_addr.clone(),
            voter: self.voter,
            endpoints: self.endpoints.clone(),
        }
    }
}

impl MetadataRecord {
    /// The registration a `RegisterBroker` record carries.
    pub fn registration(&self) -> Option<BrokerRegistration> {
        match self {
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation,
                host,
                port,
                rack,
                controller_addr,
                voter,
                endpoints,
            } => Some(BrokerRegistration {
                broker_id: *broker_id,
                incarnation: *incarnation,
                host: host.clone(),
                port: *port,
                rack: rack.clone(),
                controller_addr: controller_addr.clone(),
                voter: *voter,
                endpoints: endpoints.clone(),
            }),
            _ => None,
        }
    }
}

/// One registered broker as the image holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerImage {
    /// What the broker registered with (its last registration).
    #[serde(flatten)]
    pub registration: BrokerRegistration,
    /// Fenced: heartbeats lapsed, controlled shutdown, or not unfenced since registering.
    pub fenced: bool,
}

impl BrokerImage {
    /// The broker id.
    pub fn id(&self) -> i32 {
        self.registration.broker_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataImage;
    use strom_security::SecurityProtocol;

    fn reg() -> BrokerRegistration {
        BrokerRegistration {
            broker_id: 3,
            incarnation: Uuid::new_v4(),
            host: "broker-3.example".into(),
            port: 9092,
            rack: Some("r1".into()),
            controller_addr: "10.0.0.3:9093".into(),
            voter: false,
            endpoints: Vec::new(),
        }
    }

    /// A broker with three listeners (the first one also its default address).
    fn with_listeners() -> BrokerRegistration {
        BrokerRegistration {
            endpoints: vec![
                BrokerEndpoint::new(
                    "EXTERNAL",
                    "broker-3.example",
                    9092,
                    SecurityProtocol::SaslSsl,
                ),
                BrokerEndpoint::new("INTERNAL", "10.0.0.3", 9094, SecurityProtocol::Ssl),
                BrokerEndpoint::new("REPLICATION", "10.1.0.3", 9095, SecurityProtocol::Plaintext),
            ],
            ..reg()
        }
    }

    /// A broker as snapshots stored it before `BrokerImage` and `BrokerRegistration` were one.
    const OLD_BROKER: &str = r#"{"id":2,"incarnation":"6f1c1b7e-8d3a-4f55-9a59-2f0d7e1c0b11",
        "host":"127.0.0.1","port":9002,"rack":null,"controller_addr":"127.0.0.1:9102",
        "voter":true,"fenced":false}"#;

    #[test]
    fn old_broker_json_loads_and_new_json_round_trips() {
        let old: BrokerImage = serde_json::from_str(OLD_BROKER).expect("old form");
        assert_eq!(old.id(), 2);
        assert_eq!(old.registration.port, 9002);
        assert_eq!(old.registration.controller_addr, "127.0.0.1:9102");
        assert!(old.registration.voter && !old.fenced);
        let new = BrokerImage {
            registration: reg(),
            fenced: true,
        };
        let json = serde_json::to_string(&new).expect("encode");
        assert!(json.contains("\"broker_id\":3") && json.contains("\"fenced\":true"));
        assert_eq!(
            serde_json::from_str::<BrokerImage>(&json).expect("decode"),
            new
        );
    }

    #[test]
    fn old_snapshot_image_loads() {
        // A whole image as the previous version serialized it (the snapshot payload's `image`).
        let old = format!(
            r#"{{"topics":{{"a":{{"name":"a","id":"0b6c7d2e-1f3a-4b5c-8d9e-0f1a2b3c4d5e",
            "partitions":{{"0":{{"replicas":[2],"isr":[2],"leader":2,"leader_epoch":0,
            "partition_epoch":0}}}},"configs":{{}}}}}},
            "names_by_id":{{"0b6c7d2e-1f3a-4b5c-8d9e-0f1a2b3c4d5e":"a"}},
            "brokers":{{"2":{OLD_BROKER}}},"broker_configs":{{}},"offset":12,
            "next_producer_id":0}}"#
        );
        let img: MetadataImage = serde_json::from_str(&old).expect("old image");
        assert_eq!(img.offset, 12);
        assert_eq!(img.brokers[&2].registration.host, "127.0.0.1");
        assert_eq!(
            img.live_brokers().map(BrokerImage::id).collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(img.topic("a").map(|t| t.partitions.len()), Some(1));
    }

    #[test]
    fn register_record_json_is_unchanged() {
        let r = reg();
        let json = serde_json::to_value(r.to_record()).expect("encode");
        let keys: Vec<&str> = json
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "broker_id",
                "controller_addr",
                "host",
                "incarnation",
                "port",
                "rack",
                "type",
                "voter"
            ]
        );
        assert_eq!(r.to_record().registration(), Some(r));
    }

    #[test]
    fn registrations_are_checked() {
        assert_eq!(reg().validate(), Ok(()));
        let problem = |f: fn(&mut BrokerRegistration)| {
            let mut r = reg();
            f(&mut r);
            match r.validate() {
                Err(InvalidRecord::Registration { problem, .. }) => Some(problem),
                _ => None,
            }
        };
        use RegistrationProblem as P;
        assert_eq!(problem(|r| r.broker_id = -1), Some(P::NegativeId));
        assert_eq!(
            problem(|r| r.incarnation = Uuid::nil()),
            Some(P::NilIncarnation)
        );
        assert_eq!(problem(|r| r.host = String::new()), Some(P::Host));
        assert_eq!(problem(|r| r.host = "../../etc".into()), Some(P::Host));
        assert_eq!(problem(|r| r.host = "a b".into()), Some(P::Host));
        assert_eq!(problem(|r| r.host = "h".repeat(300)), Some(P::Host));
        assert_eq!(problem(|r| r.port = 0), Some(P::Port));
        assert_eq!(problem(|r| r.port = 65536), Some(P::Port));
        assert_eq!(problem(|r| r.rack = Some("a\nb".into())), Some(P::Rack));
        assert_eq!(
            problem(|r| r.controller_addr = "nope".into()),
            Some(P::ControllerAddr)
        );
        assert_eq!(
            problem(|r| r.controller_addr = "h:0".into()),
            Some(P::ControllerAddr)
        );
        let mut v6 = reg();
        v6.host = "::1".into();
        v6.controller_addr = "[::1]:9093".into();
        assert_eq!(v6.validate(), Ok(()));
    }

    #[test]
    fn endpoints_are_looked_up_by_listener_name() {
        let r = with_listeners();
        assert_eq!(r.endpoint("EXTERNAL"), Some(("broker-3.example", 9092)));
        assert_eq!(r.endpoint("internal"), Some(("10.0.0.3", 9094)));
        assert_eq!(r.endpoint("Replication"), Some(("10.1.0.3", 9095)));
        assert_eq!(r.endpoint("CONTROLLER"), None);
        assert_eq!(r.endpoints[0].protocol(), Some(SecurityProtocol::SaslSsl));
        assert_eq!(r.endpoints[1].security_protocol, 1);
        // Without endpoints (an old registration) the one address answers every listener.
        assert_eq!(reg().endpoint("ANY"), Some(("broker-3.example", 9092)));
    }

    #[test]
    fn endpoints_round_trip_through_the_record_and_the_image() {
        let r = with_listeners();
        assert_eq!(r.validate(), Ok(()));
        let json = serde_json::to_string(&r.to_record()).expect("encode");
        assert!(json
            .contains(r#""name":"INTERNAL","host":"10.0.0.3","port":9094,"security_protocol":1"#));
        let record: MetadataRecord = serde_json::from_str(&json).expect("decode");
        assert_eq!(record.registration(), Some(r.clone()));
        let mut img = MetadataImage::default();
        img.apply_records(&[record]).expect("valid");
        let snapshot = serde_json::to_string(&img).expect("snapshot");
        let back: MetadataImage = serde_json::from_str(&snapshot).expect("restore");
        assert_eq!(back.brokers[&3].registration, r);
        assert_eq!(
            back.brokers[&3].registration.endpoint("internal"),
            Some(("10.0.0.3", 9094))
        );
    }

    #[test]
    fn old_register_record_json_loads_without_endpoints() {
        let old = r#"{"type":"RegisterBroker","broker_id":2,
            "incarnation":"6f1c1b7e-8d3a-4f55-9a59-2f0d7e1c0b11","host":"h","port":9002,
            "rack":null,"controller_addr":"","voter":false}"#;
        let record: MetadataRecord = serde_json::from_str(old).expect("old record");
        let reg = record.registration().expect("registration");
        assert!(reg.endpoints.is_empty());
        assert_eq!(reg.endpoint("PLAINTEXT"), Some(("h", 9002)));
    }

    #[test]
    fn endpoints_are_checked() {
        let problem = |f: &dyn Fn(&mut BrokerRegistration)| {
            let mut r = with_listeners();
            f(&mut r);
            match r.validate() {
                Err(InvalidRecord::Registration { problem, .. }) => Some(problem),
                _ => None,
            }
        };
        use RegistrationProblem as P;
        let name = |n: &str| {
            let n = n.to_string();
            move |r: &mut BrokerRegistration| r.endpoints[1].name = n.clone()
        };
        assert_eq!(problem(&name("")), Some(P::ListenerName));
        assert_eq!(problem(&name("A B")), Some(P::ListenerName));
        assert_eq!(problem(&name("A\nB")), Some(P::ListenerName));
        assert_eq!(problem(&name("É")), Some(P::ListenerName));
        assert_eq!(problem(&name(&"L".repeat(256))), Some(P::ListenerName));
        assert_eq!(problem(&name("external")), Some(P::DuplicateListener));
        assert_eq!(
            problem(&|r| r.endpoints[2].host = "a/b".into()),
            Some(P::ListenerHost)
        );
        assert_eq!(problem(&|r| r.endpoints[2].port = 0), Some(P::ListenerPort));
        assert_eq!(
            problem(&|r| r.endpoints[0].security_protocol = 4),
            Some(P::SecurityProtocol)
        );
        let many = |r: &mut BrokerRegistration| {
            r.endpoints = (0..=MAX_LISTENERS_PER_BROKER)
                .map(|i| BrokerEndpoint::new(format!("L{i}"), "h", 1, SecurityProtocol::Ssl))
                .collect()
        };
        assert_eq!(problem(&many), Some(P::TooManyListeners));
        let mut ok = with_listeners();
        ok.endpoints[1].name = "L".repeat(MAX_LISTENER_NAME_LEN);
        assert_eq!(ok.validate(), Ok(()));
    }
}
