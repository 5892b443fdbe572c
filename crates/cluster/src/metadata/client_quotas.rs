//! Client quotas as the metadata holds them (Kafka's `ClientQuotaRecord`, KIP-546): per entity
//! (user, client-id, ip, or a combination; a missing name is the entity type's default) the
//! quota values by key (`producer_byte_rate`, ...).
//!
//! Shared behind an `Arc` like the ACLs: quotas change rarely and the image is copied often.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The entity types Kafka's quota records name.
pub const QUOTA_ENTITY_TYPES: &[&str] = &["user", "client-id", "ip"];

/// One part of a quota entity: its type and name (`None`: the type's default, Kafka's
/// `<default>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntityPart {
    /// `user`, `client-id` or `ip`.
    pub entity_type: String,
    /// The name, or `None` for the default entity of that type.
    pub entity_name: Option<String>,
}

/// A quota entity: its parts sorted by type (so one entity has one key).
pub type QuotaEntity = Vec<QuotaEntityPart>;

/// Every quota of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClientQuotas {
    by_entity: Arc<BTreeMap<QuotaEntity, BTreeMap<String, f64>>>,
}

impl ClientQuotas {
    /// Each entity with its values, in entity order.
    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<String, f64>)> {
        self.by_entity.iter()
    }
    /// One entity's values.
    pub fn get(&self, entity: &QuotaEntity) -> Option<&BTreeMap<String, f64>> {
        self.by_entity.get(entity)
    }
    /// How many entities have quotas.
    pub fn len(&self) -> usize {
        self.by_entity.len()
    }
    /// True when no quota is set.
    pub fn is_empty(&self) -> bool {
        self.by_entity.is_empty()
    }
    /// True when both are the same set without comparing them (see `Acls::same_as`).
    pub fn same_as(&self, other: &ClientQuotas) -> bool {
        Arc::ptr_eq(&self.by_entity, &other.by_entity)
    }
    /// Sets (`Some`) or removes (`None`) `key` of `entity`; an entity left without keys is gone.
    pub(crate) fn set(&mut self, entity: &[QuotaEntityPart], key: &str, value: Option<f64>) {
        let mut entity = entity.to_vec();
        entity.sort();
        let map = Arc::make_mut(&mut self.by_entity);
        match value {
            Some(v) => {
                map.entry(entity).or_default().insert(key.to_string(), v);
            }
            None => {
                if let Some(values) = map.get_mut(&entity) {
                    values.remove(key);
                    if values.is_empty() {
                        map.remove(&entity);
                    }
                }
            }
        }
    }
}

impl Serialize for ClientQuotas {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.by_entity.iter())
    }
}

impl<'de> Deserialize<'de> for ClientQuotas {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ClientQuotas, D::Error> {
        let entries: Vec<(QuotaEntity, BTreeMap<String, f64>)> = Vec::deserialize(d)?;
        Ok(ClientQuotas {
            by_entity: Arc::new(entries.into_iter().collect()),
        })
    }
}
