//! `StandardAuthorizer::authorize` decisions, one test per Kafka rule, plus DescribeAcls through
//! the snapshot and the config parser.

mod common;

use common::*;
use strom_authorizer::{
    AclBindingFilter, AclId, AclOperation, AclOperation as Op, AuthorizerConfig, PatternType,
    ResourceType, StandardAuthorizer,
};

#[test]
fn allow_matches_principal_operation_and_resource() {
    let a = authorizer(vec![topic(
        "orders",
        LITERAL,
        "User:alice",
        Op::Read,
        ALLOW,
    )]);
    assert!(can(&a, "User:alice", Op::Read, "orders"));
    assert!(!can(&a, "User:bob", Op::Read, "orders"));
    assert!(!can(&a, "User:alice", Op::Write, "orders"));
    assert!(!can(&a, "User:alice", Op::Read, "orders2"));
    assert!(!can(&a, "User:alice", Op::Read, "order"));
    // The same name on another resource type is another resource.
    assert!(!a.authorize(
        "User:alice",
        ip("10.0.0.1"),
        Op::Read,
        ResourceType::Group,
        "orders"
    ));
}

#[test]
fn deny_wins_over_allow() {
    let a = authorizer(vec![
        topic("orders", LITERAL, "User:alice", Op::Read, ALLOW),
        topic("orders", LITERAL, "User:alice", Op::Read, DENY),
        topic("*", LITERAL, "User:bob", Op::All, ALLOW),
        topic("secret", PREFIXED, "User:*", Op::Read, DENY),
    ]);
    assert!(!can(&a, "User:alice", Op::Read, "orders"));
    // A DENY on a prefix beats an ALLOW on the wildcard, for every principal.
    assert!(can(&a, "User:bob", Op::Read, "public"));
    assert!(!can(&a, "User:bob", Op::Read, "secret-plans"));
    // …for the denied operation only.
    assert!(can(&a, "User:bob", Op::Write, "secret-plans"));
}

#[test]
fn read_write_delete_alter_imply_describe_for_allow_only() {
    for op in [Op::Read, Op::Write, Op::Delete, Op::Alter, Op::Describe] {
        let a = authorizer(vec![topic("t", LITERAL, "User:alice", op, ALLOW)]);
        assert!(can(&a, "User:alice", Op::Describe, "t"), "{op}");
    }
    for op in [
        Op::Create,
        Op::AlterConfigs,
        Op::DescribeConfigs,
        Op::ClusterAction,
        Op::IdempotentWrite,
    ] {
        let a = authorizer(vec![topic("t", LITERAL, "User:alice", op, ALLOW)]);
        assert!(!can(&a, "User:alice", Op::Describe, "t"), "{op}");
    }
    // DESCRIBE does not imply what implies it.
    let a = authorizer(vec![topic("t", LITERAL, "User:alice", Op::Describe, ALLOW)]);
    assert!(!can(&a, "User:alice", Op::Read, "t"));
    // A DENY of READ does not deny DESCRIBE.
    let a = authorizer(vec![
        topic("t", LITERAL, "User:alice", Op::Describe, ALLOW),
        topic("t", LITERAL, "User:alice", Op::Read, DENY),
    ]);
    assert!(can(&a, "User:alice", Op::Describe, "t"));
    assert!(!can(&a, "User:alice", Op::Read, "t"));
}

#[test]
fn alter_configs_implies_describe_configs_for_allow_only() {
    let a = authorizer(vec![topic(
        "t",
        LITERAL,
        "User:alice",
        Op::AlterConfigs,
        ALLOW,
    )]);
    assert!(can(&a, "User:alice", Op::DescribeConfigs, "t"));
    assert!(!can(&a, "User:alice", Op::Describe, "t"));
    let a = authorizer(vec![topic(
        "t",
        LITERAL,
        "User:alice",
        Op::DescribeConfigs,
        ALLOW,
    )]);
    assert!(!can(&a, "User:alice", Op::AlterConfigs, "t"));
    let a = authorizer(vec![
        topic("t", LITERAL, "User:alice", Op::DescribeConfigs, ALLOW),
        topic("t", LITERAL, "User:alice", Op::AlterConfigs, DENY),
    ]);
    assert!(can(&a, "User:alice", Op::DescribeConfigs, "t"));
    for op in [Op::Read, Op::Write, Op::Alter] {
        let a = authorizer(vec![topic("t", LITERAL, "User:alice", op, ALLOW)]);
        assert!(!can(&a, "User:alice", Op::DescribeConfigs, "t"), "{op}");
    }
}

#[test]
fn all_allows_and_denies_every_operation() {
    let a = authorizer(vec![topic("t", LITERAL, "User:alice", Op::All, ALLOW)]);
    for op in AclOperation::VARIANTS
        .iter()
        .copied()
        .filter(|o| *o != Op::Any)
    {
        assert!(can(&a, "User:alice", op, "t"), "{op}");
    }
    let a = authorizer(vec![
        topic("t", LITERAL, "User:alice", Op::Read, ALLOW),
        topic("t", PREFIXED, "User:alice", Op::All, DENY),
    ]);
    assert!(!can(&a, "User:alice", Op::Read, "t"));
    assert!(!can(&a, "User:alice", Op::Describe, "t"));
    // Only an ALL ACL grants a request for ALL itself.
    let a = authorizer(vec![topic("t", LITERAL, "User:alice", Op::Read, ALLOW)]);
    assert!(!can(&a, "User:alice", Op::All, "t"));
}

#[test]
fn wildcard_principal_applies_to_everyone() {
    let a = authorizer(vec![
        topic("t", LITERAL, "User:*", Op::Read, ALLOW),
        topic("t", LITERAL, "User:mallory", Op::Read, DENY),
        topic("g", LITERAL, "Group:*", Op::Read, ALLOW),
    ]);
    assert!(can(&a, "User:alice", Op::Read, "t"));
    assert!(can(&a, "Group:ops", Op::Read, "t"));
    assert!(!can(&a, "User:mallory", Op::Read, "t"));
    // Only User:* is a wildcard.
    assert!(!can(&a, "Group:ops", Op::Read, "g"));
    let denied_to_all = authorizer(vec![
        topic("t", LITERAL, "User:alice", Op::Read, ALLOW),
        topic("t", LITERAL, "User:*", Op::Read, DENY),
    ]);
    assert!(!can(&denied_to_all, "User:alice", Op::Read, "t"));
}

#[test]
fn wildcard_resource_applies_to_every_name_of_its_type() {
    let a = authorizer(vec![
        topic("*", LITERAL, "User:alice", Op::Read, ALLOW),
        topic("*", PREFIXED, "User:bob", Op::Read, ALLOW),
    ]);
    assert!(can(&a, "User:alice", Op::Read, "anything"));
    assert!(can(&a, "User:alice", Op::Read, "*"));
    assert!(!a.authorize(
        "User:alice",
        ip("10.0.0.1"),
        Op::Read,
        ResourceType::Group,
        "anything"
    ));
    // A PREFIXED "*" is a prefix like any other, not a wildcard.
    assert!(!can(&a, "User:bob", Op::Read, "anything"));
    assert!(can(&a, "User:bob", Op::Read, "*anything"));
}

#[test]
fn prefixed_patterns_cover_names_they_start() {
    let a = authorizer(vec![
        topic("fin", PREFIXED, "User:alice", Op::Read, ALLOW),
        topic("finance-", PREFIXED, "User:alice", Op::Write, ALLOW),
        topic("finance-secret", PREFIXED, "User:alice", Op::Read, DENY),
    ]);
    assert!(can(&a, "User:alice", Op::Read, "fin"));
    assert!(can(&a, "User:alice", Op::Read, "finance-eu"));
    assert!(can(&a, "User:alice", Op::Write, "finance-eu"));
    assert!(!can(&a, "User:alice", Op::Write, "finance"));
    assert!(!can(&a, "User:alice", Op::Read, "fi"));
    assert!(!can(&a, "User:alice", Op::Read, "afin"));
    assert!(!can(&a, "User:alice", Op::Read, "finance-secret-1"));
    assert!(can(&a, "User:alice", Op::Write, "finance-secret-1"));
    // A literal name that is a prefix of the resource does not cover it.
    let a = authorizer(vec![topic("fin", LITERAL, "User:alice", Op::Read, ALLOW)]);
    assert!(!can(&a, "User:alice", Op::Read, "finance"));
}

#[test]
fn host_must_be_the_client_ip_or_any() {
    let a = authorizer(vec![
        acl(
            TOPIC,
            "t",
            LITERAL,
            "User:alice",
            "10.0.0.1",
            Op::Read,
            ALLOW,
        ),
        acl(TOPIC, "t", LITERAL, "User:alice", "::1", Op::Write, ALLOW),
        acl(
            TOPIC,
            "t",
            LITERAL,
            "User:alice",
            "10.0.0.9",
            Op::Read,
            DENY,
        ),
        acl(TOPIC, "u", LITERAL, "User:alice", "*", Op::Read, ALLOW),
        acl(
            TOPIC,
            "u",
            LITERAL,
            "User:alice",
            "10.0.0.2",
            Op::Read,
            DENY,
        ),
    ]);
    let read = |host: &str, name: &str| a.authorize("User:alice", ip(host), Op::Read, TOPIC, name);
    assert!(read("10.0.0.1", "t"));
    assert!(!read("10.0.0.2", "t"));
    assert!(!read("10.0.0.9", "t"));
    assert!(read("10.0.0.7", "u"));
    assert!(!read("10.0.0.2", "u"));
    // IPv6 hosts compare as addresses, and IPv4-mapped clients as IPv4.
    assert!(a.authorize("User:alice", ip("0:0:0:0:0:0:0:1"), Op::Write, TOPIC, "t"));
    assert!(a.authorize("User:alice", ip("::ffff:10.0.0.1"), Op::Read, TOPIC, "t"));
    assert!(!a.authorize("User:alice", ip("::2"), Op::Write, TOPIC, "t"));
}

#[test]
fn super_users_are_always_allowed() {
    let config = AuthorizerConfig {
        super_users: AuthorizerConfig::parse_super_users("User:admin; User:ops"),
        allow_everyone_if_no_acl_found: false,
    };
    let a = with(config, vec![topic("*", LITERAL, "User:*", Op::All, DENY)]);
    assert!(can(&a, "User:admin", Op::Write, "t"));
    assert!(can(&a, "User:ops", Op::ClusterAction, "t"));
    assert!(a.authorize(
        "User:admin",
        ip("10.0.0.1"),
        Op::Alter,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
    assert!(!can(&a, "User:alice", Op::Read, "t"));
    assert!(!can(&a, "User:Admin", Op::Read, "t"));
}

#[test]
fn no_acl_found_uses_the_config_both_ways() {
    let acls = || {
        vec![
            topic("orders", LITERAL, "User:alice", Op::Read, ALLOW),
            topic("pay", PREFIXED, "User:bob", Op::Write, ALLOW),
        ]
    };
    let open = with(
        AuthorizerConfig {
            allow_everyone_if_no_acl_found: true,
            ..Default::default()
        },
        acls(),
    );
    let closed = with(AuthorizerConfig::default(), acls());
    // No ACL covers "logs": the config decides.
    assert!(can(&open, "User:carol", Op::Write, "logs"));
    assert!(!can(&closed, "User:carol", Op::Write, "logs"));
    // ACLs cover "orders" and "payments" (for other principals and operations): deny.
    assert!(!can(&open, "User:carol", Op::Write, "orders"));
    assert!(!can(&open, "User:alice", Op::Write, "orders"));
    assert!(!can(&open, "User:carol", Op::Read, "payments"));
    assert!(can(&open, "User:alice", Op::Read, "orders"));
    // An ACL for another host still counts as an ACL on the resource.
    let other_host = with(
        AuthorizerConfig {
            allow_everyone_if_no_acl_found: true,
            ..Default::default()
        },
        vec![acl(
            TOPIC,
            "t",
            LITERAL,
            "User:alice",
            "10.9.9.9",
            Op::Read,
            ALLOW,
        )],
    );
    assert!(!can(&other_host, "User:alice", Op::Read, "t"));
    // An empty snapshot: everything or nothing.
    assert!(can(
        &with(
            AuthorizerConfig {
                allow_everyone_if_no_acl_found: true,
                ..Default::default()
            },
            vec![]
        ),
        "User:x",
        Op::Read,
        "t"
    ));
    assert!(!can(&authorizer(vec![]), "User:x", Op::Read, "t"));
}

#[test]
fn acls_lists_by_filter_in_binding_order() {
    let bindings = vec![
        topic("orders", LITERAL, "User:alice", Op::Read, ALLOW),
        topic("ord", PREFIXED, "User:bob", Op::Write, ALLOW),
        topic("*", LITERAL, "User:carol", Op::Read, DENY),
        acl(
            ResourceType::Group,
            "orders",
            LITERAL,
            "User:alice",
            "*",
            Op::Read,
            ALLOW,
        ),
        topic("payments", LITERAL, "User:alice", Op::Read, ALLOW),
    ];
    let a = authorizer(bindings.clone());
    assert_eq!(a.len(), 5);
    assert!(!a.is_empty());
    let all = a.acls(&AclBindingFilter::any());
    assert_eq!(all.len(), 5);
    let mut sorted = bindings.clone();
    sorted.sort();
    assert_eq!(
        all.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
        sorted
    );
    let names = |filter: AclBindingFilter| -> Vec<String> {
        a.acls(&filter)
            .into_iter()
            .map(|(_, b)| format!("{}:{}", b.pattern.resource_type, b.pattern.name))
            .collect()
    };
    let base = AclBindingFilter {
        resource_type: TOPIC,
        ..AclBindingFilter::any()
    };
    assert_eq!(
        names(AclBindingFilter {
            name: Some("orders".into()),
            pattern_type: PatternType::Match,
            ..base.clone()
        }),
        ["TOPIC:*", "TOPIC:ord", "TOPIC:orders"]
    );
    assert_eq!(
        names(AclBindingFilter {
            name: Some("orders".into()),
            ..base.clone()
        }),
        ["TOPIC:orders"]
    );
    assert_eq!(
        names(AclBindingFilter {
            name: Some("orders".into()),
            ..AclBindingFilter::any()
        }),
        ["TOPIC:orders", "GROUP:orders"]
    );
    assert_eq!(
        names(AclBindingFilter {
            principal: Some("User:alice".into()),
            ..base.clone()
        }),
        ["TOPIC:orders", "TOPIC:payments"]
    );
    assert_eq!(
        names(AclBindingFilter {
            resource_type: ResourceType::Cluster,
            ..base
        }),
        Vec::<String>::new()
    );
    // Each id comes back with its binding.
    let ids = a.acls(&bindings[1].to_filter());
    assert_eq!(ids, vec![(AclId::from_u128(2), bindings[1].clone())]);
}

#[test]
fn duplicate_ids_keep_the_last_binding() {
    let first = topic("a", LITERAL, "User:alice", Op::Read, ALLOW);
    let second = topic("b", LITERAL, "User:alice", Op::Read, ALLOW);
    let id = AclId::from_u128(7);
    let a = StandardAuthorizer::new(
        AuthorizerConfig::default(),
        vec![(id, first), (id, second.clone())],
    );
    assert_eq!(a.len(), 1);
    assert_eq!(a.acls(&AclBindingFilter::any()), vec![(id, second)]);
    assert!(!can(&a, "User:alice", Op::Read, "a"));
    assert!(can(&a, "User:alice", Op::Read, "b"));
}

#[test]
fn super_users_config_parses_kafka_syntax() {
    assert_eq!(
        AuthorizerConfig::parse_super_users(""),
        Vec::<String>::new()
    );
    assert_eq!(
        AuthorizerConfig::parse_super_users(" ; ;"),
        Vec::<String>::new()
    );
    assert_eq!(
        AuthorizerConfig::parse_super_users("User:admin; User:bob ;"),
        ["User:admin", "User:bob"]
    );
    assert_eq!(
        AuthorizerConfig::parse_super_users("User:CN=a,O=b"),
        ["User:CN=a,O=b"]
    );
    assert_eq!(
        AuthorizerConfig::try_parse_super_users("User:a;User:b"),
        Ok(vec!["User:a".into(), "User:b".into()])
    );
    assert!(AuthorizerConfig::try_parse_super_users("User:a;admin").is_err());
    let config = AuthorizerConfig {
        super_users: vec!["User:a".into()],
        allow_everyone_if_no_acl_found: true,
    };
    assert_eq!(authorizer_with_config(config.clone()).config(), &config);
}

fn authorizer_with_config(config: AuthorizerConfig) -> StandardAuthorizer {
    with(config, vec![])
}

#[test]
fn snapshot_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<StandardAuthorizer>();
}
