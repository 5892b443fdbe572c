//! `StandardAuthorizer::authorize_by_resource_type`: Kafka's default `authorizeByResourceType`
//! (KIP-679), with its probe, wildcard and deny-dominance rules.

mod common;

use common::*;
use strom_authorizer::{
    AclBinding, AclOperation as Op, AuthorizerConfig, ResourceType, StandardAuthorizer,
};

#[test]
fn by_resource_type_allows_when_some_resource_would_be() {
    let by_type = |a: &StandardAuthorizer, principal: &str| {
        a.authorize_by_resource_type(principal, ip("10.0.0.1"), Op::Write, TOPIC)
    };
    assert!(by_type(
        &authorizer(vec![topic(
            "orders",
            LITERAL,
            "User:alice",
            Op::Write,
            ALLOW
        )]),
        "User:alice"
    ));
    assert!(by_type(
        &authorizer(vec![topic("ord", PREFIXED, "User:*", Op::All, ALLOW)]),
        "User:alice"
    ));
    assert!(by_type(
        &authorizer(vec![topic("*", LITERAL, "User:alice", Op::Write, ALLOW)]),
        "User:alice"
    ));
    // Another principal, operation, type or host: no.
    assert!(!by_type(
        &authorizer(vec![topic("orders", LITERAL, "User:bob", Op::Write, ALLOW)]),
        "User:alice"
    ));
    assert!(!by_type(
        &authorizer(vec![topic(
            "orders",
            LITERAL,
            "User:alice",
            Op::Read,
            ALLOW
        )]),
        "User:alice"
    ));
    let group = acl(
        ResourceType::Group,
        "g",
        LITERAL,
        "User:alice",
        "*",
        Op::Write,
        ALLOW,
    );
    assert!(!by_type(&authorizer(vec![group]), "User:alice"));
    let elsewhere = acl(
        TOPIC,
        "orders",
        LITERAL,
        "User:alice",
        "10.1.1.1",
        Op::Write,
        ALLOW,
    );
    assert!(!by_type(&authorizer(vec![elsewhere]), "User:alice"));
    // No implied operations in the scan: WRITE on a topic does not count for DESCRIBE…
    let a = authorizer(vec![topic(
        "orders",
        LITERAL,
        "User:alice",
        Op::Write,
        ALLOW,
    )]);
    assert!(!a.authorize_by_resource_type("User:alice", ip("10.0.0.1"), Op::Describe, TOPIC));
    // …unless it covers the probe name "hardcode", which goes through `authorize`.
    let a = authorizer(vec![topic(
        "hard",
        PREFIXED,
        "User:alice",
        Op::Write,
        ALLOW,
    )]);
    assert!(a.authorize_by_resource_type("User:alice", ip("10.0.0.1"), Op::Describe, TOPIC));
    // ANY is not an operation or resource type to ask about.
    let a = authorizer(vec![topic("*", LITERAL, "User:alice", Op::All, ALLOW)]);
    assert!(!a.authorize_by_resource_type("User:alice", ip("10.0.0.1"), Op::Any, TOPIC));
    assert!(!a.authorize_by_resource_type(
        "User:alice",
        ip("10.0.0.1"),
        Op::Write,
        ResourceType::Any
    ));
}

#[test]
fn by_resource_type_honours_deny_patterns() {
    let by_type = |acls: Vec<AclBinding>| {
        authorizer(acls).authorize_by_resource_type("User:alice", ip("10.0.0.1"), Op::Write, TOPIC)
    };
    // A literal allow dominated by the same literal deny, or by a prefixed deny.
    assert!(!by_type(vec![
        topic("orders", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("orders", LITERAL, "User:alice", Op::Write, DENY),
    ]));
    assert!(!by_type(vec![
        topic("orders", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("ord", PREFIXED, "User:*", Op::All, DENY),
    ]));
    assert!(!by_type(vec![
        topic("orders", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("orders", PREFIXED, "User:alice", Op::Write, DENY),
    ]));
    // A prefixed allow dominated by a shorter prefixed deny, but not by a literal deny.
    assert!(!by_type(vec![
        topic("orders-", PREFIXED, "User:alice", Op::Write, ALLOW),
        topic("ord", PREFIXED, "User:alice", Op::Write, DENY),
    ]));
    assert!(by_type(vec![
        topic("orders-", PREFIXED, "User:alice", Op::Write, ALLOW),
        topic("orders-", LITERAL, "User:alice", Op::Write, DENY),
    ]));
    // A longer deny leaves room: "ord" allows "ordinal" although "orders" is denied.
    assert!(by_type(vec![
        topic("ord", PREFIXED, "User:alice", Op::Write, ALLOW),
        topic("orders", PREFIXED, "User:alice", Op::Write, DENY),
    ]));
    // One undominated allow is enough.
    assert!(by_type(vec![
        topic("orders", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("orders", LITERAL, "User:alice", Op::Write, DENY),
        topic("logs", LITERAL, "User:alice", Op::Write, ALLOW),
    ]));
    // A wildcard deny denies outright, even against a wildcard allow.
    assert!(!by_type(vec![
        topic("*", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("*", LITERAL, "User:*", Op::Write, DENY),
    ]));
    // A wildcard allow beats specific denies.
    assert!(by_type(vec![
        topic("*", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("o", PREFIXED, "User:alice", Op::Write, DENY),
    ]));
    // Denies of other operations or principals do not dominate.
    assert!(by_type(vec![
        topic("orders", LITERAL, "User:alice", Op::Write, ALLOW),
        topic("orders", LITERAL, "User:alice", Op::Read, DENY),
        topic("orders", LITERAL, "User:bob", Op::Write, DENY),
    ]));
}

#[test]
fn by_resource_type_lets_super_users_and_no_acl_found_through() {
    let deny_all = || vec![topic("*", LITERAL, "User:*", Op::All, DENY)];
    let config = AuthorizerConfig {
        super_users: vec!["User:admin".into()],
        allow_everyone_if_no_acl_found: false,
    };
    let a = with(config, deny_all());
    assert!(a.authorize_by_resource_type("User:admin", ip("10.0.0.1"), Op::Write, TOPIC));
    assert!(!a.authorize_by_resource_type("User:alice", ip("10.0.0.1"), Op::Write, TOPIC));
    let open = AuthorizerConfig {
        allow_everyone_if_no_acl_found: true,
        ..Default::default()
    };
    assert!(with(open.clone(), vec![]).authorize_by_resource_type(
        "User:x",
        ip("10.0.0.1"),
        Op::Write,
        TOPIC
    ));
    // An ACL covering "hardcode" switches the no-ACL rule off for the probe.
    let covered = with(
        open,
        vec![topic("hard", PREFIXED, "User:bob", Op::Read, ALLOW)],
    );
    assert!(!covered.authorize_by_resource_type("User:x", ip("10.0.0.1"), Op::Write, TOPIC));
}
