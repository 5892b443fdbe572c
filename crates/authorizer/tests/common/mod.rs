//! Helpers shared by the decision tests: ACL builders and snapshots with sequential ids.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;

use strom_authorizer::{
    AccessControlEntry, AclBinding, AclId, AclOperation, AclPermissionType, AuthorizerConfig,
    PatternType, ResourcePattern, ResourceType, StandardAuthorizer,
};

pub const ALLOW: AclPermissionType = AclPermissionType::Allow;
pub const DENY: AclPermissionType = AclPermissionType::Deny;
pub const LITERAL: PatternType = PatternType::Literal;
pub const PREFIXED: PatternType = PatternType::Prefixed;
pub const TOPIC: ResourceType = ResourceType::Topic;

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

pub fn acl(
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

/// A topic ACL for any host.
pub fn topic(
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    op: AclOperation,
    perm: AclPermissionType,
) -> AclBinding {
    acl(TOPIC, name, pattern_type, principal, "*", op, perm)
}

pub fn with(config: AuthorizerConfig, acls: Vec<AclBinding>) -> StandardAuthorizer {
    StandardAuthorizer::new(
        config,
        acls.into_iter()
            .enumerate()
            .map(|(i, b)| (AclId::from_u128(i as u128 + 1), b)),
    )
}

pub fn authorizer(acls: Vec<AclBinding>) -> StandardAuthorizer {
    with(AuthorizerConfig::default(), acls)
}

pub fn can(a: &StandardAuthorizer, principal: &str, op: AclOperation, name: &str) -> bool {
    a.authorize(principal, ip("10.0.0.1"), op, TOPIC, name)
}
