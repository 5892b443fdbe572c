//! A broker's registration, one struct for what a broker asks the controller for
//! ([`BrokerRegistration`]) and what the image holds about it ([`BrokerImage`]: the registration
//! plus `fenced`, which only the controller decides).
//!
//! On-disk compatibility: snapshots written before the two were one struct hold a broker as
//! `{"id":…,"incarnation":…,…,"fenced":…}`. `BrokerImage` flattens the registration into the same
//! object and `broker_id` also reads `id`, so those snapshots still load; new snapshots write
//! `broker_id`. The `RegisterBroker` record keeps its own, unchanged JSON.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::record::MetadataRecord;
use super::validate::{
    valid_host, valid_host_port, valid_port, InvalidRecord, RegistrationProblem, MAX_RACK_LEN,
};

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
}

impl BrokerRegistration {
    /// Checks the registration on its own: id ≥ 0, a real incarnation, a sane host, a port in
    /// 1..=65535, a short printable rack, and a controller address that is empty or `host:port`.
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
            } => Some(BrokerRegistration {
                broker_id: *broker_id,
                incarnation: *incarnation,
                host: host.clone(),
                port: *port,
                rack: rack.clone(),
                controller_addr: controller_addr.clone(),
                voter: *voter,
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

    fn reg() -> BrokerRegistration {
        BrokerRegistration {
            broker_id: 3,
            incarnation: Uuid::new_v4(),
            host: "broker-3.example".into(),
            port: 9092,
            rack: Some("r1".into()),
            controller_addr: "10.0.0.3:9093".into(),
            voter: false,
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
}
