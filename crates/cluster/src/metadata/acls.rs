//! ACLs as the metadata holds them (Kafka's `AccessControlEntryRecord` and
//! `RemoveAccessControlEntryRecord`, KIP-801): each binding under the id its record gave it.
//!
//! The map sits behind an `Arc` because the image is copied on every applied batch while ACLs
//! change rarely: a copy shares them, and the broker rebuilds its authorizer only when the
//! `Arc` changed ([`Acls::same_as`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strom_authorizer::AclBinding;
use uuid::Uuid;

/// Every ACL of the cluster by id.
#[derive(Debug, Clone, Default)]
pub struct Acls {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    by_id: BTreeMap<Uuid, AclBinding>,
    /// The same ACLs by binding: CreateAcls skips one that exists (Kafka's `existingAcls`).
    by_binding: BTreeMap<AclBinding, Uuid>,
}

impl Acls {
    /// The bindings by id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Uuid, &AclBinding)> {
        self.inner.by_id.iter()
    }
    /// How many ACLs there are.
    pub fn len(&self) -> usize {
        self.inner.by_id.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.inner.by_id.is_empty()
    }
    /// True when `id` names an ACL.
    pub fn contains(&self, id: &Uuid) -> bool {
        self.inner.by_id.contains_key(id)
    }
    /// True when a binding equal to `binding` exists (CreateAcls of an existing ACL adds
    /// nothing, as Kafka).
    pub fn contains_binding(&self, binding: &AclBinding) -> bool {
        self.inner.by_binding.contains_key(binding)
    }
    /// True when both are the same set without comparing them: `other` is a copy of this image's
    /// ACLs that no ACL record changed since.
    pub fn same_as(&self, other: &Acls) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
    pub(crate) fn insert(&mut self, id: Uuid, binding: AclBinding) {
        let inner = Arc::make_mut(&mut self.inner);
        if let Some(old) = inner.by_id.insert(id, binding.clone()) {
            inner.by_binding.remove(&old);
        }
        inner.by_binding.insert(binding, id);
    }
    pub(crate) fn remove(&mut self, id: &Uuid) {
        if self.inner.by_id.contains_key(id) {
            let inner = Arc::make_mut(&mut self.inner);
            if let Some(old) = inner.by_id.remove(id) {
                inner.by_binding.remove(&old);
            }
        }
    }
}

impl Serialize for Acls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.inner.by_id.iter())
    }
}

impl<'de> Deserialize<'de> for Acls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Acls, D::Error> {
        let entries: Vec<(Uuid, AclBinding)> = Vec::deserialize(d)?;
        let mut acls = Acls::default();
        for (id, binding) in entries {
            acls.insert(id, binding);
        }
        Ok(acls)
    }
}
