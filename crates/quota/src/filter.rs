//! [`QuotaFilter`]: the filter of DescribeClientQuotas (KIP-546), with Kafka's validation and
//! matching rules (`ClientQuotasImage.describe`).
//!
//! A filter is a list of components, each an entity type with a match: EXACT (a name), DEFAULT
//! (the default entity) or SPECIFIED (any entity of that type). A non-strict filter matches
//! entities that have at least the filtered types; a strict one only entities with exactly them.
//! Kafka's SPECIFIED matches the default entity too (its own integration test counts
//! `/users/<default>` among "all entities with the user type"), even though the protocol's doc
//! string says "any specified name"; we do as the broker does, not as the doc says.

use crate::entity::{EntityName, EntityType, QuotaEntity};
use crate::error::QuotaError;

/// Wire value of `MatchType` for an exact name.
pub const MATCH_TYPE_EXACT: i8 = 0;
/// Wire value of `MatchType` for the default entity.
pub const MATCH_TYPE_DEFAULT: i8 = 1;
/// Wire value of `MatchType` for any entity of the type.
pub const MATCH_TYPE_SPECIFIED: i8 = 2;

/// How one filter component matches the name of its entity type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityMatch {
    /// The entity's name is exactly this.
    Exact(String),
    /// The entity is the default of its type.
    Default,
    /// The entity has this type, whatever its name (the default included, as Kafka).
    Specified,
}

/// One component of a describe filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterComponent {
    /// The entity type the component is about.
    pub entity_type: EntityType,
    /// How the name must match.
    pub matches: EntityMatch,
}

impl FilterComponent {
    /// A component.
    pub fn new(entity_type: EntityType, matches: EntityMatch) -> FilterComponent {
        FilterComponent {
            entity_type,
            matches,
        }
    }

    fn accepts(&self, name: &EntityName) -> bool {
        match (&self.matches, name) {
            (EntityMatch::Exact(want), EntityName::Named(have)) => want == have,
            (EntityMatch::Exact(_), EntityName::Default) => false,
            (EntityMatch::Default, name) => name.is_default(),
            (EntityMatch::Specified, _) => true,
        }
    }
}

/// A validated DescribeClientQuotas filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaFilter {
    components: Vec<FilterComponent>,
    strict: bool,
}

impl QuotaFilter {
    /// A filter from typed components; refuses an entity type twice and `ip` combined with
    /// `user` or `client-id`, as Kafka.
    pub fn new(components: Vec<FilterComponent>, strict: bool) -> Result<QuotaFilter, QuotaError> {
        for (i, c) in components.iter().enumerate() {
            if components[..i]
                .iter()
                .any(|earlier| earlier.entity_type == c.entity_type)
            {
                return Err(QuotaError::DuplicateFilterEntityType(
                    c.entity_type.name().to_owned(),
                ));
            }
        }
        let has = |t: EntityType| components.iter().any(|c| c.entity_type == t);
        if has(EntityType::Ip) && (has(EntityType::User) || has(EntityType::ClientId)) {
            return Err(QuotaError::IpFilterCombinedWithClient);
        }
        Ok(QuotaFilter { components, strict })
    }

    /// A filter from wire components `(entity_type, match_type, match)`, with Kafka's checks in
    /// Kafka's order: empty type, repeated type, unknown type (`UNSUPPORTED_VERSION`), match
    /// string present exactly when the match type is EXACT, known match type; then the `ip`
    /// combination.
    pub fn from_wire<'a>(
        components: impl IntoIterator<Item = (&'a str, i8, Option<&'a str>)>,
        strict: bool,
    ) -> Result<QuotaFilter, QuotaError> {
        let mut typed: Vec<FilterComponent> = Vec::new();
        for (entity_type, match_type, name) in components {
            if entity_type.is_empty() {
                return Err(QuotaError::EmptyFilterEntityType);
            }
            let parsed = EntityType::parse(entity_type);
            if parsed.is_some() && typed.iter().any(|c| Some(c.entity_type) == parsed) {
                return Err(QuotaError::DuplicateFilterEntityType(
                    entity_type.to_owned(),
                ));
            }
            let Some(entity_type) = parsed else {
                return Err(QuotaError::UnsupportedFilterEntityType(
                    entity_type.to_owned(),
                ));
            };
            let matches = match (match_type, name) {
                (MATCH_TYPE_EXACT, Some(name)) => EntityMatch::Exact(name.to_owned()),
                (MATCH_TYPE_EXACT, None) => {
                    return Err(QuotaError::InvalidFilterMatch(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                    ))
                }
                (MATCH_TYPE_DEFAULT, None) => EntityMatch::Default,
                (MATCH_TYPE_DEFAULT, Some(_)) => {
                    return Err(QuotaError::InvalidFilterMatch(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                    ))
                }
                (MATCH_TYPE_SPECIFIED, None) => EntityMatch::Specified,
                (MATCH_TYPE_SPECIFIED, Some(_)) => return Err(QuotaError::InvalidFilterMatch(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                )),
                (other, _) => return Err(QuotaError::UnknownMatchType(other)),
            };
            typed.push(FilterComponent::new(entity_type, matches));
        }
        QuotaFilter::new(typed, strict)
    }

    /// The components.
    pub fn components(&self) -> &[FilterComponent] {
        &self.components
    }

    /// Whether matching entities must have exactly the filtered types.
    pub fn strict(&self) -> bool {
        self.strict
    }

    /// Whether `entity` matches: every component finds its type with an accepted name, and, when
    /// strict, the entity has no other type. The empty non-strict filter matches everything; the
    /// empty strict filter matches nothing (no entity is empty).
    pub fn matches(&self, entity: &QuotaEntity) -> bool {
        if self.strict && entity.component_count() != self.components.len() {
            return false;
        }
        self.components.iter().all(|c| {
            entity
                .get(c.entity_type)
                .is_some_and(|name| c.accepts(name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> EntityName {
        EntityName::named(name)
    }

    #[test]
    fn from_wire_refuses_as_kafka() {
        assert_eq!(
            QuotaFilter::from_wire([("", 0, Some("a"))], false),
            Err(QuotaError::EmptyFilterEntityType)
        );
        assert_eq!(
            QuotaFilter::from_wire([("user", 2, None), ("user", 0, Some("a"))], false),
            Err(QuotaError::DuplicateFilterEntityType("user".into()))
        );
        let unknown = QuotaFilter::from_wire([("group", 2, None)], false);
        assert_eq!(
            unknown,
            Err(QuotaError::UnsupportedFilterEntityType("group".into()))
        );
        assert!(matches!(
            QuotaFilter::from_wire([("user", MATCH_TYPE_EXACT, None)], false),
            Err(QuotaError::InvalidFilterMatch(_))
        ));
        assert!(matches!(
            QuotaFilter::from_wire([("user", MATCH_TYPE_DEFAULT, Some("x"))], false),
            Err(QuotaError::InvalidFilterMatch(_))
        ));
        assert!(matches!(
            QuotaFilter::from_wire([("user", MATCH_TYPE_SPECIFIED, Some("x"))], false),
            Err(QuotaError::InvalidFilterMatch(_))
        ));
        assert_eq!(
            QuotaFilter::from_wire([("user", 7, None)], false),
            Err(QuotaError::UnknownMatchType(7))
        );
        assert_eq!(
            QuotaFilter::from_wire([("ip", 2, None), ("client-id", 2, None)], false),
            Err(QuotaError::IpFilterCombinedWithClient)
        );
    }

    #[test]
    fn matching_rules() {
        let alice_app = QuotaEntity::user_client_id(user("alice"), user("app"));
        let alice = QuotaEntity::user(user("alice"));
        let default_user = QuotaEntity::user(EntityName::Default);

        let exact = QuotaFilter::from_wire([("user", 0, Some("alice"))], false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(exact.matches(&alice));
        assert!(exact.matches(&alice_app));
        assert!(!exact.matches(&default_user));

        let exact_strict =
            QuotaFilter::new(exact.components().to_vec(), true).unwrap_or_else(|e| panic!("{e}"));
        assert!(exact_strict.matches(&alice));
        assert!(!exact_strict.matches(&alice_app));

        let default =
            QuotaFilter::from_wire([("user", 1, None)], false).unwrap_or_else(|e| panic!("{e}"));
        assert!(default.matches(&default_user));
        assert!(!default.matches(&alice));

        let specified =
            QuotaFilter::from_wire([("user", 2, None)], true).unwrap_or_else(|e| panic!("{e}"));
        assert!(specified.matches(&alice));
        assert!(specified.matches(&default_user));
        assert!(!specified.matches(&alice_app));
        assert!(!specified.matches(&QuotaEntity::client_id(user("app"))));

        let everything = QuotaFilter::new(vec![], false).unwrap_or_else(|e| panic!("{e}"));
        assert!(everything.matches(&alice_app));
        let nothing = QuotaFilter::new(vec![], true).unwrap_or_else(|e| panic!("{e}"));
        assert!(!nothing.matches(&alice));
    }
}
