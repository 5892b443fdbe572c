//! The ACL vocabulary: wire codes, names, parsing, serde, CreateAcls validation and
//! DescribeAcls/DeleteAcls filter matching.

use strom_authorizer::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourcePattern, ResourceType,
};

fn binding(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: AclOperation,
    permission: AclPermissionType,
) -> AclBinding {
    AclBinding::new(
        ResourcePattern::new(resource_type, name, pattern_type),
        AccessControlEntry::new(principal, host, operation, permission),
    )
}

fn topic_read(name: &str, pattern_type: PatternType) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        pattern_type,
        "User:alice",
        "*",
        AclOperation::Read,
        AclPermissionType::Allow,
    )
}

#[test]
fn wire_codes_are_kafkas() {
    assert_eq!(ResourceType::Topic.code(), 2);
    assert_eq!(ResourceType::User.code(), 7);
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(AclOperation::ClusterAction.code(), 9);
    assert_eq!(AclOperation::DescribeTokens.code(), 14);
    assert_eq!(AclPermissionType::Allow.code(), 3);
    assert_eq!(ResourceType::from_code(0), None);
    assert_eq!(PatternType::from_code(0), None);
    assert_eq!(AclOperation::from_code(0), None);
    assert_eq!(AclPermissionType::from_code(0), None);
    assert_eq!(ResourceType::from_code(8), None);
    assert_eq!(AclOperation::from_code(15), None);
    assert_eq!(AclOperation::from_code(-1), None);
    for op in AclOperation::VARIANTS {
        assert_eq!(AclOperation::from_code(op.code()), Some(*op));
    }
    for t in ResourceType::VARIANTS {
        assert_eq!(ResourceType::from_code(t.code()), Some(*t));
    }
    assert_eq!(AclOperation::VARIANTS.len(), 14);
    assert_eq!(ResourceType::VARIANTS.len(), 7);
}

#[test]
fn names_display_and_parse_in_every_cli_spelling() {
    assert_eq!(ResourceType::TransactionalId.name(), "TRANSACTIONAL_ID");
    assert_eq!(PatternType::Prefixed.to_string(), "PREFIXED");
    assert_eq!(
        AclOperation::IdempotentWrite.to_string(),
        "IDEMPOTENT_WRITE"
    );
    assert_eq!(AclPermissionType::Allow.to_string(), "ALLOW");
    for (text, op) in [
        ("Read", AclOperation::Read),
        ("read", AclOperation::Read),
        ("READ", AclOperation::Read),
        ("ClusterAction", AclOperation::ClusterAction),
        ("cluster_action", AclOperation::ClusterAction),
        ("CLUSTER_ACTION", AclOperation::ClusterAction),
        ("IdempotentWrite", AclOperation::IdempotentWrite),
        ("DescribeConfigs", AclOperation::DescribeConfigs),
        ("alterconfigs", AclOperation::AlterConfigs),
        ("All", AclOperation::All),
    ] {
        assert_eq!(text.parse::<AclOperation>(), Ok(op), "{text}");
    }
    assert_eq!(
        "TransactionalId".parse::<ResourceType>(),
        Ok(ResourceType::TransactionalId)
    );
    assert_eq!(
        "delegation_token".parse::<ResourceType>(),
        Ok(ResourceType::DelegationToken)
    );
    assert_eq!("Prefixed".parse::<PatternType>(), Ok(PatternType::Prefixed));
    assert_eq!(
        "deny".parse::<AclPermissionType>(),
        Ok(AclPermissionType::Deny)
    );
    for bad in ["", "_", "UNKNOWN", "Reads", "Describe Configs"] {
        assert!(bad.parse::<AclOperation>().is_err(), "{bad:?}");
    }
    assert!("Topics".parse::<ResourceType>().is_err());
    let err = "nope".parse::<PatternType>().err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("unknown pattern type: \"nope\""));
}

#[test]
fn serde_uses_the_names() {
    let b = topic_read("orders", PatternType::Prefixed);
    let json = serde_json::to_value(&b).expect("serializes");
    assert_eq!(json["pattern"]["resource_type"], "TOPIC");
    assert_eq!(json["pattern"]["pattern_type"], "PREFIXED");
    assert_eq!(json["entry"]["operation"], "READ");
    assert_eq!(json["entry"]["permission"], "ALLOW");
    let back: AclBinding = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, b);
    assert_eq!(
        serde_json::to_string(&AclOperation::ClusterAction)
            .ok()
            .as_deref(),
        Some("\"CLUSTER_ACTION\"")
    );
    assert!(serde_json::from_str::<AclOperation>("\"FLY\"").is_err());
    assert!(serde_json::from_str::<AclOperation>("3").is_err());
}

#[test]
fn validate_accepts_storable_bindings() {
    for b in [
        topic_read("orders", PatternType::Literal),
        topic_read("ord", PatternType::Prefixed),
        topic_read("*", PatternType::Literal),
        binding(
            ResourceType::Cluster,
            "kafka-cluster",
            PatternType::Literal,
            "User:*",
            "10.0.0.1",
            AclOperation::ClusterAction,
            AclPermissionType::Deny,
        ),
        binding(
            ResourceType::Group,
            "g",
            PatternType::Literal,
            "Group:ops",
            "::1",
            AclOperation::All,
            AclPermissionType::Allow,
        ),
    ] {
        assert_eq!(b.validate(), Ok(()), "{b}");
    }
}

#[test]
fn validate_rejects_what_kafka_rejects() {
    let ok = topic_read("orders", PatternType::Literal);
    let mut cases: Vec<(AclBinding, &str)> = Vec::new();
    let mut b = ok.clone();
    b.pattern.pattern_type = PatternType::Any;
    cases.push((b, "patternType ANY"));
    let mut b = ok.clone();
    b.pattern.pattern_type = PatternType::Match;
    cases.push((b, "patternType MATCH"));
    let mut b = ok.clone();
    b.pattern.resource_type = ResourceType::Any;
    cases.push((b, "resourceType ANY"));
    let mut b = ok.clone();
    b.entry.operation = AclOperation::Any;
    cases.push((b, "operation ANY"));
    let mut b = ok.clone();
    b.entry.permission = AclPermissionType::Any;
    cases.push((b, "permissionType ANY"));
    let mut b = ok.clone();
    b.pattern.name.clear();
    cases.push((b, "empty resource name"));
    let mut b = ok.clone();
    b.pattern.resource_type = ResourceType::Cluster;
    cases.push((b, "CLUSTER resource is kafka-cluster"));
    for principal in ["alice", "User:", ":alice", ""] {
        let mut b = ok.clone();
        b.entry.principal = principal.to_owned();
        cases.push((b, "principal"));
    }
    for host in ["localhost", "", "10.0.0", "10.0.0.1/24"] {
        let mut b = ok.clone();
        b.entry.host = host.to_owned();
        cases.push((b, "host"));
    }
    for (b, expected) in cases {
        match b.validate() {
            Err(message) => assert!(message.contains(expected), "{message:?} lacks {expected:?}"),
            Ok(()) => panic!("{b} validated"),
        }
    }
}

#[test]
fn filter_any_matches_everything() {
    let any = AclBindingFilter::any();
    assert_eq!(AclBindingFilter::default(), any);
    assert!(any.matches(&topic_read("orders", PatternType::Literal)));
    assert!(any.matches(&topic_read("o", PatternType::Prefixed)));
    assert!(any.matches(&topic_read("*", PatternType::Literal)));
    assert_eq!(any.validate(), Ok(()));
}

#[test]
fn filter_resource_type_and_entry_fields() {
    let b = topic_read("orders", PatternType::Literal);
    let mut f = AclBindingFilter::any();
    f.resource_type = ResourceType::Group;
    assert!(!f.matches(&b));
    f.resource_type = ResourceType::Topic;
    assert!(f.matches(&b));
    f.principal = Some("User:bob".into());
    assert!(!f.matches(&b));
    // Principals and hosts compare as text: the filter's "User:*" is not a wildcard.
    f.principal = Some("User:*".into());
    assert!(!f.matches(&b));
    f.principal = Some("User:alice".into());
    assert!(f.matches(&b));
    f.host = Some("10.0.0.1".into());
    assert!(!f.matches(&b));
    f.host = Some("*".into());
    assert!(f.matches(&b));
    // No implied operations in filters: a DESCRIBE filter does not select a READ ACL.
    f.operation = AclOperation::Describe;
    assert!(!f.matches(&b));
    f.operation = AclOperation::Read;
    assert!(f.matches(&b));
    f.permission = AclPermissionType::Deny;
    assert!(!f.matches(&b));
    f.permission = AclPermissionType::Allow;
    assert!(f.matches(&b));
    let exact = AclBindingFilter {
        name: Some("orders".into()),
        pattern_type: PatternType::Literal,
        ..f
    };
    assert_eq!(b.to_filter(), exact);
}

fn pattern_filter(name: Option<&str>, pattern_type: PatternType) -> AclBindingFilter {
    AclBindingFilter {
        name: name.map(str::to_owned),
        pattern_type,
        ..AclBindingFilter::any()
    }
}

#[test]
fn filter_pattern_type_any_takes_exact_names_of_any_pattern_type() {
    let f = pattern_filter(Some("orders"), PatternType::Any);
    assert!(f.matches(&topic_read("orders", PatternType::Literal)));
    assert!(f.matches(&topic_read("orders", PatternType::Prefixed)));
    assert!(!f.matches(&topic_read("*", PatternType::Literal)));
    assert!(!f.matches(&topic_read("ord", PatternType::Prefixed)));
    assert!(!f.matches(&topic_read("orders2", PatternType::Literal)));
    // A resource type ANY filter with a name is fine.
    assert_eq!(f.validate(), Ok(()));
}

#[test]
fn filter_match_takes_patterns_that_would_apply_to_the_name() {
    let f = pattern_filter(Some("orders"), PatternType::Match);
    assert!(f.matches(&topic_read("orders", PatternType::Literal)));
    assert!(f.matches(&topic_read("*", PatternType::Literal)));
    assert!(f.matches(&topic_read("ord", PatternType::Prefixed)));
    assert!(f.matches(&topic_read("orders", PatternType::Prefixed)));
    assert!(!f.matches(&topic_read("orders2", PatternType::Prefixed)));
    assert!(!f.matches(&topic_read("ord", PatternType::Literal)));
    assert!(!f.matches(&topic_read("*", PatternType::Prefixed)));
    assert!(!f.matches(&topic_read("payments", PatternType::Literal)));
    let all = pattern_filter(None, PatternType::Match);
    assert!(all.matches(&topic_read("payments", PatternType::Literal)));
    assert!(all.matches(&topic_read("p", PatternType::Prefixed)));
}

#[test]
fn filter_literal_and_prefixed_take_that_type_and_exact_name() {
    let literal = pattern_filter(Some("orders"), PatternType::Literal);
    assert!(literal.matches(&topic_read("orders", PatternType::Literal)));
    assert!(!literal.matches(&topic_read("orders", PatternType::Prefixed)));
    assert!(!literal.matches(&topic_read("*", PatternType::Literal)));
    let wildcard = pattern_filter(Some("*"), PatternType::Literal);
    assert!(wildcard.matches(&topic_read("*", PatternType::Literal)));
    assert!(!wildcard.matches(&topic_read("orders", PatternType::Literal)));
    let prefixed = pattern_filter(Some("ord"), PatternType::Prefixed);
    assert!(prefixed.matches(&topic_read("ord", PatternType::Prefixed)));
    assert!(!prefixed.matches(&topic_read("o", PatternType::Prefixed)));
    assert!(!prefixed.matches(&topic_read("ord", PatternType::Literal)));
    let any_prefixed = pattern_filter(None, PatternType::Prefixed);
    assert!(any_prefixed.matches(&topic_read("x", PatternType::Prefixed)));
    assert!(!any_prefixed.matches(&topic_read("x", PatternType::Literal)));
    let any_literal = pattern_filter(None, PatternType::Literal);
    assert!(any_literal.matches(&topic_read("*", PatternType::Literal)));
    assert!(!any_literal.matches(&topic_read("x", PatternType::Prefixed)));
}

#[test]
fn filter_version_zero_knows_only_literal() {
    let mut f = pattern_filter(Some("orders"), PatternType::Any);
    assert_eq!(f.normalize_for_version(0), Ok(()));
    assert_eq!(f.pattern_type, PatternType::Literal);
    for pattern_type in [PatternType::Match, PatternType::Prefixed] {
        let mut f = pattern_filter(None, pattern_type);
        assert!(f.normalize_for_version(0).is_err());
        assert_eq!(f.normalize_for_version(1), Ok(()));
        assert_eq!(f.pattern_type, pattern_type);
    }
    let mut f = pattern_filter(None, PatternType::Any);
    assert_eq!(f.normalize_for_version(2), Ok(()));
    assert_eq!(f.pattern_type, PatternType::Any);
}
