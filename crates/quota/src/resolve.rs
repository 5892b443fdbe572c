//! [`QuotaTable`]: the quotas of one key, indexed for KIP-55's precedence, and
//! [`QuotaTable::resolve`]: which of them applies to a connection and which sensor it shares.
//!
//! For a connection of user U with client id C, the first configured entity wins:
//!
//! | level | entity                              | sensor tags (user, client-id) |
//! |-------|-------------------------------------|-------------------------------|
//! | 1     | `/users/U/clients/C`                | (U, C)                        |
//! | 2     | `/users/U/clients/<default>`        | (U, C)                        |
//! | 3     | `/users/U`                          | (U, "")                       |
//! | 4     | `/users/<default>/clients/C`        | (U, C)                        |
//! | 5     | `/users/<default>/clients/<default>`| (U, C)                        |
//! | 6     | `/users/<default>`                  | (U, "")                       |
//! | 7     | `/clients/C`                        | ("", C)                       |
//! | 8     | `/clients/<default>`                | ("", C)                       |
//! | none  |                                     | ("", C)                       |
//!
//! The tags are Kafka's `DefaultQuotaCallback.quotaMetricTags`: connections with the same tags
//! share one sensor, hence one rate. A user-level quota (3, 6) is shared by all client ids of the
//! user; a default-client quota under a user (2, 5) is per client id, not shared. Kafka skips the
//! chain when only one level of entity is configured; the chain gives the same tags whenever a
//! quota applies, and differs only for connections no quota applies to, which are never throttled.
//! User tags carry the principal name as is (Kafka URL-encodes it for JMX).
//!
//! Lookups borrow the connection's strings: resolving allocates nothing.

use std::collections::HashMap;

use crate::entity::{EntityName, QuotaEntity};
use crate::key::QuotaKey;
use crate::store::QuotaStore;

/// A precedence level of KIP-55, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaLevel {
    /// 1: `/users/<user>/clients/<client-id>`.
    UserClientId,
    /// 2: `/users/<user>/clients/<default>`.
    UserDefaultClientId,
    /// 3: `/users/<user>`.
    User,
    /// 4: `/users/<default>/clients/<client-id>`.
    DefaultUserClientId,
    /// 5: `/users/<default>/clients/<default>`.
    DefaultUserDefaultClientId,
    /// 6: `/users/<default>`.
    DefaultUser,
    /// 7: `/clients/<client-id>`.
    ClientId,
    /// 8: `/clients/<default>`.
    DefaultClientId,
}

impl QuotaLevel {
    /// The level's number in KIP-55's list (1 = most specific).
    pub fn precedence(self) -> u8 {
        match self {
            QuotaLevel::UserClientId => 1,
            QuotaLevel::UserDefaultClientId => 2,
            QuotaLevel::User => 3,
            QuotaLevel::DefaultUserClientId => 4,
            QuotaLevel::DefaultUserDefaultClientId => 5,
            QuotaLevel::DefaultUser => 6,
            QuotaLevel::ClientId => 7,
            QuotaLevel::DefaultClientId => 8,
        }
    }

    /// The configured entity this level reads for `user`/`client_id`.
    pub fn entity(self, user: &str, client_id: &str) -> QuotaEntity {
        let u = || EntityName::named(user);
        let c = || EntityName::named(client_id);
        let d = || EntityName::Default;
        match self {
            QuotaLevel::UserClientId => QuotaEntity::user_client_id(u(), c()),
            QuotaLevel::UserDefaultClientId => QuotaEntity::user_client_id(u(), d()),
            QuotaLevel::User => QuotaEntity::user(u()),
            QuotaLevel::DefaultUserClientId => QuotaEntity::user_client_id(d(), c()),
            QuotaLevel::DefaultUserDefaultClientId => QuotaEntity::user_client_id(d(), d()),
            QuotaLevel::DefaultUser => QuotaEntity::user(d()),
            QuotaLevel::ClientId => QuotaEntity::client_id(c()),
            QuotaLevel::DefaultClientId => QuotaEntity::client_id(d()),
        }
    }
}

/// The metric tags of a quota sensor (Kafka's `user` and `client-id` tags); `""` for a part the
/// sensor does not distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SensorTags<'a> {
    /// The `user` tag.
    pub user: &'a str,
    /// The `client-id` tag.
    pub client_id: &'a str,
}

/// What applies to one connection for one key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution<'a> {
    /// The level that matched, if any.
    pub level: Option<QuotaLevel>,
    /// The quota bound, if any level matched.
    pub quota: Option<f64>,
    /// The sensor the connection records into.
    pub tags: SensorTags<'a>,
}

/// The quotas configured under one user name or under the default user.
#[derive(Debug, Clone, Default)]
struct UserQuotas {
    /// `/users/U`.
    own: Option<f64>,
    /// `/users/U/clients/C`.
    clients: HashMap<String, f64>,
    /// `/users/U/clients/<default>`.
    default_client: Option<f64>,
}

/// The quotas of one key, indexed by user then client id.
#[derive(Debug, Clone, Default)]
pub struct QuotaTable {
    users: HashMap<String, UserQuotas>,
    default_user: UserQuotas,
    clients: HashMap<String, f64>,
    default_client: Option<f64>,
    len: usize,
}

impl QuotaTable {
    /// An empty table.
    pub fn new() -> QuotaTable {
        QuotaTable::default()
    }

    /// The values of `key` in `store` (ip entities carry no client key and are skipped).
    pub fn from_store(store: &QuotaStore, key: QuotaKey) -> QuotaTable {
        let mut table = QuotaTable::new();
        for (entity, values) in store.iter() {
            if let Some(value) = values.get(&key) {
                table.insert(entity, *value);
            }
        }
        table
    }

    /// Sets the quota of `entity`; ip entities are ignored.
    pub fn insert(&mut self, entity: &QuotaEntity, value: f64) {
        let slot = match (entity.user_name(), entity.client_id_name()) {
            (Some(user), client) => {
                let quotas = match user {
                    EntityName::Default => &mut self.default_user,
                    EntityName::Named(name) => self.users.entry(name.clone()).or_default(),
                };
                match client {
                    None => &mut quotas.own,
                    Some(EntityName::Default) => &mut quotas.default_client,
                    Some(EntityName::Named(c)) => {
                        let previous = quotas.clients.insert(c.clone(), value);
                        self.len += usize::from(previous.is_none());
                        return;
                    }
                }
            }
            (None, Some(EntityName::Default)) => &mut self.default_client,
            (None, Some(EntityName::Named(c))) => {
                let previous = self.clients.insert(c.clone(), value);
                self.len += usize::from(previous.is_none());
                return;
            }
            (None, None) => return,
        };
        self.len += usize::from(slot.is_none());
        *slot = Some(value);
    }

    /// How many entities have a quota.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entity has a quota of this key: the managers' fast path.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The quota and sensor of a connection, by KIP-55's precedence (see the module table).
    pub fn resolve<'a>(&self, user: &'a str, client_id: &'a str) -> Resolution<'a> {
        let both = SensorTags { user, client_id };
        let user_only = SensorTags {
            user,
            client_id: "",
        };
        let client_only = SensorTags {
            user: "",
            client_id,
        };
        let found = |level, quota, tags| Resolution {
            level: Some(level),
            quota: Some(quota),
            tags,
        };
        if let Some(u) = self.users.get(user) {
            if let Some(q) = u.clients.get(client_id) {
                return found(QuotaLevel::UserClientId, *q, both);
            }
            if let Some(q) = u.default_client {
                return found(QuotaLevel::UserDefaultClientId, q, both);
            }
            if let Some(q) = u.own {
                return found(QuotaLevel::User, q, user_only);
            }
        }
        let d = &self.default_user;
        if let Some(q) = d.clients.get(client_id) {
            return found(QuotaLevel::DefaultUserClientId, *q, both);
        }
        if let Some(q) = d.default_client {
            return found(QuotaLevel::DefaultUserDefaultClientId, q, both);
        }
        if let Some(q) = d.own {
            return found(QuotaLevel::DefaultUser, q, user_only);
        }
        if let Some(q) = self.clients.get(client_id) {
            return found(QuotaLevel::ClientId, *q, client_only);
        }
        if let Some(q) = self.default_client {
            return found(QuotaLevel::DefaultClientId, q, client_only);
        }
        Resolution {
            level: None,
            quota: None,
            tags: client_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_LEVELS: [QuotaLevel; 8] = [
        QuotaLevel::UserClientId,
        QuotaLevel::UserDefaultClientId,
        QuotaLevel::User,
        QuotaLevel::DefaultUserClientId,
        QuotaLevel::DefaultUserDefaultClientId,
        QuotaLevel::DefaultUser,
        QuotaLevel::ClientId,
        QuotaLevel::DefaultClientId,
    ];

    /// Configure levels `from..=8` with value = level number, then check that level `from` wins;
    /// removing levels one at a time from the top walks down the whole list.
    #[test]
    fn each_level_wins_over_all_below_it() {
        for (i, level) in ALL_LEVELS.iter().enumerate() {
            let mut table = QuotaTable::new();
            for lower in &ALL_LEVELS[i..] {
                table.insert(&lower.entity("alice", "app"), f64::from(lower.precedence()));
            }
            // Noise that must never match alice/app.
            table.insert(&QuotaLevel::UserClientId.entity("bob", "app"), 100.0);
            table.insert(&QuotaLevel::UserClientId.entity("alice", "other"), 101.0);
            table.insert(&QuotaLevel::ClientId.entity("x", "other"), 102.0);
            let r = table.resolve("alice", "app");
            assert_eq!(r.level, Some(*level), "with levels {}..=8", i + 1);
            assert_eq!(r.quota, Some(f64::from(level.precedence())));
            assert_eq!(level.precedence() as usize, i + 1);
        }
    }

    #[test]
    fn tags_follow_kafka() {
        let expect = [
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("alice", "app"),
            ("alice", "app"),
            ("alice", ""),
            ("", "app"),
            ("", "app"),
        ];
        for (level, (user, client_id)) in ALL_LEVELS.iter().zip(expect) {
            let mut table = QuotaTable::new();
            table.insert(&level.entity("alice", "app"), 1.0);
            let r = table.resolve("alice", "app");
            assert_eq!(r.level, Some(*level));
            assert_eq!(r.tags, SensorTags { user, client_id }, "{level:?}");
        }
    }

    #[test]
    fn nothing_configured_resolves_to_no_quota() {
        let mut table = QuotaTable::new();
        assert!(table.is_empty());
        let r = table.resolve("alice", "app");
        assert_eq!(r.quota, None);
        assert_eq!(
            r.tags,
            SensorTags {
                user: "",
                client_id: "app"
            }
        );
        table.insert(&QuotaLevel::User.entity("bob", ""), 5.0);
        table.insert(&QuotaEntity::ip(EntityName::Default), 5.0);
        assert_eq!(table.len(), 1);
        assert_eq!(table.resolve("alice", "app").quota, None);
        assert_eq!(table.resolve("bob", "app").quota, Some(5.0));
    }

    #[test]
    fn from_store_reads_one_key() {
        let mut store = QuotaStore::new();
        let alice = QuotaEntity::user(EntityName::named("alice"));
        store.replay(&alice, QuotaKey::ProducerByteRate, Some(10.0));
        store.replay(&alice, QuotaKey::ConsumerByteRate, Some(20.0));
        let produce = QuotaTable::from_store(&store, QuotaKey::ProducerByteRate);
        let request = QuotaTable::from_store(&store, QuotaKey::RequestPercentage);
        assert_eq!(produce.resolve("alice", "x").quota, Some(10.0));
        assert!(request.is_empty());
    }
}
