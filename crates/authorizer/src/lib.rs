//! Strom's authorizer: Kafka's ACL model and the `StandardAuthorizer` decision, with Kafka's
//! names, wire codes and semantics as the contract.
//!
//! - [`acl`] types: [`ResourceType`], [`PatternType`], [`AclOperation`], [`AclPermissionType`],
//!   [`ResourcePattern`], [`AccessControlEntry`], [`AclBinding`] (with CreateAcls validation)
//!   and [`AclBindingFilter`] (DescribeAcls/DeleteAcls matching).
//!
//! Dependency rule: this crate is pure (no I/O, no async, no other strom crate); the broker,
//! the metadata log and the CLI depend on it.

mod acl;

pub use acl::{
    parse_principal, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, ParseEnumError, PatternType, ResourcePattern, ResourceType,
    CLUSTER_RESOURCE_NAME, WILDCARD, WILDCARD_PRINCIPAL,
};
