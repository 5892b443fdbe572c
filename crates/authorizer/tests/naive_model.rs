//! The indexed `StandardAuthorizer` against naive models written straight from Kafka's rules
//! (a scan over every ACL), on random ACL sets over a small alphabet so that names, prefixes,
//! wildcards, principals and hosts collide often.

use std::collections::HashSet;
use std::net::IpAddr;

use proptest::prelude::*;
use strom_authorizer::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclId, AclOperation, AclPermissionType,
    AuthorizerConfig, PatternType, ResourcePattern, ResourceType, StandardAuthorizer,
};

const NAMES: &[&str] = &["", "*", "a", "ab", "abc", "abd", "b", "ba", "*a", "é", "éa"];
const PRINCIPALS: &[&str] = &[
    "User:alice",
    "User:bob",
    "User:*",
    "Group:alice",
    "User:root",
];
const HOSTS: &[&str] = &["*", "10.0.0.1", "10.0.0.2", "localhost"];
const CLIENTS: &[&str] = &["10.0.0.1", "10.0.0.2", "10.0.0.3"];
const TYPES: &[ResourceType] = &[
    ResourceType::Topic,
    ResourceType::Group,
    ResourceType::Cluster,
];

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn operation() -> impl Strategy<Value = AclOperation> {
    pick(AclOperation::VARIANTS)
}

fn binding() -> impl Strategy<Value = AclBinding> {
    binding_from(NAMES, PRINCIPALS, AclOperation::VARIANTS)
}

/// For `authorize_by_resource_type`: few operations and principals, and the wildcard rarely,
/// so that allows and denies of the same operation meet and dominate one another.
fn binding_by_type() -> impl Strategy<Value = AclBinding> {
    const BY_TYPE_NAMES: &[&str] = &[
        "a", "ab", "abc", "abd", "b", "ba", "é", "éa", "hard", "hardcode", "x", "xy", "xyz", "*",
    ];
    const BY_TYPE_OPS: &[AclOperation] =
        &[AclOperation::Write, AclOperation::Read, AclOperation::All];
    binding_from(
        BY_TYPE_NAMES,
        &["User:alice", "User:*", "User:bob"],
        BY_TYPE_OPS,
    )
}

fn binding_from(
    names: &'static [&'static str],
    principals: &'static [&'static str],
    operations: &'static [AclOperation],
) -> impl Strategy<Value = AclBinding> {
    (
        pick(TYPES),
        pick(names).prop_filter("stored names are non-empty", |n| !n.is_empty()),
        pick(&[PatternType::Literal, PatternType::Prefixed]),
        pick(principals),
        pick(HOSTS),
        pick(operations).prop_filter("stored operations are not ANY", |o| *o != AclOperation::Any),
        pick(&[AclPermissionType::Allow, AclPermissionType::Deny]),
    )
        .prop_map(
            |(resource_type, name, pattern_type, principal, host, operation, permission)| {
                AclBinding::new(
                    ResourcePattern::new(resource_type, name, pattern_type),
                    AccessControlEntry::new(principal, host, operation, permission),
                )
            },
        )
}

fn config() -> impl Strategy<Value = AuthorizerConfig> {
    (any::<bool>(), any::<bool>()).prop_map(|(root_is_super, allow_everyone_if_no_acl_found)| {
        AuthorizerConfig {
            super_users: if root_is_super {
                vec!["User:root".to_owned()]
            } else {
                vec![]
            },
            allow_everyone_if_no_acl_found,
        }
    })
}

#[derive(Clone, Debug)]
struct Request {
    principal: &'static str,
    host: &'static str,
    operation: AclOperation,
    resource_type: ResourceType,
    name: &'static str,
}

fn request() -> impl Strategy<Value = Request> {
    (
        pick(PRINCIPALS),
        pick(CLIENTS),
        operation(),
        pick(TYPES),
        pick(NAMES),
    )
        .prop_map(
            |(principal, host, operation, resource_type, name)| Request {
                principal,
                host,
                operation,
                resource_type,
                name,
            },
        )
}

fn request_by_type() -> impl Strategy<Value = Request> {
    const OPS: &[AclOperation] = &[
        AclOperation::Write,
        AclOperation::Read,
        AclOperation::Describe,
        AclOperation::Any,
    ];
    (
        pick(&["User:alice", "User:bob", "User:root"]),
        pick(CLIENTS),
        pick(OPS),
        pick(TYPES),
    )
        .prop_map(|(principal, host, operation, resource_type)| Request {
            principal,
            host,
            operation,
            resource_type,
            name: "",
        })
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn covers(pattern: &ResourcePattern, name: &str) -> bool {
    match pattern.pattern_type {
        PatternType::Literal => pattern.name == name || pattern.name == "*",
        PatternType::Prefixed => name.starts_with(&pattern.name),
        _ => false,
    }
}

fn principal_applies(acl: &AclBinding, principal: &str) -> bool {
    acl.entry.principal == principal || acl.entry.principal == "User:*"
}

fn host_applies(acl: &AclBinding, host: &str) -> bool {
    acl.entry.host == "*" || acl.entry.host == host
}

/// Kafka's `StandardAuthorizerData.findResult` operation rule.
fn operation_applies(acl: &AclBinding, op: AclOperation) -> bool {
    use AclOperation::*;
    let acl_op = acl.entry.operation;
    if acl_op == All || acl_op == op {
        return true;
    }
    acl.entry.permission == AclPermissionType::Allow
        && match op {
            Describe => matches!(acl_op, Read | Write | Delete | Alter),
            DescribeConfigs => acl_op == AlterConfigs,
            _ => false,
        }
}

fn naive_authorize(config: &AuthorizerConfig, acls: &[AclBinding], r: &Request) -> bool {
    if config.super_users.iter().any(|s| s == r.principal) {
        return true;
    }
    let covering: Vec<&AclBinding> = acls
        .iter()
        .filter(|a| a.pattern.resource_type == r.resource_type && covers(&a.pattern, r.name))
        .collect();
    if covering.is_empty() {
        return config.allow_everyone_if_no_acl_found;
    }
    let applying = |perm: AclPermissionType| {
        covering.iter().any(|a| {
            a.entry.permission == perm
                && principal_applies(a, r.principal)
                && host_applies(a, r.host)
                && operation_applies(a, r.operation)
        })
    };
    !applying(AclPermissionType::Deny) && applying(AclPermissionType::Allow)
}

/// Kafka's default `Authorizer.authorizeByResourceType`, transcribed as a plain scan.
fn naive_by_resource_type(config: &AuthorizerConfig, acls: &[AclBinding], r: &Request) -> bool {
    if r.operation == AclOperation::Any {
        return false;
    }
    let probe = Request {
        name: "hardcode",
        ..r.clone()
    };
    if naive_authorize(config, acls, &probe) {
        return true;
    }
    let mut deny_literal = HashSet::new();
    let mut deny_prefixed = HashSet::new();
    let mut allow = Vec::new();
    let mut wildcard_allow = false;
    for a in acls
        .iter()
        .filter(|a| a.pattern.resource_type == r.resource_type)
    {
        let op = a.entry.operation;
        if !host_applies(a, r.host) || !principal_applies(a, r.principal) {
            continue;
        }
        if op != r.operation && op != AclOperation::All {
            continue;
        }
        let name = a.pattern.name.as_str();
        let literal = a.pattern.pattern_type == PatternType::Literal;
        if a.entry.permission == AclPermissionType::Deny {
            if literal && name == "*" {
                return false;
            }
            if literal {
                deny_literal.insert(name)
            } else {
                deny_prefixed.insert(name)
            };
        } else if literal && name == "*" {
            wildcard_allow = true;
        } else {
            allow.push((literal, name));
        }
    }
    if wildcard_allow {
        return true;
    }
    allow.into_iter().any(|(literal, name)| {
        if literal && deny_literal.contains(name) {
            return false;
        }
        // Every char-prefix of the allowed name, as Kafka's StringBuilder loop.
        let mut ends: Vec<usize> = name.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
        ends.dedup();
        !ends.iter().any(|end| deny_prefixed.contains(&name[..*end]))
    })
}

fn snapshot(config: &AuthorizerConfig, acls: &[AclBinding]) -> StandardAuthorizer {
    StandardAuthorizer::new(
        config.clone(),
        acls.iter()
            .cloned()
            .enumerate()
            .map(|(i, b)| (AclId::from_u128(i as u128), b)),
    )
}

fn filter() -> impl Strategy<Value = AclBindingFilter> {
    (
        pick(&[
            ResourceType::Any,
            ResourceType::Topic,
            ResourceType::Group,
            ResourceType::Cluster,
        ]),
        proptest::option::of(pick(NAMES)),
        pick(PatternType::VARIANTS),
        proptest::option::of(pick(PRINCIPALS)),
        proptest::option::of(pick(HOSTS)),
        pick(&[AclOperation::Any, AclOperation::Read, AclOperation::All]),
        pick(AclPermissionType::VARIANTS),
    )
        .prop_map(
            |(resource_type, name, pattern_type, principal, host, operation, permission)| {
                AclBindingFilter {
                    resource_type,
                    name: name.map(str::to_owned),
                    pattern_type,
                    principal: principal.map(str::to_owned),
                    host: host.map(str::to_owned),
                    operation,
                    permission,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn authorize_agrees_with_a_scan(
        config in config(),
        acls in proptest::collection::vec(binding(), 0..40),
        requests in proptest::collection::vec(request(), 1..40),
    ) {
        let authorizer = snapshot(&config, &acls);
        for r in &requests {
            let indexed = authorizer.authorize(r.principal, ip(r.host), r.operation, r.resource_type, r.name);
            prop_assert_eq!(indexed, naive_authorize(&config, &acls, r), "{:?}", r);
        }
    }

    #[test]
    fn authorize_by_resource_type_agrees_with_kafkas_default(
        config in config(),
        acls in proptest::collection::vec(binding_by_type(), 0..12),
        requests in proptest::collection::vec(request_by_type(), 1..20),
    ) {
        let authorizer = snapshot(&config, &acls);
        for r in &requests {
            let indexed = authorizer.authorize_by_resource_type(r.principal, ip(r.host), r.operation, r.resource_type);
            prop_assert_eq!(indexed, naive_by_resource_type(&config, &acls, r), "{:?}", r);
        }
    }

    #[test]
    fn acls_agrees_with_filtering_every_binding(
        acls in proptest::collection::vec(binding(), 0..40),
        filters in proptest::collection::vec(filter(), 1..20),
    ) {
        let authorizer = snapshot(&AuthorizerConfig::default(), &acls);
        let mut all: Vec<(AclId, AclBinding)> =
            acls.iter().cloned().enumerate().map(|(i, b)| (AclId::from_u128(i as u128), b)).collect();
        all.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        for f in &filters {
            let expected: Vec<_> = all.iter().filter(|(_, b)| f.matches(b)).cloned().collect();
            prop_assert_eq!(authorizer.acls(f), expected, "{:?}", f);
        }
    }
}
