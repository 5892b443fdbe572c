//! Strom's authorizer: Kafka's ACL model and the `StandardAuthorizer` decision, with Kafka's
//! names, wire codes and semantics as the contract.
//!
//! - ACL types: [`ResourceType`], [`PatternType`], [`AclOperation`], [`AclPermissionType`],
//!   [`ResourcePattern`], [`AccessControlEntry`], [`AclBinding`] (with CreateAcls validation)
//!   and [`AclBindingFilter`] (DescribeAcls/DeleteAcls matching).
//! - [`StandardAuthorizer`]: an immutable, indexed snapshot of the ACLs answering `authorize`,
//!   `authorize_by_resource_type` and DescribeAcls; [`AuthorizerConfig`] holds `super.users` and
//!   `allow.everyone.if.no.acl.found`. The broker rebuilds the snapshot when the ACL set changes.
//!
//! Dependency rule: this crate is pure (no I/O, no async, no other strom crate); the broker,
//! the metadata log and the CLI depend on it.

mod acl;
mod authorizer;
mod index;
mod prefix_trie;

pub use acl::{
    parse_principal, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, ParseEnumError, PatternType, ResourcePattern, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
pub use authorizer::{AclId, AuthorizerConfig, StandardAuthorizer};
