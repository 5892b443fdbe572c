//! [`QuotaEntity`]: the key a quota config is stored under — Kafka's `ClientQuotaEntity`, a map
//! from entity type (`user`, `client-id`, `ip`) to a name or to the default.
//!
//! Kafka allows exactly these shapes: `{user}`, `{client-id}`, `{user, client-id}` and `{ip}`.
//! A name is either a specific string or the default (`null` on the wire, `<default>` when
//! displayed, as in the `/config/users/<default>` paths of KIP-55). The type keeps its fields
//! private so the other shapes cannot be built; [`QuotaEntity::from_components`] turns wire
//! components into one with Kafka's checks and messages.

use std::fmt;
use std::net::IpAddr;

use crate::error::QuotaError;

/// One entity type of a quota entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    /// `user`: the authenticated principal's name.
    User,
    /// `client-id`: the request header's client id.
    ClientId,
    /// `ip`: the peer address (connection-rate quotas, KIP-612).
    Ip,
}

impl EntityType {
    /// Kafka's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            EntityType::User => "user",
            EntityType::ClientId => "client-id",
            EntityType::Ip => "ip",
        }
    }

    /// The type named `name`, if Kafka knows it.
    pub fn parse(name: &str) -> Option<EntityType> {
        match name {
            "user" => Some(EntityType::User),
            "client-id" => Some(EntityType::ClientId),
            "ip" => Some(EntityType::Ip),
            _ => None,
        }
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The name part of one entity component: a specific name, or the default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityName {
    /// The default entity of its type (`null` on the wire, `<default>` displayed).
    Default,
    /// A specific user, client id or IP.
    Named(String),
}

impl EntityName {
    /// A specific name.
    pub fn named(name: impl Into<String>) -> EntityName {
        EntityName::Named(name.into())
    }

    /// From the wire, where the default is `null`.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        match name {
            None => EntityName::Default,
            Some(name) => EntityName::Named(name.to_owned()),
        }
    }

    /// For the wire: `None` for the default.
    pub fn as_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(name) => Some(name),
        }
    }

    /// Whether this is the default.
    pub fn is_default(&self) -> bool {
        matches!(self, EntityName::Default)
    }
}

impl fmt::Display for EntityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Named(name) => f.write_str(name),
        }
    }
}

/// The key of one quota config: `{user}`, `{client-id}`, `{user, client-id}` or `{ip}`, each part
/// a name or the default.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaEntity {
    user: Option<EntityName>,
    client_id: Option<EntityName>,
    ip: Option<EntityName>,
}

impl QuotaEntity {
    /// `/users/<user>` (or `/users/<default>`).
    pub fn user(user: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: Some(user),
            client_id: None,
            ip: None,
        }
    }

    /// `/clients/<client-id>` (or `/clients/<default>`).
    pub fn client_id(client_id: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: None,
            client_id: Some(client_id),
            ip: None,
        }
    }

    /// `/users/<user>/clients/<client-id>`, either part possibly the default.
    pub fn user_client_id(user: EntityName, client_id: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: Some(user),
            client_id: Some(client_id),
            ip: None,
        }
    }

    /// `/ips/<ip>` (or `/ips/<default>`).
    pub fn ip(ip: EntityName) -> QuotaEntity {
        QuotaEntity {
            user: None,
            client_id: None,
            ip: Some(ip),
        }
    }

    /// Builds an entity from wire components `(entity_type, name)` (`None` = default), with
    /// Kafka's checks in Kafka's order (`ClientQuotaControlManager.validateEntity`, then
    /// `configKeysForEntityType`): not empty, no type twice, known types, no empty names, `ip`
    /// alone and a valid address.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, QuotaError> {
        let mut entity = QuotaEntity {
            user: None,
            client_id: None,
            ip: None,
        };
        let mut any = false;
        for (entity_type, name) in components {
            any = true;
            let parsed = EntityType::parse(entity_type);
            if let Some(t) = parsed {
                if entity.slot(t).is_some() {
                    return Err(QuotaError::DuplicateEntityType(entity_type.to_owned()));
                }
            }
            let Some(t) = parsed else {
                return Err(QuotaError::UnknownEntityType(entity_type.to_owned()));
            };
            if name == Some("") {
                return Err(QuotaError::EmptyEntityName(t.name()));
            }
            *entity.slot_mut(t) = Some(EntityName::from_wire(name));
        }
        if !any {
            return Err(QuotaError::EmptyEntity);
        }
        entity.validate()?;
        Ok(entity)
    }

    /// Kafka's checks on an entity built from typed parts: no empty names, `ip` alone and a valid
    /// address. An `ip` name must parse as an IPv4 or IPv6 address: Kafka also accepts a host
    /// name it can resolve, but resolving names has no place in a metadata check.
    pub fn validate(&self) -> Result<(), QuotaError> {
        for (entity_type, name) in self.components() {
            if matches!(name, EntityName::Named(n) if n.is_empty()) {
                return Err(QuotaError::EmptyEntityName(entity_type.name()));
            }
        }
        match (&self.user, &self.client_id, &self.ip) {
            (None, None, None) => Err(QuotaError::EmptyEntity),
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(QuotaError::IpCombinedWithClient),
            (None, None, Some(EntityName::Named(ip))) if ip.parse::<IpAddr>().is_err() => {
                Err(QuotaError::InvalidIp(ip.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The user part, if the entity has one.
    pub fn user_name(&self) -> Option<&EntityName> {
        self.user.as_ref()
    }

    /// The client-id part, if the entity has one.
    pub fn client_id_name(&self) -> Option<&EntityName> {
        self.client_id.as_ref()
    }

    /// The ip part, if the entity has one.
    pub fn ip_name(&self) -> Option<&EntityName> {
        self.ip.as_ref()
    }

    /// The part of type `entity_type`, if the entity has one.
    pub fn get(&self, entity_type: EntityType) -> Option<&EntityName> {
        self.slot(entity_type).as_ref()
    }

    /// Whether this is an `ip` entity (whose keys are connection quotas, not client quotas).
    pub fn is_ip(&self) -> bool {
        self.ip.is_some()
    }

    /// The components, user then client-id then ip: what DescribeClientQuotas returns.
    pub fn components(&self) -> impl Iterator<Item = (EntityType, &EntityName)> {
        [
            (EntityType::User, self.user.as_ref()),
            (EntityType::ClientId, self.client_id.as_ref()),
            (EntityType::Ip, self.ip.as_ref()),
        ]
        .into_iter()
        .filter_map(|(t, name)| name.map(|name| (t, name)))
    }

    /// How many entity types the entity has (what a strict describe filter compares).
    pub fn component_count(&self) -> usize {
        self.components().count()
    }

    fn slot(&self, entity_type: EntityType) -> &Option<EntityName> {
        match entity_type {
            EntityType::User => &self.user,
            EntityType::ClientId => &self.client_id,
            EntityType::Ip => &self.ip,
        }
    }

    fn slot_mut(&mut self, entity_type: EntityType) -> &mut Option<EntityName> {
        match entity_type {
            EntityType::User => &mut self.user,
            EntityType::ClientId => &mut self.client_id,
            EntityType::Ip => &mut self.ip,
        }
    }
}

/// KIP-55's path form: `users/alice/clients/<default>`, `clients/app`, `ips/10.0.0.1`.
impl fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (entity_type, name) in self.components() {
            let dir = match entity_type {
                EntityType::User => "users",
                EntityType::ClientId => "clients",
                EntityType::Ip => "ips",
            };
            if !first {
                f.write_str("/")?;
            }
            first = false;
            write!(f, "{dir}/{name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_components_builds_each_shape() {
        let e = QuotaEntity::from_components([("user", Some("alice")), ("client-id", None)]);
        assert_eq!(
            e,
            Ok(QuotaEntity::user_client_id(
                EntityName::named("alice"),
                EntityName::Default
            ))
        );
        let e = QuotaEntity::from_components([("client-id", Some("app"))]);
        assert_eq!(e, Ok(QuotaEntity::client_id(EntityName::named("app"))));
        let e = QuotaEntity::from_components([("ip", Some("10.0.0.1"))]);
        assert_eq!(e, Ok(QuotaEntity::ip(EntityName::named("10.0.0.1"))));
        let e = QuotaEntity::from_components([("ip", None)]);
        assert_eq!(e, Ok(QuotaEntity::ip(EntityName::Default)));
    }

    #[test]
    fn from_components_refuses_as_kafka() {
        assert_eq!(
            QuotaEntity::from_components([]),
            Err(QuotaError::EmptyEntity)
        );
        assert_eq!(
            QuotaEntity::from_components([("user", Some("a")), ("user", Some("b"))]),
            Err(QuotaError::DuplicateEntityType("user".into()))
        );
        assert_eq!(
            QuotaEntity::from_components([("group", Some("g"))]),
            Err(QuotaError::UnknownEntityType("group".into()))
        );
        assert_eq!(
            QuotaEntity::from_components([("", Some("g"))]),
            Err(QuotaError::UnknownEntityType(String::new()))
        );
        assert_eq!(
            QuotaEntity::from_components([("user", Some(""))]),
            Err(QuotaError::EmptyEntityName("user"))
        );
        assert_eq!(
            QuotaEntity::from_components([("ip", Some("1.2.3.4")), ("user", Some("a"))]),
            Err(QuotaError::IpCombinedWithClient)
        );
        assert_eq!(
            QuotaEntity::from_components([("ip", Some("not-an-ip"))]),
            Err(QuotaError::InvalidIp("not-an-ip".into()))
        );
    }

    #[test]
    fn components_and_display() {
        let e = QuotaEntity::user_client_id(EntityName::named("alice"), EntityName::Default);
        let parts: Vec<_> = e.components().map(|(t, n)| (t, n.as_wire())).collect();
        assert_eq!(
            parts,
            vec![
                (EntityType::User, Some("alice")),
                (EntityType::ClientId, None)
            ]
        );
        assert_eq!(e.to_string(), "users/alice/clients/<default>");
        assert_eq!(e.component_count(), 2);
        assert_eq!(
            QuotaEntity::ip(EntityName::named("::1")).to_string(),
            "ips/::1"
        );
        for t in [EntityType::User, EntityType::ClientId, EntityType::Ip] {
            assert_eq!(EntityType::parse(t.name()), Some(t));
        }
    }
}
