//! CreateAcls, DescribeAcls and DeleteAcls (v0–v3): the ACLs of the metadata log, as Kafka's
//! `AclControlManager` keeps them. Creating and deleting need ALTER on the cluster, describing
//! DESCRIBE; without an authorizer every call answers SECURITY_DISABLED, as Kafka does.
//!
//! A creation or deletion is one proposal (`AccessControlEntry` / `RemoveAccessControlEntry`
//! records) decided on the image it applies to, and the resulting image is published here
//! before the answer, so this broker enforces the change as soon as the client hears back;
//! the others apply it with their next image.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_authorizer::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourcePattern, ResourceType,
};
use strom_cluster::metadata::MetadataRecord;
use uuid::Uuid;

use crate::handler::RequestContext;

/// A failure: Kafka's code and message.
type Refusal = (ResponseError, String);

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";

/// The refusal every entry of a request gets before any ACL is looked at: no authorizer, or
/// the principal may not `operation` the cluster.
fn refused(ctx: &RequestContext, operation: AclOperation) -> Option<Refusal> {
    if !ctx.broker.authorization.enabled() {
        return Some((ResponseError::SecurityDisabled, NO_AUTHORIZER.into()));
    }
    if !ctx.authorized_cluster(operation) {
        return Some((
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        ));
    }
    None
}

fn code<T: Copy>(value: i8, from: fn(i8) -> Option<T>, what: &str) -> Result<T, Refusal> {
    from(value).ok_or_else(|| {
        (
            ResponseError::InvalidRequest,
            format!("Unknown {what} code {value}"),
        )
    })
}

/// A creation as a binding, or Kafka's INVALID_REQUEST.
fn binding_of(
    c: &kafka_protocol::messages::create_acls_request::AclCreation,
    version: i16,
) -> Result<AclBinding, Refusal> {
    // v0 predates pattern types: every ACL was literal.
    let pattern_type = match version {
        0 => PatternType::Literal,
        _ => code(
            c.resource_pattern_type,
            PatternType::from_code,
            "pattern type",
        )?,
    };
    let binding = AclBinding {
        pattern: ResourcePattern {
            resource_type: code(c.resource_type, ResourceType::from_code, "resource type")?,
            name: c.resource_name.to_string(),
            pattern_type,
        },
        entry: AccessControlEntry {
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: code(c.operation, AclOperation::from_code, "operation")?,
            permission: code(
                c.permission_type,
                AclPermissionType::from_code,
                "permission type",
            )?,
        },
    };
    binding
        .validate()
        .map_err(|m| (ResponseError::InvalidRequest, m))?;
    Ok(binding)
}

/// A request filter (DescribeAcls, DeleteAcls) as a filter, or Kafka's INVALID_REQUEST
/// (UNSUPPORTED_VERSION for v0 pattern types other than LITERAL/ANY).
#[allow(clippy::too_many_arguments)]
fn filter_of(
    version: i16,
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclBindingFilter, Refusal> {
    let mut filter = AclBindingFilter {
        resource_type: code(resource_type, ResourceType::from_code, "resource type")?,
        name: name.map(|n| n.to_string()),
        pattern_type: match version {
            0 => PatternType::Literal,
            _ => code(pattern_type, PatternType::from_code, "pattern type")?,
        },
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: code(operation, AclOperation::from_code, "operation")?,
        permission: code(permission, AclPermissionType::from_code, "permission type")?,
    };
    filter
        .normalize_for_version(version)
        .map_err(|m| (ResponseError::UnsupportedVersion, m))?;
    filter
        .validate()
        .map_err(|m| (ResponseError::InvalidRequest, m))?;
    Ok(filter)
}

fn message(refusal: &Option<Refusal>) -> (i16, Option<StrBytes>) {
    match refusal {
        None => (0, None),
        Some((code, m)) => (code.code(), Some(StrBytes::from_string(m.clone()))),
    }
}

pub(crate) async fn create(ctx: RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let result = |refusal: Option<Refusal>| {
        let (code, msg) = message(&refusal);
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(msg)
    };
    if let Some(r) = refused(&ctx, AclOperation::Alter) {
        let results = req
            .creations
            .iter()
            .map(|_| result(Some(r.clone())))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let planned: Vec<Result<AclBinding, Refusal>> = req
        .creations
        .iter()
        .map(|c| binding_of(c, ctx.api_version))
        .collect();
    let decided = ctx
        .broker
        .metadata
        .propose(|image| {
            let mut records = Vec::new();
            let mut added = std::collections::HashSet::new();
            for binding in planned.iter().flatten() {
                // An ACL that exists (or appears twice here) is created once, as Kafka.
                if !image.acls().contains_binding(binding) && added.insert(binding.clone()) {
                    records.push(MetadataRecord::AccessControlEntry {
                        id: Uuid::new_v4(),
                        binding: binding.clone(),
                    });
                }
            }
            (records, ())
        })
        .await;
    let failure = match decided {
        Ok(((), image)) => {
            ctx.broker.publisher.publish(&image);
            None
        }
        Err(e) => Some(super::proposal_refusal(&e, "ACL")),
    };
    let results = planned
        .into_iter()
        .map(|p| result(p.err().or_else(|| failure.clone())))
        .collect();
    CreateAclsResponse::default().with_results(results)
}

pub(crate) fn describe(ctx: &RequestContext, req: DescribeAclsRequest) -> DescribeAclsResponse {
    let refusal = refused(ctx, AclOperation::Describe).map_or_else(
        || {
            filter_of(
                ctx.api_version,
                req.resource_type_filter,
                req.resource_name_filter.as_ref(),
                req.pattern_type_filter,
                req.principal_filter.as_ref(),
                req.host_filter.as_ref(),
                req.operation,
                req.permission_type,
            )
        },
        Err,
    );
    let filter = match refusal {
        Ok(f) => f,
        Err(r) => {
            let (code, msg) = message(&Some(r));
            return DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(msg);
        }
    };
    // Grouped by resource pattern, as Kafka answers.
    let mut by_pattern: BTreeMap<ResourcePattern, Vec<AccessControlEntry>> = BTreeMap::new();
    for (_, binding) in ctx.broker.authorization.snapshot().acls(&filter) {
        by_pattern
            .entry(binding.pattern)
            .or_default()
            .push(binding.entry);
    }
    let resources = by_pattern
        .into_iter()
        .map(|(pattern, entries)| {
            DescribeAclsResource::default()
                .with_resource_type(pattern.resource_type.code())
                .with_resource_name(StrBytes::from_string(pattern.name))
                .with_pattern_type(pattern.pattern_type.code())
                .with_acls(
                    entries
                        .into_iter()
                        .map(|e| {
                            AclDescription::default()
                                .with_principal(StrBytes::from_string(e.principal))
                                .with_host(StrBytes::from_string(e.host))
                                .with_operation(e.operation.code())
                                .with_permission_type(e.permission.code())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub(crate) async fn delete(ctx: RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let filter_result = |refusal: Option<Refusal>, matching: Vec<AclBinding>| {
        let (code, msg) = message(&refusal);
        let matching = matching
            .into_iter()
            .map(|b| {
                DeleteAclsMatchingAcl::default()
                    .with_resource_type(b.pattern.resource_type.code())
                    .with_resource_name(StrBytes::from_string(b.pattern.name))
                    .with_pattern_type(b.pattern.pattern_type.code())
                    .with_principal(StrBytes::from_string(b.entry.principal))
                    .with_host(StrBytes::from_string(b.entry.host))
                    .with_operation(b.entry.operation.code())
                    .with_permission_type(b.entry.permission.code())
            })
            .collect();
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(msg)
            .with_matching_acls(matching)
    };
    if let Some(r) = refused(&ctx, AclOperation::Alter) {
        let results = req
            .filters
            .iter()
            .map(|_| filter_result(Some(r.clone()), Vec::new()))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let filters: Vec<Result<AclBindingFilter, Refusal>> = req
        .filters
        .iter()
        .map(|f| {
            filter_of(
                ctx.api_version,
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    // Each filter's matches on the image the removal is decided on (an ACL matched by two
    // filters is removed once and reported under both, as Kafka).
    let decided = ctx
        .broker
        .metadata
        .propose(|image| {
            let matches: Vec<Vec<(Uuid, AclBinding)>> = filters
                .iter()
                .map(|f| match f {
                    Ok(filter) => image
                        .acls()
                        .iter()
                        .filter(|(_, b)| filter.matches(b))
                        .map(|(id, b)| (*id, b.clone()))
                        .collect(),
                    Err(_) => Vec::new(),
                })
                .collect();
            let mut ids: Vec<Uuid> = matches.iter().flatten().map(|(id, _)| *id).collect();
            ids.sort();
            ids.dedup();
            let records = ids
                .into_iter()
                .map(|id| MetadataRecord::RemoveAccessControlEntry { id })
                .collect();
            (records, matches)
        })
        .await;
    let results = match decided {
        Ok((matches, image)) => {
            ctx.broker.publisher.publish(&image);
            filters
                .into_iter()
                .zip(matches)
                .map(|(f, m)| match f {
                    Ok(_) => filter_result(None, m.into_iter().map(|(_, b)| b).collect()),
                    Err(r) => filter_result(Some(r), Vec::new()),
                })
                .collect()
        }
        Err(e) => {
            let failure = super::proposal_refusal(&e, "ACL");
            filters
                .into_iter()
                .map(|f| {
                    filter_result(Some(f.err().unwrap_or_else(|| failure.clone())), Vec::new())
                })
                .collect()
        }
    };
    DeleteAclsResponse::default().with_filter_results(results)
}
