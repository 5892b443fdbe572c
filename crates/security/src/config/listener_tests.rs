//! Tests of `ListenerConfig`: Kafka's defaults, custom names, and its validation messages.

use super::*;

/// (config pairs, the key the error must name, a fragment of its message)
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

fn props(pairs: &[(&str, &str)]) -> Properties {
    pairs.iter().copied().collect()
}

#[test]
fn default_map_and_defaults() {
    let c = ListenerConfig::from_props(&Properties::new()).unwrap();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://:9092");
    assert_eq!(c.listeners[0].bind_address(), "0.0.0.0:9092");
    assert_eq!(
        c.inter_broker_listener_name,
        Some(ListenerName::new("PLAINTEXT"))
    );
    assert_eq!(c.protocol_map.len(), 4);
}

#[test]
fn custom_names_through_the_protocol_map() {
    let p = props(&[
        ("listeners", "INTERNAL://127.0.0.1:9092, external://[::1]:9093,CONTROLLER://127.0.0.1:9094,SASL_PLAINTEXT://:9095"),
        ("listener.security.protocol.map", "INTERNAL:SSL,EXTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:sasl_plaintext"),
        ("inter.broker.listener.name", "internal"),
        ("controller.listener.names", "CONTROLLER"),
        ("process.roles", "broker,controller"),
    ]);
    let c = ListenerConfig::from_props(&p).unwrap();
    let names: Vec<_> = c
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.protocol))
        .collect();
    assert_eq!(
        names,
        [
            ("INTERNAL", SecurityProtocol::Ssl),
            ("EXTERNAL", SecurityProtocol::SaslSsl),
            ("CONTROLLER", SecurityProtocol::Plaintext),
            ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext)
        ]
    );
    assert_eq!(c.listeners[1].host.as_deref(), Some("::1"));
    assert_eq!(c.listeners[1].bind_address(), "[::1]:9093");
    // Controller listeners are not advertised to clients.
    assert_eq!(c.advertised_listeners.len(), 3);
    assert!(c.is_controller_listener(&ListenerName::new("controller")));
    assert_eq!(c.inter_broker_protocol(), Some(SecurityProtocol::Ssl));
    assert_eq!(
        ListenerName::new("External").mechanism_config_prefix("SCRAM-SHA-256"),
        "listener.name.external.scram-sha-256."
    );
}

#[test]
fn controller_listener_defaults_to_plaintext_without_a_map() {
    let p = props(&[
        ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
        ("controller.listener.names", "CONTROLLER"),
        ("process.roles", "broker,controller"),
    ]);
    let c = ListenerConfig::from_props(&p).unwrap();
    assert_eq!(c.listeners[1].protocol, SecurityProtocol::Plaintext);
}

#[test]
fn validation_errors_name_the_key() {
    let cases: &[Case] = &[
        (
            &[("listeners", "FOO://:1")],
            "listeners",
            "No security protocol defined for listener FOO",
        ),
        (
            &[("listeners", "PLAINTEXT://:1,PLAINTEXT://:2")],
            "listeners",
            "different name",
        ),
        (
            &[("listeners", "PLAINTEXT://:1,SSL://:1")],
            "listeners",
            "different port",
        ),
        (&[("listeners", "PLAINTEXT://:99999")], "listeners", "port"),
        (&[("listeners", "PLAINTEXT//:1")], "listeners", "NAME://"),
        (
            &[("listener.security.protocol.map", "A:TLS")],
            "listener.security.protocol.map",
            "TLS",
        ),
        (
            &[("listeners", "SSL://:1")],
            "inter.broker.listener.name",
            "advertised.listeners",
        ),
        (
            &[
                ("inter.broker.listener.name", "PLAINTEXT"),
                ("security.inter.broker.protocol", "SSL"),
            ],
            "inter.broker.listener.name",
            "Only one of",
        ),
        (
            &[("advertised.listeners", "SSL://h:1")],
            "advertised.listeners",
            "subset",
        ),
        (
            &[("listeners", "PLAINTEXT://0.0.0.0:1")],
            "advertised.listeners",
            "0.0.0.0",
        ),
        (
            &[("process.roles", "broker")],
            "controller.listener.names",
            "at least one",
        ),
        (
            &[
                ("process.roles", "controller"),
                ("controller.listener.names", "CONTROLLER"),
            ],
            "controller.listener.names",
            "KRaft controller role",
        ),
        (&[("process.roles", "brokr")], "process.roles", "brokr"),
    ];
    for (pairs, key, needle) in cases {
        let err = ListenerConfig::from_props(&props(pairs)).unwrap_err();
        assert_eq!(err.key(), *key, "{pairs:?}: {err}");
        assert!(err.to_string().contains(needle), "{pairs:?}: {err}");
    }
}

#[test]
fn same_port_allowed_for_one_ipv4_and_one_ipv6_listener() {
    let p = props(&[("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092")]);
    assert!(ListenerConfig::from_props(&p).is_ok());
    let p = props(&[(
        "listeners",
        "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.2:9092",
    )]);
    assert!(ListenerConfig::from_props(&p).is_err());
    let p = props(&[("listeners", "PLAINTEXT://:0,SSL://:0")]);
    assert!(ListenerConfig::from_props(&p).is_ok());
}
