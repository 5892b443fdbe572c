//! `AclIndex`: the ACLs arranged for decisions, so that authorizing one action reads only the
//! ACLs of the patterns that cover its resource, and within those only the entries of the
//! request's principal and of `User:*`.
//!
//! Per resource type: a hash map of LITERAL names, the LITERAL wildcard `*` on its own, and a
//! [`PrefixTrie`] of PREFIXED names. Each pattern's ACLs are folded into [`ResourceAcls`]: per
//! principal (sorted, binary-searched), per host (`*` or a parsed IP), two operation bitmasks —
//! the operations an ALLOW grants (with Kafka's implications already applied) and the ones a
//! DENY refuses. A decision is then a few lookups and OR-ed masks, whatever the ACL count.
//!
//! A second map per type, principal → ACLs, serves `authorize_by_resource_type`, which must look
//! at every pattern of a type but only for one principal (and `User:*`).
//!
//! Built in one pass over the ACLs sorted by binding (equal patterns are then adjacent), and
//! never mutated afterwards.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::acl::{
    AclBinding, AclOperation, AclPermissionType, PatternType, ResourceType, WILDCARD,
    WILDCARD_PRINCIPAL,
};
use crate::prefix_trie::PrefixTrie;

/// The bit of an operation in the masks: its wire code (1..=14 fit a u16).
fn op_bit(op: AclOperation) -> u16 {
    1u16 << op.code()
}

/// What an ALLOW of `op` grants. Kafka (`StandardAuthorizerData.findResult`): ALL grants every
/// operation; READ, WRITE, DELETE and ALTER also grant DESCRIBE; ALTER_CONFIGS also grants
/// DESCRIBE_CONFIGS. The implications are for ALLOW only: denying READ does not deny DESCRIBE.
fn allow_mask(op: AclOperation) -> u16 {
    use AclOperation::*;
    match op {
        All => u16::MAX,
        Read | Write | Delete | Alter => op_bit(op) | op_bit(Describe),
        AlterConfigs => op_bit(op) | op_bit(DescribeConfigs),
        _ => op_bit(op),
    }
}

/// What a DENY of `op` refuses: that operation, or every one for ALL.
fn deny_mask(op: AclOperation) -> u16 {
    match op {
        AclOperation::All => u16::MAX,
        _ => op_bit(op),
    }
}

/// The union of matching ACLs' grants and refusals.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Masks {
    allow: u16,
    deny: u16,
}

impl Masks {
    fn add(&mut self, op: AclOperation, permission: AclPermissionType) {
        match permission {
            AclPermissionType::Allow => self.allow |= allow_mask(op),
            AclPermissionType::Deny => self.deny |= deny_mask(op),
            // Not a storable permission (validation rejects it); Kafka's findResult would treat
            // it as a DENY, so do the same rather than silently grant nothing.
            AclPermissionType::Any => self.deny |= deny_mask(op),
        }
    }

    fn merge(&mut self, other: Masks) {
        self.allow |= other.allow;
        self.deny |= other.deny;
    }

    pub(crate) fn denies(&self, op: AclOperation) -> bool {
        self.deny & op_bit(op) != 0
    }

    pub(crate) fn allows(&self, op: AclOperation) -> bool {
        self.allow & op_bit(op) != 0
    }
}

/// One principal's ACLs on one pattern.
#[derive(Debug)]
struct PrincipalAcls {
    principal: Box<str>,
    /// ACLs with host `*`.
    any_host: Masks,
    /// ACLs with an IP host, canonical (IPv4-mapped IPv6 as IPv4), sorted, unique. ACLs whose
    /// host is neither `*` nor an IP can never match a client and are left out (they still
    /// count as "an ACL on this resource": the pattern's node exists).
    hosts: Box<[(IpAddr, Masks)]>,
}

/// All ACLs of one resource pattern. Its presence alone means "ACLs exist for the resource",
/// which is what switches off `allow.everyone.if.no.acl.found`.
#[derive(Debug)]
pub(crate) struct ResourceAcls {
    /// Sorted by principal.
    principals: Box<[PrincipalAcls]>,
}

impl ResourceAcls {
    fn build(acls: &[&AclBinding]) -> Self {
        let mut principals: Vec<PrincipalAcls> = Vec::new();
        let mut hosts: Vec<(IpAddr, Masks)> = Vec::new();
        // `acls` is sorted by principal, so each principal's ACLs are one run.
        for run in acls.chunk_by(|a, b| a.entry.principal == b.entry.principal) {
            let mut any_host = Masks::default();
            hosts.clear();
            for acl in run {
                let mut masks = Masks::default();
                masks.add(acl.entry.operation, acl.entry.permission);
                if acl.entry.host == WILDCARD {
                    any_host.merge(masks);
                } else if let Ok(ip) = acl.entry.host.parse::<IpAddr>() {
                    hosts.push((ip.to_canonical(), masks));
                }
            }
            hosts.sort_unstable_by_key(|(ip, _)| *ip);
            let mut merged: Vec<(IpAddr, Masks)> = Vec::with_capacity(hosts.len());
            for &(ip, masks) in &hosts {
                match merged.last_mut() {
                    Some((last, acc)) if *last == ip => acc.merge(masks),
                    _ => merged.push((ip, masks)),
                }
            }
            let principal = run
                .first()
                .map(|a| a.entry.principal.as_str())
                .unwrap_or_default();
            principals.push(PrincipalAcls {
                principal: principal.into(),
                any_host,
                hosts: merged.into(),
            });
        }
        ResourceAcls {
            principals: principals.into(),
        }
    }

    /// ORs into `acc` the masks of this pattern's ACLs for `principal` (and `User:*`) from `host`.
    fn collect(&self, principal: &str, host: IpAddr, acc: &mut Masks) {
        self.collect_one(principal, host, acc);
        if principal != WILDCARD_PRINCIPAL {
            self.collect_one(WILDCARD_PRINCIPAL, host, acc);
        }
    }

    fn collect_one(&self, principal: &str, host: IpAddr, acc: &mut Masks) {
        let Ok(i) = self
            .principals
            .binary_search_by(|p| (*p.principal).cmp(principal))
        else {
            return;
        };
        let entry = &self.principals[i];
        acc.merge(entry.any_host);
        if let Ok(h) = entry.hosts.binary_search_by_key(&host, |(ip, _)| *ip) {
            acc.merge(entry.hosts[h].1);
        }
    }
}

/// The patterns of one resource type.
#[derive(Debug)]
struct TypeIndex {
    literal: HashMap<Box<str>, ResourceAcls>,
    wildcard: Option<ResourceAcls>,
    prefixed: PrefixTrie,
    /// The trie's values index this.
    prefixed_acls: Vec<ResourceAcls>,
    /// Principal → indices (into the snapshot's ACL list) of this type's ACLs, in list order.
    by_principal: HashMap<Box<str>, Vec<u32>>,
}

impl TypeIndex {
    fn new() -> Self {
        TypeIndex {
            literal: HashMap::new(),
            wildcard: None,
            prefixed: PrefixTrie::new(),
            prefixed_acls: Vec::new(),
            by_principal: HashMap::new(),
        }
    }
}

/// The result of looking a resource up: the masks for the request, and whether any ACL at all
/// (any principal, host or operation) covers the resource.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    pub(crate) masks: Masks,
    pub(crate) has_resource_acls: bool,
}

/// The decision index over a snapshot's ACL list.
#[derive(Debug)]
pub(crate) struct AclIndex {
    /// By resource type code (1..=7); slot 0 (UNKNOWN) stays empty.
    types: Vec<TypeIndex>,
}

impl AclIndex {
    /// Builds the index of `acls`, which must be sorted by binding; ACLs are referred to by
    /// their position in it. Callers keep the list under `u32::MAX` entries.
    pub(crate) fn build<'a>(acls: impl ExactSizeIterator<Item = &'a AclBinding> + Clone) -> Self {
        let type_count = ResourceType::VARIANTS
            .iter()
            .map(|t| t.code() as usize)
            .max()
            .unwrap_or(0)
            + 1;
        let mut types: Vec<TypeIndex> = (0..type_count).map(|_| TypeIndex::new()).collect();

        for (i, acl) in acls.clone().enumerate() {
            let index = &mut types[acl.pattern.resource_type.code() as usize];
            match index.by_principal.get_mut(acl.entry.principal.as_str()) {
                Some(ids) => ids.push(i as u32),
                None => {
                    index
                        .by_principal
                        .insert(acl.entry.principal.as_str().into(), vec![i as u32]);
                }
            }
        }

        let sorted: Vec<&AclBinding> = acls.collect();
        // Sorted by (type, name, pattern type, principal, …): each pattern's ACLs are one run.
        for run in sorted.chunk_by(|a, b| a.pattern == b.pattern) {
            let Some(first) = run.first() else { continue };
            let pattern = &first.pattern;
            let index = &mut types[pattern.resource_type.code() as usize];
            let node = ResourceAcls::build(run);
            match pattern.pattern_type {
                PatternType::Literal if pattern.name == WILDCARD => index.wildcard = Some(node),
                PatternType::Literal => {
                    index.literal.insert(pattern.name.as_str().into(), node);
                }
                PatternType::Prefixed => {
                    let value = index.prefixed_acls.len() as u32;
                    index.prefixed_acls.push(node);
                    index.prefixed.insert(&pattern.name, value);
                }
                // Filter-only pattern types cover no resource (validation keeps them out of
                // the log); they stay listed by `acls()` but never take part in a decision.
                PatternType::Any | PatternType::Match => {}
            }
        }
        AclIndex { types }
    }

    fn type_index(&self, resource_type: ResourceType) -> Option<&TypeIndex> {
        self.types.get(resource_type.code() as usize)
    }

    /// The ACLs that cover resource `name` of `resource_type` — its LITERAL name, the LITERAL
    /// wildcard, every PREFIXED prefix — folded for `principal` connecting from `host`.
    pub(crate) fn lookup(
        &self,
        principal: &str,
        host: IpAddr,
        resource_type: ResourceType,
        name: &str,
    ) -> Lookup {
        let mut out = Lookup::default();
        let Some(index) = self.type_index(resource_type) else {
            return out;
        };
        let host = host.to_canonical();
        let mut visit = |node: &ResourceAcls| {
            out.has_resource_acls = true;
            node.collect(principal, host, &mut out.masks);
        };
        if let Some(node) = index.literal.get(name) {
            visit(node);
        }
        if let Some(node) = &index.wildcard {
            visit(node);
        }
        index.prefixed.for_each_prefix(name, |i| {
            if let Some(node) = index.prefixed_acls.get(i as usize) {
                visit(node);
            }
        });
        out
    }

    /// Positions (in the snapshot's list) of the ACLs of `resource_type` whose principal is
    /// exactly `principal`.
    pub(crate) fn acls_of_principal(&self, resource_type: ResourceType, principal: &str) -> &[u32] {
        self.type_index(resource_type)
            .and_then(|index| index.by_principal.get(principal))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}
