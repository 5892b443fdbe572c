//! ACLs and SCRAM users, read-only. A cluster without an authorizer answers DescribeAcls with
//! SECURITY_DISABLED: the page says "no authorizer" rather than failing.

use axum::Json;
use serde::Serialize;
use strom_client::{AclBindingFilter, KafkaErrorName};

use super::ApiResult;
use crate::state::Kafka;

#[derive(Serialize)]
struct Acl {
    resource_type: String,
    name: String,
    pattern_type: String,
    principal: String,
    host: String,
    operation: String,
    permission: String,
}

#[derive(Serialize)]
pub(crate) struct Acls {
    /// False when the cluster has no authorizer (SECURITY_DISABLED).
    enabled: bool,
    acls: Vec<Acl>,
}

pub(crate) async fn acls(kafka: Kafka) -> ApiResult<Acls> {
    let client = kafka.client().await?;
    let bindings = match client.describe_acls(&AclBindingFilter::any()).await {
        Ok(b) => b,
        Err(e)
            if e.kafka_code()
                .map(|c| KafkaErrorName(c).to_string())
                .as_deref()
                == Some("SECURITY_DISABLED") =>
        {
            return Ok(Json(Acls {
                enabled: false,
                acls: Vec::new(),
            }))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Json(Acls {
        enabled: true,
        acls: bindings
            .into_iter()
            .map(|b| Acl {
                resource_type: b.pattern.resource_type.to_string(),
                name: b.pattern.name,
                pattern_type: b.pattern.pattern_type.to_string(),
                principal: b.entry.principal,
                host: b.entry.host,
                operation: b.entry.operation.to_string(),
                permission: b.entry.permission.to_string(),
            })
            .collect(),
    }))
}

#[derive(Serialize)]
struct Credential {
    mechanism: String,
    iterations: i32,
}

#[derive(Serialize)]
pub(crate) struct User {
    name: String,
    credentials: Vec<Credential>,
    error: Option<String>,
}

pub(crate) async fn users(kafka: Kafka) -> ApiResult<Vec<User>> {
    let client = kafka.client().await?;
    let users = client.describe_user_scram_credentials(None).await?;
    Ok(Json(
        users
            .into_iter()
            .map(|(name, result)| match result {
                Ok(creds) => User {
                    name,
                    credentials: creds
                        .into_iter()
                        .map(|c| Credential {
                            mechanism: format!("{:?}", c.mechanism),
                            iterations: c.iterations,
                        })
                        .collect(),
                    error: None,
                },
                Err(e) => User {
                    name,
                    credentials: Vec::new(),
                    error: Some(e.to_string()),
                },
            })
            .collect(),
    ))
}
