//! ACL admin on [`Client`]: CreateAcls (API 30), DescribeAcls (API 29) and DeleteAcls (API 31),
//! in strom-authorizer's types, as Kafka's admin client does them.
//!
//! Like Kafka's admin client (`LeastLoadedNodeProvider`), every request goes to any broker: a
//! KRaft broker forwards the changes to the controller itself. Nothing is validated here beyond
//! what the types already guarantee (no UNKNOWN enum value can be built): the broker's checks
//! and its INVALID_REQUEST messages are the authority, and a second copy of them here could only
//! disagree. A response naming an enum code this client does not know (a newer Kafka) is an
//! error rather than an omitted ACL: hiding an ACL from an operator listing them is worse than
//! failing to list.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use strom_authorizer::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourcePattern, ResourceType,
};

use crate::client::Client;
use crate::error::ClientError;

impl Client {
    /// Creates `bindings` in one CreateAcls request. One result per binding, in order: `Ok`, or
    /// the broker's error for it (SECURITY_DISABLED without an authorizer,
    /// CLUSTER_AUTHORIZATION_FAILED without ALTER on the cluster, INVALID_REQUEST for a binding
    /// Kafka refuses). A request-level failure (connection, unsupported API) is the outer `Err`.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        if bindings.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::CreateAcls)?;
        let request =
            CreateAclsRequest::default().with_creations(bindings.iter().map(creation).collect());
        let response = conn.send(version, &request).await?;
        let mut results = response.results.into_iter();
        Ok(bindings
            .iter()
            .map(|binding| {
                let context = || format!("create ACL {binding}");
                match results.next() {
                    Some(r) if r.error_code == 0 => Ok(()),
                    Some(r) => Err(ClientError::broker(
                        context(),
                        r.error_code,
                        r.error_message.as_deref(),
                    )),
                    // Kafka answers one result per creation, in order; a short answer leaves
                    // the rest unknown, which must not read as success.
                    None => Err(missing(
                        context(),
                        "the binding is missing from the response",
                    )),
                }
            })
            .collect())
    }

    /// The ACLs `filter` selects (DescribeAcls), grouped by resource as the broker sent them.
    /// SECURITY_DISABLED and the like are the `Err`, since DescribeAcls has one error per request.
    pub async fn describe_acls(
        &self,
        filter: &AclBindingFilter,
    ) -> Result<Vec<AclBinding>, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DescribeAcls)?;
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type.code())
            .with_resource_name_filter(filter.name.clone().map(StrBytes::from_string))
            .with_pattern_type_filter(filter.pattern_type.code())
            .with_principal_filter(filter.principal.clone().map(StrBytes::from_string))
            .with_host_filter(filter.host.clone().map(StrBytes::from_string))
            .with_operation(filter.operation.code())
            .with_permission_type(filter.permission.code());
        let response = conn.send(version, &request).await?;
        if response.error_code != 0 {
            return Err(ClientError::broker(
                "describe ACLs",
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        let mut out = Vec::new();
        for resource in &response.resources {
            for acl in &resource.acls {
                out.push(binding_from_wire(
                    "describe ACLs",
                    WireAcl {
                        resource_type: resource.resource_type,
                        name: &resource.resource_name,
                        pattern_type: resource.pattern_type,
                        principal: &acl.principal,
                        host: &acl.host,
                        operation: acl.operation,
                        permission: acl.permission_type,
                    },
                )?);
            }
        }
        Ok(out)
    }

    /// Deletes the ACLs each filter selects, in one DeleteAcls request. One result per filter, in
    /// order: the bindings it deleted (possibly none), or the broker's error for that filter (or
    /// for one of its matching ACLs; Kafka reports those per ACL).
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Result<Vec<AclBinding>, ClientError>>, ClientError> {
        if filters.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DeleteAcls)?;
        let request =
            DeleteAclsRequest::default().with_filters(filters.iter().map(delete_filter).collect());
        let response = conn.send(version, &request).await?;
        let mut results = response.filter_results.into_iter();
        Ok(filters
            .iter()
            .map(|filter| {
                let context = format!("delete ACLs matching {}", filter_text(filter));
                let Some(r) = results.next() else {
                    return Err(missing(context, "the filter is missing from the response"));
                };
                if r.error_code != 0 {
                    return Err(ClientError::broker(
                        context,
                        r.error_code,
                        r.error_message.as_deref(),
                    ));
                }
                let mut deleted = Vec::with_capacity(r.matching_acls.len());
                for m in &r.matching_acls {
                    let binding = binding_from_wire(
                        &context,
                        WireAcl {
                            resource_type: m.resource_type,
                            name: &m.resource_name,
                            pattern_type: m.pattern_type,
                            principal: &m.principal,
                            host: &m.host,
                            operation: m.operation,
                            permission: m.permission_type,
                        },
                    )?;
                    if m.error_code != 0 {
                        return Err(ClientError::broker(
                            format!("delete ACL {binding}"),
                            m.error_code,
                            m.error_message.as_deref(),
                        ));
                    }
                    deleted.push(binding);
                }
                Ok(deleted)
            })
            .collect())
    }
}

fn creation(binding: &AclBinding) -> AclCreation {
    let AclBinding { pattern, entry } = binding;
    AclCreation::default()
        .with_resource_type(pattern.resource_type.code())
        .with_resource_name(StrBytes::from_string(pattern.name.clone()))
        .with_resource_pattern_type(pattern.pattern_type.code())
        .with_principal(StrBytes::from_string(entry.principal.clone()))
        .with_host(StrBytes::from_string(entry.host.clone()))
        .with_operation(entry.operation.code())
        .with_permission_type(entry.permission.code())
}

fn delete_filter(filter: &AclBindingFilter) -> DeleteAclsFilter {
    DeleteAclsFilter::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.name.clone().map(StrBytes::from_string))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.clone().map(StrBytes::from_string))
        .with_host_filter(filter.host.clone().map(StrBytes::from_string))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code())
}

/// Kafka's `AclBindingFilter.toString`, for error messages (`null`: any value).
fn filter_text(f: &AclBindingFilter) -> String {
    let or_null = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".to_owned());
    format!(
        "(patternFilter=ResourcePatternFilter(resourceType={}, name={}, patternType={}), \
         entryFilter=(principal={}, host={}, operation={}, permissionType={}))",
        f.resource_type,
        or_null(&f.name),
        f.pattern_type,
        or_null(&f.principal),
        or_null(&f.host),
        f.operation,
        f.permission
    )
}

/// One ACL as the responses spell it: codes and strings, not yet checked.
struct WireAcl<'a> {
    resource_type: i8,
    name: &'a StrBytes,
    pattern_type: i8,
    principal: &'a StrBytes,
    host: &'a StrBytes,
    operation: i8,
    permission: i8,
}

/// The binding a response describes; an enum code this client cannot name is an error.
fn binding_from_wire(context: &str, acl: WireAcl<'_>) -> Result<AclBinding, ClientError> {
    let known = |code: i8, what: &str| {
        ClientError::broker(
            context,
            ResponseError::UnknownServerError.code(),
            Some(&format!(
                "the broker named an ACL with {what} code {code}, unknown to this client"
            )),
        )
    };
    let resource_type = ResourceType::from_code(acl.resource_type)
        .ok_or_else(|| known(acl.resource_type, "resource type"))?;
    let pattern_type = PatternType::from_code(acl.pattern_type)
        .ok_or_else(|| known(acl.pattern_type, "pattern type"))?;
    let operation =
        AclOperation::from_code(acl.operation).ok_or_else(|| known(acl.operation, "operation"))?;
    let permission = AclPermissionType::from_code(acl.permission)
        .ok_or_else(|| known(acl.permission, "permission type"))?;
    Ok(AclBinding::new(
        ResourcePattern::new(resource_type, acl.name.to_string(), pattern_type),
        AccessControlEntry::new(
            acl.principal.to_string(),
            acl.host.to_string(),
            operation,
            permission,
        ),
    ))
}

/// A result the broker should have sent and did not.
fn missing(context: String, what: &str) -> ClientError {
    ClientError::broker(
        context,
        ResponseError::UnknownServerError.code(),
        Some(what),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_owned())
    }

    #[test]
    fn bindings_and_filters_go_on_the_wire_with_kafkas_codes() {
        let binding = AclBinding::new(
            ResourcePattern::new(ResourceType::Topic, "orders", PatternType::Prefixed),
            AccessControlEntry::new(
                "User:alice",
                "*",
                AclOperation::Read,
                AclPermissionType::Allow,
            ),
        );
        let c = creation(&binding);
        assert_eq!(
            (
                c.resource_type,
                c.resource_pattern_type,
                c.operation,
                c.permission_type
            ),
            (2, 4, 3, 3)
        );
        assert_eq!(
            (c.resource_name.as_str(), c.principal.as_str()),
            ("orders", "User:alice")
        );

        let f = delete_filter(&AclBindingFilter::any());
        assert_eq!(
            (
                f.resource_type_filter,
                f.pattern_type_filter,
                f.operation,
                f.permission_type
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(f.resource_name_filter, None);
        assert_eq!(f.principal_filter, None);
        assert_eq!(f.host_filter, None);
    }

    #[test]
    fn wire_acls_decode_and_unknown_codes_are_errors() {
        let (name, principal, host) = (s("orders"), s("User:alice"), s("*"));
        let wire = |resource_type, operation| WireAcl {
            resource_type,
            name: &name,
            pattern_type: 4,
            principal: &principal,
            host: &host,
            operation,
            permission: 2,
        };
        let b = binding_from_wire("describe ACLs", wire(2, 8)).unwrap();
        assert_eq!(
            b.to_string(),
            "(pattern=ResourcePattern(resourceType=TOPIC, name=orders, patternType=PREFIXED), \
             entry=(principal=User:alice, host=*, operation=DESCRIBE, permissionType=DENY))"
        );
        let e = binding_from_wire("describe ACLs", wire(42, 8)).unwrap_err();
        assert!(e.to_string().contains("resource type code 42"), "{e}");
        let e = binding_from_wire("describe ACLs", wire(2, 0)).unwrap_err();
        assert!(e.to_string().contains("operation code 0"), "{e}");
    }
}
