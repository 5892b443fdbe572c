//! DescribeClientQuotas (v0–v1) and AlterClientQuotas (v0–v1): the client quotas of the
//! metadata log (KIP-546), checked with Kafka's rules by `strom_quota::QuotaStore` and stored as
//! `ClientQuota` records. Describing needs DESCRIBE_CONFIGS on the cluster, altering
//! ALTER_CONFIGS (CLUSTER_AUTHORIZATION_FAILED otherwise).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_authorizer::AclOperation;
use strom_cluster::metadata::{MetadataRecord, QuotaEntityPart};
use strom_quota::{ErrorKind, QuotaEntity, QuotaError, QuotaFilter, QuotaOp};

use crate::handler::RequestContext;

/// Kafka's code for a quota error.
fn code_of(e: &QuotaError) -> ResponseError {
    match e.kind() {
        ErrorKind::InvalidRequest => ResponseError::InvalidRequest,
        ErrorKind::UnsupportedVersion => ResponseError::UnsupportedVersion,
        ErrorKind::ThrottlingQuotaExceeded => ResponseError::ThrottlingQuotaExceeded,
        ErrorKind::InvalidConfig => ResponseError::InvalidConfig,
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub(crate) fn describe(
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let failed = |e: ResponseError, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(e.code())
            .with_error_message(Some(StrBytes::from_string(message)))
            .with_entries(None)
    };
    if !ctx.authorized_cluster(AclOperation::DescribeConfigs) {
        return failed(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    let filter = QuotaFilter::from_wire(
        req.components.iter().map(|c| {
            (
                c.entity_type.as_str(),
                c.match_type,
                c._match.as_ref().map(|m| m.as_str()),
            )
        }),
        req.strict,
    );
    let filter = match filter {
        Ok(f) => f,
        Err(e) => return failed(code_of(&e), e.to_string()),
    };
    let entries = ctx
        .broker
        .quotas
        .store()
        .describe(&filter)
        .into_iter()
        .map(|d| {
            let entity = d
                .entity
                .components()
                .map(|(t, name)| {
                    EntityData::default()
                        .with_entity_type(s(t.name()))
                        .with_entity_name(name.as_wire().map(s))
                })
                .collect();
            let values = d
                .values
                .into_iter()
                .map(|(k, v)| ValueData::default().with_key(s(k.name())).with_value(v))
                .collect();
            EntryData::default().with_entity(entity).with_values(values)
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

/// One entry of an AlterClientQuotas request, checked: its records, or its refusal.
fn records_of(
    ctx: &RequestContext,
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
) -> Result<Vec<MetadataRecord>, (ResponseError, String)> {
    let entity = QuotaEntity::from_components(entry.entity.iter().map(|e| {
        (
            e.entity_type.as_str(),
            e.entity_name.as_ref().map(|n| n.as_str()),
        )
    }))
    .map_err(|e| (code_of(&e), e.to_string()))?;
    let ops: Vec<QuotaOp> = entry
        .ops
        .iter()
        .map(|op| match op.remove {
            true => QuotaOp::remove(op.key.as_str()),
            false => QuotaOp::set(op.key.as_str(), op.value),
        })
        .collect();
    let checked = ctx
        .broker
        .quotas
        .store()
        .validate(&entity, &ops)
        .map_err(|e| (code_of(&e), e.to_string()))?;
    let parts: Vec<QuotaEntityPart> = entity
        .components()
        .map(|(t, name)| QuotaEntityPart {
            entity_type: t.name().to_string(),
            entity_name: name.as_wire().map(str::to_string),
        })
        .collect();
    Ok(checked
        .changes()
        .iter()
        .map(|c| MetadataRecord::ClientQuota {
            entity: parts.clone(),
            key: c.key.name().to_string(),
            value: c.value.unwrap_or(0.0),
            remove: c.value.is_none(),
        })
        .collect())
}

pub(crate) async fn alter(
    ctx: RequestContext,
    req: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = ctx.authorized_cluster(AclOperation::AlterConfigs);
    let planned: Vec<Result<Vec<MetadataRecord>, (ResponseError, String)>> = req
        .entries
        .iter()
        .map(|e| match allowed {
            true => records_of(&ctx, e),
            false => Err((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".into(),
            )),
        })
        .collect();
    let records: Vec<MetadataRecord> = planned.iter().flatten().flatten().cloned().collect();
    let failure = if req.validate_only || records.is_empty() {
        None
    } else {
        match ctx.broker.metadata.propose(|_| (records.clone(), ())).await {
            Ok(((), image)) => {
                ctx.broker.publisher.publish(&image);
                None
            }
            Err(e) => Some(super::proposal_refusal(&e, "client quota")),
        }
    };
    let entries = req
        .entries
        .iter()
        .zip(planned)
        .map(|(e, p)| {
            let refusal = p.err().or_else(|| failure.clone());
            let (code, message) = match refusal {
                None => (0, None),
                Some((c, m)) => (c.code(), Some(StrBytes::from_string(m))),
            };
            AlteredEntry::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_entity(
                    e.entity
                        .iter()
                        .map(|x| {
                            AlteredEntity::default()
                                .with_entity_type(x.entity_type.clone())
                                .with_entity_name(x.entity_name.clone())
                        })
                        .collect(),
                )
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}
