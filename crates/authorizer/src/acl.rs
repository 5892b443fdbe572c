//! Kafka's ACL vocabulary: the four wire enums, resource patterns, access control entries,
//! bindings and binding filters, with the validation Kafka applies to CreateAcls bindings and
//! the matching rules of DescribeAcls/DeleteAcls filters.
//!
//! The enums carry Kafka's wire codes (`org.apache.kafka.common.resource.ResourceType`,
//! `PatternType`, `org.apache.kafka.common.acl.AclOperation`, `AclPermissionType`) minus
//! UNKNOWN (code 0): an unknown code is `None` at decode, so no value of these types can be
//! "unknown" and no later code has to reject it. Their text form is Kafka's upper-case name
//! (what `kafka-acls` prints and what the metadata log's JSON stores); parsing also accepts the
//! CLI's spellings (`ClusterAction`, `cluster_action`, `Read`).
//!
//! Everything here is plain data: the decision logic lives in `authorizer.rs`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The resource name of the one CLUSTER resource (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

/// The literal resource name, and the host, that match any resource name or host.
pub const WILDCARD: &str = "*";

/// The principal of ACLs that apply to every principal (Kafka's `WILDCARD_PRINCIPAL`).
/// Only the `User` type has a wildcard: `Group:*` is an ordinary principal string.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// A name that is none of an enum's names: the error of the enums' [`FromStr`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseEnumError {
    /// Which enum was parsed ("resource type", "ACL operation", …).
    pub kind: &'static str,
    /// The text that did not parse.
    pub input: String,
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {}: {:?}", self.kind, self.input)
    }
}

impl std::error::Error for ParseEnumError {}

/// Kafka's names compared the way `kafka-acls` users type them: ASCII case ignored and
/// underscores ignored on both sides, so "ClusterAction", "cluster_action" and
/// "CLUSTER_ACTION" are one name. No two of Kafka's names collide under this folding.
fn same_name(input: &str, name: &str) -> bool {
    let mut a = input.bytes().filter(|b| *b != b'_');
    let mut b = name.bytes().filter(|b| *b != b'_');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
            _ => return false,
        }
    }
}

/// One of Kafka's small wire enums: code, upper-case name, parsing and serde as the name.
macro_rules! kafka_enum {
    (
        $(#[$meta:meta])*
        $ty:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $ty {
            /// Every value, in code order.
            pub const VARIANTS: &'static [Self] = &[$(Self::$variant),+];

            /// Kafka's wire code.
            pub fn code(self) -> i8 {
                self as i8
            }

            /// The value of a wire code; `None` for UNKNOWN (0) and codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// Kafka's upper-case name (`Enum.name()` in Java).
            pub fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl FromStr for $ty {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                Self::VARIANTS
                    .iter()
                    .copied()
                    .find(|v| !s.is_empty() && same_name(s, v.name()))
                    .ok_or_else(|| ParseEnumError { kind: $kind, input: s.to_owned() })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

kafka_enum! {
    /// The kind of resource an ACL protects (`org.apache.kafka.common.resource.ResourceType`).
    ResourceType, "resource type" {
        /// In filters only: any resource type.
        Any = 1 => "ANY",
        Topic = 2 => "TOPIC",
        Group = 3 => "GROUP",
        /// The one resource named [`CLUSTER_RESOURCE_NAME`].
        Cluster = 4 => "CLUSTER",
        TransactionalId = 5 => "TRANSACTIONAL_ID",
        DelegationToken = 6 => "DELEGATION_TOKEN",
        User = 7 => "USER",
    }
}

kafka_enum! {
    /// How an ACL's resource name matches resource names (KIP-290).
    PatternType, "pattern type" {
        /// In filters only: any pattern type, exact name.
        Any = 1 => "ANY",
        /// In filters only: the patterns that would match the filter's resource name.
        Match = 2 => "MATCH",
        /// The name itself, or every name when it is [`WILDCARD`].
        Literal = 3 => "LITERAL",
        /// Every name that starts with the pattern's name.
        Prefixed = 4 => "PREFIXED",
    }
}

kafka_enum! {
    /// What a principal does to a resource (`org.apache.kafka.common.acl.AclOperation`).
    AclOperation, "ACL operation" {
        /// In filters only: any operation.
        Any = 1 => "ANY",
        /// In ACLs: every operation.
        All = 2 => "ALL",
        Read = 3 => "READ",
        Write = 4 => "WRITE",
        Create = 5 => "CREATE",
        Delete = 6 => "DELETE",
        Alter = 7 => "ALTER",
        Describe = 8 => "DESCRIBE",
        ClusterAction = 9 => "CLUSTER_ACTION",
        DescribeConfigs = 10 => "DESCRIBE_CONFIGS",
        AlterConfigs = 11 => "ALTER_CONFIGS",
        IdempotentWrite = 12 => "IDEMPOTENT_WRITE",
        CreateTokens = 13 => "CREATE_TOKENS",
        DescribeTokens = 14 => "DESCRIBE_TOKENS",
    }
}

kafka_enum! {
    /// Whether an ACL allows or denies (`org.apache.kafka.common.acl.AclPermissionType`).
    AclPermissionType, "permission type" {
        /// In filters only: either.
        Any = 1 => "ANY",
        Deny = 2 => "DENY",
        Allow = 3 => "ALLOW",
    }
}

impl ResourceType {
    /// The operations Kafka allows on ACLs of this resource type and reports in
    /// `authorized_operations` (`AclEntry.supportedOperations`), ALL aside.
    pub fn supported_operations(self) -> &'static [AclOperation] {
        use AclOperation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Describe,
                Delete,
                Alter,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
                Alter,
                Describe,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// The resources an ACL applies to: a type, a name and how the name matches (Kafka's
/// `ResourcePattern`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl ResourcePattern {
    pub fn new(
        resource_type: ResourceType,
        name: impl Into<String>,
        pattern_type: PatternType,
    ) -> Self {
        ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        }
    }

    /// Whether this pattern covers the resource `name` of its type: LITERAL equal or the literal
    /// wildcard, PREFIXED a prefix. Filter-only pattern types (ANY, MATCH) cover nothing.
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern_type {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(self.name.as_str()),
            PatternType::Any | PatternType::Match => false,
        }
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type, self.name, self.pattern_type
        )
    }
}

/// Who may (or may not) do what from where (Kafka's `AccessControlEntry`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessControlEntry {
    /// "Type:name", such as "User:alice"; "User:*" is every principal.
    pub principal: String,
    /// "*" or a client IP address.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AccessControlEntry {
    pub fn new(
        principal: impl Into<String>,
        host: impl Into<String>,
        operation: AclOperation,
        permission: AclPermissionType,
    ) -> Self {
        AccessControlEntry {
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }
}

impl fmt::Display for AccessControlEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal, self.host, self.operation, self.permission
        )
    }
}

/// One ACL: an entry bound to a resource pattern (Kafka's `AclBinding`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}

/// Splits "Type:name" at the first colon, as Kafka's `SecurityUtils.parseKafkaPrincipal`;
/// both halves must be non-empty.
pub fn parse_principal(principal: &str) -> Option<(&str, &str)> {
    let (principal_type, name) = principal.split_once(':')?;
    (!principal_type.is_empty() && !name.is_empty()).then_some((principal_type, name))
}

impl AclBinding {
    pub fn new(pattern: ResourcePattern, entry: AccessControlEntry) -> Self {
        AclBinding { pattern, entry }
    }

    /// Kafka's checks on a CreateAcls binding (the broker's `AclApis.handleCreateAcls` and the
    /// controller's `AclControlManager.validateNewAcl`, plus principal and host syntax); each
    /// `Err` is answered INVALID_REQUEST with the message. Filter-only values (ANY, MATCH)
    /// cannot be stored: they would never match a request, and deleting them would need a
    /// filter that cannot name them exactly.
    pub fn validate(&self) -> Result<(), String> {
        let ResourcePattern {
            resource_type,
            name,
            pattern_type,
        } = &self.pattern;
        let AccessControlEntry {
            principal,
            host,
            operation,
            permission,
        } = &self.entry;
        if *resource_type == ResourceType::Any {
            return Err(format!("Invalid resourceType {resource_type}"));
        }
        if !matches!(pattern_type, PatternType::Literal | PatternType::Prefixed) {
            return Err(format!("Invalid patternType {pattern_type}"));
        }
        if *operation == AclOperation::Any {
            return Err(format!("Invalid operation {operation}"));
        }
        if *permission == AclPermissionType::Any {
            return Err(format!("Invalid permissionType {permission}"));
        }
        if name.is_empty() {
            return Err("Invalid empty resource name".to_owned());
        }
        if *resource_type == ResourceType::Cluster && name != CLUSTER_RESOURCE_NAME {
            return Err(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"
            ));
        }
        if parse_principal(principal).is_none() {
            return Err(format!(
                "Invalid principal {principal:?}: expected a string in format principalType:principalName"
            ));
        }
        if host != WILDCARD && host.parse::<IpAddr>().is_err() {
            return Err(format!(
                "Invalid host {host:?}: expected \"*\" or an IP address"
            ));
        }
        Ok(())
    }

    /// The filter that matches exactly this binding (and its duplicates under other ids).
    pub fn to_filter(&self) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: self.pattern.resource_type,
            name: Some(self.pattern.name.clone()),
            pattern_type: self.pattern.pattern_type,
            principal: Some(self.entry.principal.clone()),
            host: Some(self.entry.host.clone()),
            operation: self.entry.operation,
            permission: self.entry.permission,
        }
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(pattern={}, entry={})", self.pattern, self.entry)
    }
}

/// A DescribeAcls/DeleteAcls filter (Kafka's `AclBindingFilter`: a `ResourcePatternFilter` and
/// an `AccessControlEntryFilter`). `None` strings and ANY enums match every value of the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclBindingFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: AclOperation,
    pub permission: AclPermissionType,
}

impl AclBindingFilter {
    /// The filter that matches every binding.
    pub fn any() -> Self {
        AclBindingFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermissionType::Any,
        }
    }

    /// Whether `binding` is selected, as Kafka's `ResourcePatternFilter.matches` and
    /// `AccessControlEntryFilter.matches`:
    /// - resource type: ANY, or equal;
    /// - pattern type ANY: any pattern type with exactly the filter's name (if given);
    /// - pattern type MATCH: the patterns that would cover the filter's name (LITERAL equal,
    ///   the LITERAL wildcard, PREFIXED prefixes of it); every pattern when no name is given;
    /// - LITERAL/PREFIXED: that pattern type, and exactly the filter's name (if given). A LITERAL
    ///   filter named "*" selects only the wildcard ACLs, not every literal ACL;
    /// - principal and host: equal strings (no wildcard expansion); operation and permission:
    ///   ANY, or equal (no implied operations).
    pub fn matches(&self, binding: &AclBinding) -> bool {
        self.matches_pattern(&binding.pattern) && self.matches_entry(&binding.entry)
    }

    fn matches_pattern(&self, pattern: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != pattern.resource_type {
            return false;
        }
        let any_or_match = matches!(self.pattern_type, PatternType::Any | PatternType::Match);
        if !any_or_match && self.pattern_type != pattern.pattern_type {
            return false;
        }
        let Some(name) = self.name.as_deref() else {
            return true;
        };
        if self.pattern_type == PatternType::Any || self.pattern_type == pattern.pattern_type {
            return name == pattern.name;
        }
        // MATCH with a name: the stored patterns that would apply to a resource of that name.
        pattern.covers(name)
    }

    fn matches_entry(&self, entry: &AccessControlEntry) -> bool {
        self.principal
            .as_deref()
            .is_none_or(|p| p == entry.principal)
            && self.host.as_deref().is_none_or(|h| h == entry.host)
            && (self.operation == AclOperation::Any || self.operation == entry.operation)
            && (self.permission == AclPermissionType::Any || self.permission == entry.permission)
    }

    /// Kafka's checks on a DescribeAcls/DeleteAcls filter that answer INVALID_REQUEST.
    ///
    /// Kafka rejects only filters with UNKNOWN fields (`AclControlManager.validateFilter`,
    /// `DescribeAclsRequest.normalizeAndValidate`); those are unrepresentable here (an unknown
    /// code is `None` at decode and the handler answers it), and every other combination is
    /// valid: a resource type ANY with a name, MATCH without a name, a principal or host of any
    /// shape (it is compared as text). So this accepts every value; it exists so the handlers
    /// keep Kafka's parse → validate → act order if a rule is ever added. Version 0's
    /// pattern-type rule is [`AclBindingFilter::normalize_for_version`].
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// DescribeAcls/DeleteAcls v0 predate pattern types (KIP-290): Kafka rewrites ANY to LITERAL
    /// (the only kind v0 brokers had) and rejects the others with UNSUPPORTED_VERSION (the
    /// `Err` message). Later versions are left as they are.
    pub fn normalize_for_version(&mut self, version: i16) -> Result<(), String> {
        if version != 0 {
            return Ok(());
        }
        match self.pattern_type {
            PatternType::Any => {
                self.pattern_type = PatternType::Literal;
                Ok(())
            }
            PatternType::Literal => Ok(()),
            other => Err(format!(
                "Version 0 does not support pattern type {other} (only LITERAL and ANY are supported)"
            )),
        }
    }
}

impl Default for AclBindingFilter {
    fn default() -> Self {
        AclBindingFilter::any()
    }
}
