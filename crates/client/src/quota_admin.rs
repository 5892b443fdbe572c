//! Client quota admin on [`Client`] (KIP-546): DescribeClientQuotas (API 48) and
//! AlterClientQuotas (API 49), shaped like Kafka's `ClientQuotaEntity`, `ClientQuotaFilter` and
//! `ClientQuotaAlteration`.
//!
//! An entity is a set of (type, name) parts: `user`, `client-id` and `ip`, alone or combined
//! (`user` + `client-id`). A `None` name is that type's default entity (Kafka's `<default>`, a
//! null name on the wire). As with ACLs, both requests go to any broker (Kafka's admin client
//! uses the least loaded node; the broker forwards alterations to the controller), and the
//! broker, not this client, judges keys and values.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, ApiKey, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::client::Client;
use crate::error::ClientError;

/// The user-principal entity type (Kafka's `ClientQuotaEntity.USER`).
pub const QUOTA_ENTITY_USER: &str = "user";
/// The client-id entity type (Kafka's `ClientQuotaEntity.CLIENT_ID`).
pub const QUOTA_ENTITY_CLIENT_ID: &str = "client-id";
/// The client-IP entity type (Kafka's `ClientQuotaEntity.IP`).
pub const QUOTA_ENTITY_IP: &str = "ip";

/// A quota entity (Kafka's `ClientQuotaEntity`): entity type → name, `None` for the type's
/// default. Ordered, so one entity has one spelling and can key a map.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientQuotaEntity(pub BTreeMap<String, Option<String>>);

impl ClientQuotaEntity {
    /// The entity of these `(type, name)` parts.
    pub fn new<T: Into<String>>(parts: impl IntoIterator<Item = (T, Option<String>)>) -> Self {
        ClientQuotaEntity(parts.into_iter().map(|(t, n)| (t.into(), n)).collect())
    }

    fn from_wire<'a>(
        parts: impl Iterator<Item = (&'a StrBytes, &'a Option<StrBytes>)>,
    ) -> ClientQuotaEntity {
        ClientQuotaEntity(
            parts
                .map(|(t, n)| (t.to_string(), n.as_ref().map(ToString::to_string)))
                .collect(),
        )
    }

    fn to_wire(&self) -> Vec<EntityData> {
        self.0
            .iter()
            .map(|(t, n)| {
                EntityData::default()
                    .with_entity_type(StrBytes::from_string(t.clone()))
                    .with_entity_name(n.clone().map(StrBytes::from_string))
            })
            .collect()
    }
}

/// How a filter component selects names of its entity type (DescribeClientQuotas `match_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientQuotaMatch {
    /// Exactly this name (Kafka's `ofEntity`, match type 0).
    Exact(String),
    /// The type's default entity (Kafka's `ofDefaultEntity`, match type 1).
    Default,
    /// Any entity that has this type, default or named (Kafka's `ofEntityType`, match type 2).
    Specified,
}

/// One component of a DescribeClientQuotas filter (Kafka's `ClientQuotaFilterComponent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientQuotaFilterComponent {
    /// `user`, `client-id` or `ip`.
    pub entity_type: String,
    /// Which names of that type.
    pub matches: ClientQuotaMatch,
}

impl ClientQuotaFilterComponent {
    fn to_wire(&self) -> ComponentData {
        let (match_type, name) = match &self.matches {
            ClientQuotaMatch::Exact(name) => (0, Some(StrBytes::from_string(name.clone()))),
            ClientQuotaMatch::Default => (1, None),
            ClientQuotaMatch::Specified => (2, None),
        };
        ComponentData::default()
            .with_entity_type(StrBytes::from_string(self.entity_type.clone()))
            .with_match_type(match_type)
            .with_match(name)
    }
}

/// The changes to one entity's quotas (Kafka's `ClientQuotaAlteration`): `(key, Some(value))`
/// sets, `(key, None)` removes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientQuotaAlteration {
    /// The entity altered.
    pub entity: ClientQuotaEntity,
    /// `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
    /// `controller_mutation_rate`, `connection_creation_rate` (ip only) → value or removal.
    pub ops: Vec<(String, Option<f64>)>,
}

/// Quota values by key, per entity.
pub type ClientQuotas = BTreeMap<ClientQuotaEntity, BTreeMap<String, f64>>;

impl Client {
    /// The quotas of the entities that match every component (DescribeClientQuotas). With
    /// `strict`, only entities with no other entity types than the components name (Kafka's
    /// `ClientQuotaFilter.containsOnly`); without, entities that also have other parts (Kafka's
    /// `contains`). No components and not strict: every entity with a quota.
    pub async fn describe_client_quotas(
        &self,
        components: &[ClientQuotaFilterComponent],
        strict: bool,
    ) -> Result<ClientQuotas, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::DescribeClientQuotas)?;
        let request = DescribeClientQuotasRequest::default()
            .with_components(components.iter().map(|c| c.to_wire()).collect())
            .with_strict(strict);
        let response = conn.send(version, &request).await?;
        if response.error_code != 0 {
            return Err(ClientError::broker(
                "describe client quotas",
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        let mut out = ClientQuotas::new();
        for entry in response.entries.unwrap_or_default() {
            let entity = ClientQuotaEntity::from_wire(
                entry
                    .entity
                    .iter()
                    .map(|e| (&e.entity_type, &e.entity_name)),
            );
            let values = out.entry(entity).or_default();
            values.extend(entry.values.iter().map(|v| (v.key.to_string(), v.value)));
        }
        Ok(out)
    }

    /// Applies `alterations` in one AlterClientQuotas request (`validate_only`: checked, not
    /// applied). Each entity gets its result: `Ok`, or the broker's error (INVALID_REQUEST for
    /// an unknown key or a bad value, CLUSTER_AUTHORIZATION_FAILED without ALTER_CONFIGS on the
    /// cluster). A request-level failure is the outer `Err`.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[ClientQuotaAlteration],
        validate_only: bool,
    ) -> Result<BTreeMap<ClientQuotaEntity, Result<(), ClientError>>, ClientError> {
        let mut out = BTreeMap::new();
        if alterations.is_empty() {
            return Ok(out);
        }
        let conn = self.any_connection().await?;
        let version = conn.version(ApiKey::AlterClientQuotas)?;
        let request = AlterClientQuotasRequest::default()
            .with_validate_only(validate_only)
            .with_entries(
                alterations
                    .iter()
                    .map(|a| {
                        EntryData::default()
                            .with_entity(a.entity.to_wire())
                            .with_ops(
                                a.ops
                                    .iter()
                                    .map(|(key, value)| {
                                        OpData::default()
                                            .with_key(StrBytes::from_string(key.clone()))
                                            .with_value(value.unwrap_or(0.0))
                                            .with_remove(value.is_none())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = conn.send(version, &request).await?;
        for entry in response.entries {
            let entity = ClientQuotaEntity::from_wire(
                entry
                    .entity
                    .iter()
                    .map(|e| (&e.entity_type, &e.entity_name)),
            );
            let result = if entry.error_code == 0 {
                Ok(())
            } else {
                Err(ClientError::broker(
                    format!("alter client quotas of {}", entity_text(&entity)),
                    entry.error_code,
                    entry.error_message.as_deref(),
                ))
            };
            out.insert(entity, result);
        }
        for a in alterations {
            out.entry(a.entity.clone()).or_insert_with(|| {
                Err(ClientError::broker(
                    format!("alter client quotas of {}", entity_text(&a.entity)),
                    ResponseError::UnknownServerError.code(),
                    Some("the entity is missing from the response"),
                ))
            });
        }
        Ok(out)
    }
}

/// An entity as kafka-configs names it: `user-principal 'alice', client-id 'app'`, or
/// `the default user-principal` (parts in Kafka's order: user, client-id, ip, then others).
pub fn entity_text(entity: &ClientQuotaEntity) -> String {
    let order = [QUOTA_ENTITY_USER, QUOTA_ENTITY_CLIENT_ID, QUOTA_ENTITY_IP];
    let rank = |t: &str| order.iter().position(|o| *o == t).unwrap_or(order.len());
    let mut parts: Vec<(&String, &Option<String>)> = entity.0.iter().collect();
    parts.sort_by_key(|(t, _)| rank(t));
    parts
        .into_iter()
        .map(|(t, n)| {
            let t = if t == QUOTA_ENTITY_USER {
                "user-principal"
            } else {
                t.as_str()
            };
            match n {
                Some(name) => format!("{t} '{name}'"),
                None => format!("the default {t}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_named_like_kafka_configs() {
        let e = ClientQuotaEntity::new([
            (QUOTA_ENTITY_CLIENT_ID, Some("app".to_owned())),
            (QUOTA_ENTITY_USER, None),
        ]);
        assert_eq!(
            entity_text(&e),
            "the default user-principal, client-id 'app'"
        );
        let e = ClientQuotaEntity::new([(QUOTA_ENTITY_IP, Some("10.0.0.1".to_owned()))]);
        assert_eq!(entity_text(&e), "ip '10.0.0.1'");
    }

    #[test]
    fn filter_components_use_kafkas_match_types() {
        let c = |matches| {
            ClientQuotaFilterComponent {
                entity_type: QUOTA_ENTITY_USER.to_owned(),
                matches,
            }
            .to_wire()
        };
        let exact = c(ClientQuotaMatch::Exact("alice".to_owned()));
        assert_eq!(
            (exact.match_type, exact._match.as_deref()),
            (0, Some("alice"))
        );
        let default = c(ClientQuotaMatch::Default);
        assert_eq!((default.match_type, default._match), (1, None));
        let any = c(ClientQuotaMatch::Specified);
        assert_eq!((any.match_type, any._match), (2, None));
    }

    #[test]
    fn a_default_entity_is_a_null_name_on_the_wire() {
        let e = ClientQuotaEntity::new([
            (QUOTA_ENTITY_USER, None),
            (QUOTA_ENTITY_CLIENT_ID, Some("app".to_owned())),
        ]);
        let wire = e.to_wire();
        let parts: Vec<(&str, Option<&str>)> = wire
            .iter()
            .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref()))
            .collect();
        assert_eq!(parts, vec![("client-id", Some("app")), ("user", None)]);
        let back =
            ClientQuotaEntity::from_wire(wire.iter().map(|p| (&p.entity_type, &p.entity_name)));
        assert_eq!(back, e);
    }
}
