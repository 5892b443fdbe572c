//! DescribeUserScramCredentials (v0) and AlterUserScramCredentials (v0): the SCRAM credentials
//! kept in the metadata log (KIP-554). The client salts the password itself (PBKDF2), so only
//! the salted password reaches the broker, which derives StoredKey and ServerKey from it and
//! proposes Kafka's `UserScramCredentialRecord` / `RemoveUserScramCredentialRecord`.
//!
//! Kafka's answers: a user named twice → DUPLICATE_RESOURCE; an unknown mechanism →
//! UNSUPPORTED_SASL_MECHANISM; iterations outside 4096..=16384 or an empty salt →
//! UNACCEPTABLE_CREDENTIAL; describing or deleting what does not exist → RESOURCE_NOT_FOUND.
//! One result per user; a user's alterations apply together or not at all. Describing needs
//! DESCRIBE on the cluster, altering ALTER.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use strom_cluster::metadata::{scram_mechanism_of_type, scram_mechanism_type, MetadataRecord};
use strom_cluster::QuorumError;
use strom_security::{ScramCredential, ScramMechanism};

use strom_authorizer::AclOperation;

use crate::handler::RequestContext;

/// A per-user failure: Kafka's code and message.
type Refusal = (ResponseError, String);

fn refusal(code: ResponseError, message: &str) -> Refusal {
    (code, message.to_string())
}

pub(crate) fn describe(
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Kafka: DESCRIBE on the cluster.
    if !ctx.authorized_cluster(AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let image = ctx.broker.metadata.image();
    // Null or empty: every user that has a credential.
    let users: Vec<String> = match req.users {
        Some(users) if !users.is_empty() => users.into_iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram_users().map(str::to_string).collect(),
    };
    let mut seen = HashSet::new();
    let duplicated: HashSet<String> = users
        .iter()
        .filter(|u| !seen.insert(u.as_str()))
        .cloned()
        .collect();
    let mut answered = HashSet::new();
    let results = users
        .into_iter()
        .filter(|u| answered.insert(u.clone()))
        .map(|user| {
            let infos: Vec<CredentialInfo> = image
                .scram_credential_infos(&user)
                .map(|i| {
                    CredentialInfo::default()
                        .with_mechanism(scram_mechanism_type(i.mechanism))
                        .with_iterations(i.iterations)
                })
                .collect();
            let failure = if duplicated.contains(&user) {
                Some(refusal(
                    ResponseError::DuplicateResource,
                    "Cannot describe SCRAM credentials for the same user twice in a single request",
                ))
            } else if infos.is_empty() {
                Some(refusal(
                    ResponseError::ResourceNotFound,
                    "Attempt to describe a user credential that does not exist",
                ))
            } else {
                None
            };
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user));
            match failure {
                Some((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                None => result.with_credential_infos(infos),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

/// One requested alteration of a user's credential.
enum Change {
    Delete,
    Upsert {
        iterations: i32,
        salt: Bytes,
        salted_password: Bytes,
    },
}

/// The record an alteration proposes, or why it is refused before the image is consulted.
fn record_of(user: &str, mechanism: i8, change: Change) -> Result<MetadataRecord, Refusal> {
    if user.is_empty() {
        return Err(refusal(
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    let Some(m) = scram_mechanism_of_type(mechanism) else {
        return Err(refusal(
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        ));
    };
    let record = match change {
        Change::Delete => MetadataRecord::RemoveUserScramCredential {
            name: user.to_string(),
            mechanism,
        },
        Change::Upsert {
            iterations,
            salt,
            salted_password,
        } => {
            let iterations = u32::try_from(iterations).unwrap_or(0);
            if iterations < ScramMechanism::MIN_ITERATIONS {
                return Err(refusal(
                    ResponseError::UnacceptableCredential,
                    "Too few iterations",
                ));
            }
            if iterations > ScramMechanism::MAX_ITERATIONS {
                return Err(refusal(
                    ResponseError::UnacceptableCredential,
                    "Too many iterations",
                ));
            }
            if salt.is_empty() || salted_password.is_empty() {
                return Err(refusal(
                    ResponseError::UnacceptableCredential,
                    "The salt and the salted password must not be empty",
                ));
            }
            let credential = ScramCredential::from_salted_password(
                m,
                &salted_password,
                iterations,
                salt.to_vec(),
            );
            MetadataRecord::user_scram_credential(user, m, &credential)
        }
    };
    // The metadata rules (name length, control characters, salt size) answer here, per user,
    // rather than refusing the whole proposal.
    record
        .validate()
        .map_err(|e| (ResponseError::UnacceptableCredential, e.to_string()))?;
    Ok(record)
}

/// The error a failed proposal answers every user with.
fn proposal_failure(e: &QuorumError) -> Refusal {
    let code = match e {
        QuorumError::Invalid(_) | QuorumError::TooLarge { .. } => {
            tracing::info!(error = %e, "SCRAM credential change refused");
            ResponseError::UnacceptableCredential
        }
        QuorumError::NoController(_) => ResponseError::NotController,
        QuorumError::TimedOut { .. } => ResponseError::RequestTimedOut,
        _ => {
            tracing::error!(error = %e, "SCRAM credential change not written");
            ResponseError::UnknownServerError
        }
    };
    (code, e.to_string())
}

pub(crate) async fn alter(
    ctx: RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Kafka: ALTER on the cluster; refused, every user named says so.
    if !ctx.authorized_cluster(AclOperation::Alter) {
        let mut users: Vec<String> = Vec::new();
        let names = req.deletions.iter().map(|d| &d.name);
        for name in names.chain(req.upsertions.iter().map(|u| &u.name)) {
            if !users.iter().any(|u| u == name.as_str()) {
                users.push(name.to_string());
            }
        }
        let results = users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(u))
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    // Users in the order they first appear; each with its records or its refusal.
    let mut order: Vec<String> = Vec::new();
    let mut per_user: BTreeMap<String, Result<Vec<MetadataRecord>, Refusal>> = BTreeMap::new();
    let mut seen: HashSet<(String, i8)> = HashSet::new();
    let changes = req
        .deletions
        .into_iter()
        .map(|d| (d.name.to_string(), d.mechanism, Change::Delete))
        .chain(req.upsertions.into_iter().map(|u| {
            let change = Change::Upsert {
                iterations: u.iterations,
                salt: u.salt,
                salted_password: u.salted_password,
            };
            (u.name.to_string(), u.mechanism, change)
        }));
    for (user, mechanism, change) in changes {
        let duplicate = !seen.insert((user.clone(), mechanism));
        let entry = per_user.entry(user.clone()).or_insert_with(|| {
            order.push(user.clone());
            Ok(Vec::new())
        });
        let Ok(records) = entry else { continue };
        if duplicate {
            *entry = Err(refusal(
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ));
            continue;
        }
        match record_of(&user, mechanism, change) {
            Ok(r) => records.push(r),
            Err(refusal) => *entry = Err(refusal),
        }
    }
    // Deletions of what does not exist are refused on the image the proposal is decided on.
    let decided = ctx
        .broker
        .metadata
        .propose(|image| {
            let mut records = Vec::new();
            let mut outcome = BTreeMap::new();
            for (user, planned) in &per_user {
                let result = planned.clone().and_then(|rs| {
                    let missing = rs.iter().any(|r| match r {
                        MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                            scram_mechanism_of_type(*mechanism)
                                .and_then(|m| image.scram_credential(m, name))
                                .is_none()
                        }
                        _ => false,
                    });
                    if missing {
                        Err(refusal(
                            ResponseError::ResourceNotFound,
                            "Attempt to delete a user credential that does not exist",
                        ))
                    } else {
                        Ok(rs)
                    }
                });
                match result {
                    Ok(rs) => {
                        records.extend(rs);
                        outcome.insert(user.clone(), None);
                    }
                    Err(refusal) => {
                        outcome.insert(user.clone(), Some(refusal));
                    }
                }
            }
            (records, outcome)
        })
        .await;
    let outcome: BTreeMap<String, Option<Refusal>> = match decided {
        Ok((outcome, _image)) => outcome,
        Err(e) => {
            let failure = proposal_failure(&e);
            order
                .iter()
                .map(|u| {
                    let refused = per_user.get(u).and_then(|r| r.clone().err());
                    (u.clone(), Some(refused.unwrap_or_else(|| failure.clone())))
                })
                .collect()
        }
    };
    let results = order
        .into_iter()
        .map(|user| {
            let failure = outcome.get(&user).cloned().flatten();
            let result =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match failure {
                Some((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
                None => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
