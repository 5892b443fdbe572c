//! [`QuotaStore`]: the configured client quotas (entity → key → value), altered with
//! AlterClientQuotas semantics and read with DescribeClientQuotas filters.
//!
//! Altering is split as Kafka's controller splits it: [`QuotaStore::validate`] checks an
//! alteration against the current state and yields only the changes that would do something
//! (setting an unchanged value or removing an absent key yields none), which the broker can turn
//! into metadata records or drop for `validate_only`; [`QuotaStore::apply`] and
//! [`QuotaStore::replay`] apply changes. An entity whose last key is removed disappears.
//!
//! Not thread-safe by itself: the broker keeps one in its metadata image and hands managers a
//! reference on every change ([`crate::QuotaManager::update_quotas`]).

use std::collections::BTreeMap;

use crate::entity::QuotaEntity;
use crate::error::QuotaError;
use crate::filter::QuotaFilter;
use crate::key::QuotaKey;

/// One operation of an alteration: set `key` to `value`, or remove it (`value: None`), as Kafka's
/// `ClientQuotaAlteration.Op`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaOp {
    /// The key, as sent (checked by [`QuotaStore::validate`]).
    pub key: String,
    /// The new value, or `None` to remove the key.
    pub value: Option<f64>,
}

impl QuotaOp {
    /// Set `key` to `value`.
    pub fn set(key: impl Into<String>, value: f64) -> QuotaOp {
        QuotaOp {
            key: key.into(),
            value: Some(value),
        }
    }

    /// Remove `key`.
    pub fn remove(key: impl Into<String>) -> QuotaOp {
        QuotaOp {
            key: key.into(),
            value: None,
        }
    }
}

/// One effective change: what a Kafka `ClientQuotaRecord` carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaChange {
    /// The key.
    pub key: QuotaKey,
    /// The new value, or `None` for removal.
    pub value: Option<f64>,
}

/// An alteration that passed validation: the entity and its effective changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedAlteration {
    entity: QuotaEntity,
    changes: Vec<QuotaChange>,
}

impl ValidatedAlteration {
    /// The entity altered.
    pub fn entity(&self) -> &QuotaEntity {
        &self.entity
    }

    /// The changes that do something, in the order of the ops.
    pub fn changes(&self) -> &[QuotaChange] {
        &self.changes
    }
}

/// One entry of a describe answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribedQuotas {
    /// The entity.
    pub entity: QuotaEntity,
    /// Its keys and values, in key order.
    pub values: Vec<(QuotaKey, f64)>,
}

/// The configured quotas.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaStore {
    entities: BTreeMap<QuotaEntity, BTreeMap<QuotaKey, f64>>,
}

impl QuotaStore {
    /// An empty store.
    pub fn new() -> QuotaStore {
        QuotaStore::default()
    }

    /// Checks an alteration as Kafka's `ClientQuotaControlManager` does, in its order: no key
    /// twice, a valid entity, then each op: a set needs a key valid for the entity's type and a
    /// valid value; a remove of a key the entity does not have (even an unknown key) does nothing.
    pub fn validate(
        &self,
        entity: &QuotaEntity,
        ops: &[QuotaOp],
    ) -> Result<ValidatedAlteration, QuotaError> {
        for (i, op) in ops.iter().enumerate() {
            if ops[..i].iter().any(|earlier| earlier.key == op.key) {
                return Err(QuotaError::DuplicateKey {
                    key: op.key.clone(),
                    entity: entity.to_string(),
                });
            }
        }
        entity.validate()?;
        let current = self.entities.get(entity);
        let mut changes = Vec::with_capacity(ops.len());
        for op in ops {
            match op.value {
                None => {
                    let present = QuotaKey::parse(&op.key)
                        .ok()
                        .filter(|key| current.is_some_and(|c| c.contains_key(key)));
                    if let Some(key) = present {
                        changes.push(QuotaChange { key, value: None });
                    }
                }
                Some(value) => {
                    let key = QuotaKey::parse(&op.key)?;
                    if key.is_ip_key() != entity.is_ip() {
                        return Err(QuotaError::InvalidKey(op.key.clone()));
                    }
                    let value = key.validate_value(value)?;
                    if current.and_then(|c| c.get(&key)) != Some(&value) {
                        changes.push(QuotaChange {
                            key,
                            value: Some(value),
                        });
                    }
                }
            }
        }
        Ok(ValidatedAlteration {
            entity: entity.clone(),
            changes,
        })
    }

    /// Applies validated changes.
    pub fn apply(&mut self, alteration: &ValidatedAlteration) {
        for change in &alteration.changes {
            self.replay(&alteration.entity, change.key, change.value);
        }
    }

    /// Validates, then applies; returns what changed.
    pub fn alter(
        &mut self,
        entity: &QuotaEntity,
        ops: &[QuotaOp],
    ) -> Result<ValidatedAlteration, QuotaError> {
        let alteration = self.validate(entity, ops)?;
        self.apply(&alteration);
        Ok(alteration)
    }

    /// Applies one change without checks, as replaying a `ClientQuotaRecord` from the metadata
    /// log: set, or remove (dropping the entity when it has no key left).
    pub fn replay(&mut self, entity: &QuotaEntity, key: QuotaKey, value: Option<f64>) {
        match value {
            Some(value) => {
                self.entities
                    .entry(entity.clone())
                    .or_default()
                    .insert(key, value);
            }
            None => {
                if let Some(values) = self.entities.get_mut(entity) {
                    values.remove(&key);
                    if values.is_empty() {
                        self.entities.remove(entity);
                    }
                }
            }
        }
    }

    /// The value of `key` for exactly `entity`, if set.
    pub fn get(&self, entity: &QuotaEntity, key: QuotaKey) -> Option<f64> {
        self.entities.get(entity)?.get(&key).copied()
    }

    /// All keys set for exactly `entity`.
    pub fn quotas(&self, entity: &QuotaEntity) -> Option<&BTreeMap<QuotaKey, f64>> {
        self.entities.get(entity)
    }

    /// Every entity with its keys, in entity order.
    pub fn iter(&self) -> impl Iterator<Item = (&QuotaEntity, &BTreeMap<QuotaKey, f64>)> {
        self.entities.iter()
    }

    /// How many entities have at least one key.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no quota is configured at all.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// DescribeClientQuotas: every entity the filter matches, with all its keys.
    pub fn describe(&self, filter: &QuotaFilter) -> Vec<DescribedQuotas> {
        self.entities
            .iter()
            .filter(|(entity, _)| filter.matches(entity))
            .map(|(entity, values)| DescribedQuotas {
                entity: entity.clone(),
                values: values.iter().map(|(k, v)| (*k, *v)).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::EntityName;

    fn named(n: &str) -> EntityName {
        EntityName::named(n)
    }

    fn ok<T>(r: Result<T, QuotaError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn set_then_remove_drops_the_entity() {
        let mut store = QuotaStore::new();
        let alice = QuotaEntity::user(named("alice"));
        let done = ok(store.alter(
            &alice,
            &[
                QuotaOp::set("producer_byte_rate", 1024.0),
                QuotaOp::set("request_percentage", 50.0),
            ],
        ));
        assert_eq!(done.changes().len(), 2);
        assert_eq!(store.get(&alice, QuotaKey::ProducerByteRate), Some(1024.0));

        ok(store.alter(&alice, &[QuotaOp::remove("producer_byte_rate")]));
        assert_eq!(store.get(&alice, QuotaKey::ProducerByteRate), None);
        assert_eq!(store.len(), 1);
        ok(store.alter(&alice, &[QuotaOp::remove("request_percentage")]));
        assert!(store.is_empty());
    }

    #[test]
    fn only_effective_changes_are_reported() {
        let mut store = QuotaStore::new();
        let app = QuotaEntity::client_id(named("app"));
        ok(store.alter(&app, &[QuotaOp::set("consumer_byte_rate", 2048.0)]));
        let again = ok(store.validate(
            &app,
            &[
                QuotaOp::set("consumer_byte_rate", 2048.0),
                QuotaOp::remove("producer_byte_rate"),
                QuotaOp::remove("no_such_key"),
            ],
        ));
        assert!(again.changes().is_empty());
    }

    #[test]
    fn validate_does_not_apply() {
        let store = QuotaStore::new();
        let app = QuotaEntity::client_id(named("app"));
        let v = ok(store.validate(&app, &[QuotaOp::set("consumer_byte_rate", 2048.0)]));
        assert_eq!(v.changes().len(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn invalid_alterations_are_refused_whole() {
        let mut store = QuotaStore::new();
        let alice = QuotaEntity::user(named("alice"));
        let err = store.alter(
            &alice,
            &[
                QuotaOp::set("producer_byte_rate", 1024.0),
                QuotaOp::set("producer_byte_rate", 2048.0),
            ],
        );
        assert!(matches!(err, Err(QuotaError::DuplicateKey { .. })));
        let err = store.alter(
            &alice,
            &[
                QuotaOp::set("producer_byte_rate", 1024.0),
                QuotaOp::set("consumer_byte_rate", 10.5),
            ],
        );
        assert_eq!(err, Err(QuotaError::Fractional("consumer_byte_rate")));
        assert!(store.is_empty(), "nothing of a refused alteration applies");

        assert_eq!(
            store.alter(&alice, &[QuotaOp::set("bogus", 1.0)]),
            Err(QuotaError::InvalidKey("bogus".into()))
        );
        assert_eq!(
            store.alter(&alice, &[QuotaOp::set("controller_mutation_rate", 0.0)]),
            Err(QuotaError::NotPositive("controller_mutation_rate"))
        );
        assert_eq!(
            store.alter(&alice, &[QuotaOp::set("connection_creation_rate", 10.0)]),
            Err(QuotaError::InvalidKey("connection_creation_rate".into()))
        );
        let ip = QuotaEntity::ip(named("10.0.0.1"));
        assert_eq!(
            store.alter(&ip, &[QuotaOp::set("producer_byte_rate", 10.0)]),
            Err(QuotaError::InvalidKey("producer_byte_rate".into()))
        );
        ok(store.alter(&ip, &[QuotaOp::set("connection_creation_rate", 10.0)]));
        let empty_name = QuotaEntity::user(named(""));
        assert!(matches!(
            store.alter(&empty_name, &[QuotaOp::set("producer_byte_rate", 10.0)]),
            Err(QuotaError::EmptyEntityName(_))
        ));
    }

    /// Kafka's `ClientQuotasRequestTest` entity set, with its expected match counts.
    #[test]
    fn describe_filters_as_kafka() {
        let mut store = QuotaStore::new();
        let n = |s: Option<&str>| s.map_or(EntityName::Default, named);
        let entities = [
            (Some(Some("user-1")), Some(Some("client-id-1"))),
            (Some(Some("user-2")), Some(Some("client-id-1"))),
            (Some(Some("user-3")), Some(Some("client-id-2"))),
            (Some(None), Some(Some("client-id-1"))),
            (Some(Some("user-1")), Some(None)),
            (Some(Some("user-3")), Some(None)),
            (Some(Some("user-1")), None),
            (Some(Some("user-2")), None),
            (Some(Some("user-3")), None),
            (Some(None), None),
            (None, Some(Some("client-id-2"))),
        ];
        for (u, c) in entities {
            let entity = match (u, c) {
                (Some(u), Some(c)) => QuotaEntity::user_client_id(n(u), n(c)),
                (Some(u), None) => QuotaEntity::user(n(u)),
                (None, Some(c)) => QuotaEntity::client_id(n(c)),
                (None, None) => unreachable!("no empty entity in the list"),
            };
            ok(store.alter(&entity, &[QuotaOp::set("request_percentage", 50.0)]));
        }
        ok(store.alter(
            &QuotaEntity::ip(named("10.0.0.1")),
            &[QuotaOp::set("connection_creation_rate", 5.0)],
        ));
        let count = |components: &[(&str, i8, Option<&str>)], strict: bool| {
            let filter = ok(QuotaFilter::from_wire(components.iter().copied(), strict));
            store.describe(&filter).len()
        };
        assert_eq!(count(&[("user", 0, Some("user-1"))], false), 3);
        assert_eq!(count(&[("user", 0, Some("unknown"))], false), 0);
        assert_eq!(count(&[("client-id", 0, Some("client-id-2"))], false), 2);
        assert_eq!(count(&[("user", 1, None)], false), 2);
        assert_eq!(count(&[("user", 0, Some("user-2"))], true), 1);
        assert_eq!(count(&[("client-id", 0, Some("client-id-1"))], true), 0);
        assert_eq!(count(&[("user", 2, None)], true), 4);
        assert_eq!(count(&[("user", 2, None)], false), 10);
        assert_eq!(count(&[("client-id", 2, None)], true), 1);
        assert_eq!(count(&[("client-id", 2, None)], false), 7);
        assert_eq!(count(&[], false), 12);
        assert_eq!(count(&[], true), 0);
        assert_eq!(count(&[("ip", 2, None)], false), 1);
        assert_eq!(
            count(
                &[("user", 1, None), ("client-id", 0, Some("client-id-1"))],
                true
            ),
            1
        );

        let described = store.describe(&ok(QuotaFilter::from_wire(
            [("user", 0, Some("user-2")), ("client-id", 2, None)],
            true,
        )));
        assert_eq!(
            described,
            vec![DescribedQuotas {
                entity: QuotaEntity::user_client_id(named("user-2"), named("client-id-1")),
                values: vec![(QuotaKey::RequestPercentage, 50.0)],
            }]
        );
    }
}
