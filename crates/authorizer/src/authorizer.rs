//! `StandardAuthorizer`: Kafka's KRaft authorizer decision (`StandardAuthorizerData`) over an
//! immutable, indexed snapshot of the cluster's ACLs.
//!
//! The rules, in Kafka's order:
//! 1. A super user (`super.users`) may do anything.
//! 2. The ACLs that apply are those on a pattern covering the resource (LITERAL equal, LITERAL
//!    `*`, PREFIXED prefix) whose principal is the request's or `User:*`, whose host is the
//!    client's IP or `*`, and whose operation is the request's or ALL — or, for ALLOW ACLs only,
//!    one implying it (READ/WRITE/DELETE/ALTER imply DESCRIBE, ALTER_CONFIGS implies
//!    DESCRIBE_CONFIGS).
//! 3. A DENY that applies wins; otherwise an ALLOW that applies allows.
//! 4. Otherwise, if no ACL at all covers the resource (whatever its principal, host or
//!    operation), `allow.everyone.if.no.acl.found` decides; if some do, the answer is deny.
//!
//! Why a snapshot and not Kafka's mutable cache: the broker swaps an `Arc<StandardAuthorizer>`
//! when the metadata log changes the ACL set, so request threads read without locks and always
//! see one consistent ACL set; a rebuild of 10,000 ACLs takes milliseconds (see
//! `benches/authorize.rs`), and ACL changes are rare next to decisions.
//!
//! One deliberate difference: hosts compare as IP addresses, not as text. Kafka compares the ACL's
//! host string with Java's `InetAddress.getHostAddress()`, which prints IPv6 uncompressed
//! (`0:0:0:0:0:0:0:1`), so in Kafka an ACL for `::1` never matches; here `::1` and
//! `0:0:0:0:0:0:0:1` are the same host. IPv4 (dotted quad on both sides) behaves identically,
//! and IPv4-mapped IPv6 clients count as IPv4, as the JVM reports them.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use crate::acl::{
    parse_principal, AclBinding, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourceType, WILDCARD, WILDCARD_PRINCIPAL,
};
use crate::index::AclIndex;

/// An ACL's id in the metadata log (the `Id` of Kafka's `AccessControlEntryRecord`).
pub type AclId = uuid::Uuid;

/// The resource name Kafka's `authorizeByResourceType` first authorizes literally, so that super
/// users and `allow.everyone.if.no.acl.found` take effect before the ACL scan.
const BY_RESOURCE_TYPE_PROBE_NAME: &str = "hardcode";

/// The authorizer's broker configs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: principal strings ("User:admin") allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found` (default false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// The `super.users` value: principals separated by `;`, each trimmed; empty entries (and
    /// an empty value) are skipped, as Kafka's `StandardAuthorizer.getConfiguredSuperUsers`.
    pub fn parse_super_users(value: &str) -> Vec<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// [`AuthorizerConfig::parse_super_users`], rejecting an entry that is not "Type:name" as
    /// Kafka does when it configures the authorizer (a broker config error).
    pub fn try_parse_super_users(value: &str) -> Result<Vec<String>, String> {
        let users = Self::parse_super_users(value);
        match users.iter().find(|u| parse_principal(u).is_none()) {
            Some(bad) => Err(format!(
                "Invalid super.users entry {bad:?}: expected a string in format principalType:principalName"
            )),
            None => Ok(users),
        }
    }
}

/// An immutable snapshot of the cluster's ACLs with Kafka's authorization decision over them.
/// `Send + Sync`; every query takes `&self`, so request threads share one behind an `Arc`.
pub struct StandardAuthorizer {
    config: AuthorizerConfig,
    super_users: HashSet<String>,
    /// Sorted by (binding, id): DescribeAcls answers in a stable order, and the index can refer
    /// to ACLs by position.
    acls: Vec<(AclId, AclBinding)>,
    index: AclIndex,
}

impl fmt::Debug for StandardAuthorizer {
    // The ACL list can be long; a snapshot prints its size and config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardAuthorizer")
            .field("config", &self.config)
            .field("acls", &self.acls.len())
            .finish_non_exhaustive()
    }
}

impl StandardAuthorizer {
    /// A snapshot of `acls`. Ids are expected unique (the metadata log's ids are); when one
    /// repeats, the later binding replaces the earlier, as replaying records into a map would.
    /// Bindings are taken as they are (validation belongs to CreateAcls): one with a filter-only
    /// pattern type is listed by [`StandardAuthorizer::acls`] but covers no resource.
    pub fn new(
        config: AuthorizerConfig,
        acls: impl IntoIterator<Item = (AclId, AclBinding)>,
    ) -> Self {
        let mut acls: Vec<(AclId, AclBinding)> = acls.into_iter().collect();
        // Stable sort by id keeps arrival order among equal ids; keep the last of each run.
        acls.sort_by_key(|(id, _)| *id);
        let mut deduped: Vec<(AclId, AclBinding)> = Vec::with_capacity(acls.len());
        for acl in acls {
            match deduped.last_mut() {
                Some(last) if last.0 == acl.0 => *last = acl,
                _ => deduped.push(acl),
            }
        }
        let mut acls = deduped;
        acls.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        // The index refers to ACLs by u32 position; 4 billion ACLs would not fit memory anyway.
        acls.truncate(u32::MAX as usize);
        let index = AclIndex::build(acls.iter().map(|(_, binding)| binding));
        let super_users = config.super_users.iter().cloned().collect();
        StandardAuthorizer {
            config,
            super_users,
            acls,
            index,
        }
    }

    /// Whether `principal` ("User:alice") connecting from `host` may do `operation` on the
    /// resource `resource_name` of `resource_type` (Kafka's `authorize` for one LITERAL action).
    pub fn authorize(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let found = self
            .index
            .lookup(principal, host, resource_type, resource_name);
        if found.masks.denies(operation) {
            false
        } else if found.masks.allows(operation) {
            true
        } else {
            !found.has_resource_acls && self.config.allow_everyone_if_no_acl_found
        }
    }

    /// Whether `principal` could do `operation` on at least one resource of `resource_type`
    /// (KIP-679; Kafka's default `Authorizer.authorizeByResourceType`, which
    /// `StandardAuthorizer` uses; the broker asks it for idempotent producers: WRITE on any
    /// topic). In Kafka's order:
    /// 1. allowed if a literal resource named "hardcode" would be — this lets super users and
    ///    `allow.everyone.if.no.acl.found` through;
    /// 2. among the type's ACLs for this principal or `User:*`, this host or `*`, and exactly this
    ///    operation or ALL (no implied operations here): a DENY on the wildcard denies outright;
    ///    an ALLOW on the wildcard allows;
    /// 3. otherwise allowed if some ALLOW pattern is not dominated by a DENY: a LITERAL allow is
    ///    dominated by a LITERAL deny of the same name or a PREFIXED deny that prefixes it; a
    ///    PREFIXED allow only by a PREFIXED deny that prefixes it.
    ///
    /// ANY as operation or resource type is a caller error in Kafka (IllegalArgumentException);
    /// here it is denied.
    pub fn authorize_by_resource_type(
        &self,
        principal: &str,
        host: IpAddr,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if operation == AclOperation::Any || resource_type == ResourceType::Any {
            return false;
        }
        if self.authorize(
            principal,
            host,
            operation,
            resource_type,
            BY_RESOURCE_TYPE_PROBE_NAME,
        ) {
            return true;
        }
        let host = host.to_canonical();
        let mut deny_literal: HashSet<&str> = HashSet::new();
        let mut deny_prefixed: HashSet<&str> = HashSet::new();
        let mut allows: Vec<(PatternType, &str)> = Vec::new();
        let mut wildcard_allow = false;
        let mut principals = vec![principal];
        if principal != WILDCARD_PRINCIPAL {
            principals.push(WILDCARD_PRINCIPAL);
        }
        let positions = principals
            .into_iter()
            .flat_map(|p| self.index.acls_of_principal(resource_type, p));
        for &position in positions {
            let Some((_, acl)) = self.acls.get(position as usize) else {
                continue;
            };
            let entry = &acl.entry;
            if !host_matches(&entry.host, host) {
                continue;
            }
            if entry.operation != operation && entry.operation != AclOperation::All {
                continue;
            }
            let (pattern_type, name) = (acl.pattern.pattern_type, acl.pattern.name.as_str());
            match entry.permission {
                AclPermissionType::Deny => match pattern_type {
                    PatternType::Literal if name == WILDCARD => return false,
                    PatternType::Literal => {
                        deny_literal.insert(name);
                    }
                    PatternType::Prefixed => {
                        deny_prefixed.insert(name);
                    }
                    PatternType::Any | PatternType::Match => {}
                },
                AclPermissionType::Allow => match pattern_type {
                    PatternType::Literal if name == WILDCARD => wildcard_allow = true,
                    PatternType::Literal | PatternType::Prefixed => {
                        allows.push((pattern_type, name))
                    }
                    PatternType::Any | PatternType::Match => {}
                },
                AclPermissionType::Any => {}
            }
        }
        if wildcard_allow {
            return true;
        }
        allows.into_iter().any(|(pattern_type, name)| {
            let literal_denied =
                pattern_type == PatternType::Literal && deny_literal.contains(name);
            // Kafka checks each prefix of the allowed name against the PREFIXED denies;
            // "some deny is a prefix of the name" is the same test, cheaper with few denies.
            let prefix_denied = deny_prefixed.iter().any(|deny| name.starts_with(deny));
            !literal_denied && !prefix_denied
        })
    }

    /// The ACLs selected by `filter` (DescribeAcls, and DeleteAcls' matching), ordered by
    /// binding then id.
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<(AclId, AclBinding)> {
        self.candidates(filter)
            .iter()
            .filter(|(_, binding)| filter.matches(binding))
            .cloned()
            .collect()
    }

    /// The part of the sorted list a filter can select from: one resource type's run, and
    /// within it one name's run when the filter names the pattern exactly (not MATCH).
    fn candidates(&self, filter: &AclBindingFilter) -> &[(AclId, AclBinding)] {
        if filter.resource_type == ResourceType::Any {
            return &self.acls;
        }
        let resource_type = filter.resource_type;
        let start = self
            .acls
            .partition_point(|(_, b)| b.pattern.resource_type < resource_type);
        let end = self
            .acls
            .partition_point(|(_, b)| b.pattern.resource_type <= resource_type);
        let of_type = &self.acls[start..end];
        match filter.name.as_deref() {
            Some(name) if filter.pattern_type != PatternType::Match => {
                let start = of_type.partition_point(|(_, b)| b.pattern.name.as_str() < name);
                let end = of_type.partition_point(|(_, b)| b.pattern.name.as_str() <= name);
                &of_type[start..end]
            }
            _ => of_type,
        }
    }

    /// The number of ACLs in the snapshot.
    pub fn len(&self) -> usize {
        self.acls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acls.is_empty()
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }
}

/// Whether an ACL host applies to a client address (canonical): `*`, or the same IP.
fn host_matches(acl_host: &str, client: IpAddr) -> bool {
    acl_host == WILDCARD
        || acl_host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical() == client)
}
