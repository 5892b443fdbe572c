//! `Authorization`: whether a connection's principal may do an operation on a resource, as
//! Kafka's `StandardAuthorizer` decides it from the ACLs in the metadata log.
//!
//! Off unless `authorizer.class.name` names Kafka's StandardAuthorizer: then every request is
//! allowed, as before ACLs existed (Kafka without an authorizer). On, it is deny-by-default:
//! `super.users` may do everything, anyone else what an ALLOW ACL (and no DENY ACL) grants,
//! or everything on a resource without any ACL when `allow.everyone.if.no.acl.found`.
//!
//! The decision index (`strom_authorizer::StandardAuthorizer`) is an immutable snapshot,
//! rebuilt when a published image carries other ACLs than the last one (`on_image`, called by
//! the `MetadataPublisher` for every image): ACLs change rarely, requests ask often, so a
//! request reads one `Arc` and never waits on a rebuild.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_authorizer::{
    AclOperation, AuthorizerConfig, ResourceType, StandardAuthorizer, CLUSTER_RESOURCE_NAME,
};
use strom_cluster::metadata::Acls;

use crate::config::{BrokerConfig, STANDARD_AUTHORIZER};
use crate::metadata::MetadataImage;
use crate::session::Session;

/// The broker's authorizer: off, or the current ACL snapshot.
#[derive(Debug)]
pub(crate) struct Authorization {
    /// `None`: no authorizer configured, everything allowed.
    config: Option<AuthorizerConfig>,
    current: RwLock<Arc<StandardAuthorizer>>,
    /// The ACLs `current` was built from (compared by pointer with each image's).
    built_from: Mutex<Acls>,
}

impl Authorization {
    /// From `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`.
    pub(crate) fn new(config: &BrokerConfig) -> Authorization {
        let enabled = config.value("authorizer.class.name") == Some(STANDARD_AUTHORIZER);
        let settings = AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users(
                config.value("super.users").unwrap_or_default(),
            ),
            allow_everyone_if_no_acl_found: config
                .value("allow.everyone.if.no.acl.found")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        };
        let empty = StandardAuthorizer::new(settings.clone(), std::iter::empty());
        Authorization {
            config: enabled.then_some(settings),
            current: RwLock::new(Arc::new(empty)),
            built_from: Mutex::new(Acls::default()),
        }
    }

    /// True when ACLs are enforced (CreateAcls and friends answer SECURITY_DISABLED otherwise).
    pub(crate) fn enabled(&self) -> bool {
        self.config.is_some()
    }

    /// Rebuilds the decision index when `image` holds other ACLs than the current snapshot.
    pub(crate) fn on_image(&self, image: &MetadataImage) {
        let Some(config) = &self.config else {
            return;
        };
        let mut built_from = self.built_from.lock();
        if built_from.same_as(image.acls()) {
            return;
        }
        let started = std::time::Instant::now();
        let acls = image
            .acls()
            .iter()
            .map(|(id, binding)| (*id, binding.clone()));
        let next = Arc::new(StandardAuthorizer::new(config.clone(), acls));
        tracing::debug!(acls = next.len(), took = ?started.elapsed(), "authorizer rebuilt");
        *self.current.write() = next;
        *built_from = image.acls().clone();
    }

    /// The current snapshot (DescribeAcls reads it; DeleteAcls matches the image instead).
    pub(crate) fn snapshot(&self) -> Arc<StandardAuthorizer> {
        self.current.read().clone()
    }

    /// May `session` do `operation` on the resource?
    pub(crate) fn authorize(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.config.is_none() {
            return true;
        }
        let allowed = self.current.read().authorize(
            session.principal_text(),
            session.peer.ip(),
            operation,
            resource_type,
            name,
        );
        if !allowed {
            // Kafka logs denials at INFO on its authorizer logger; debug here keeps a refused
            // flood out of the default log.
            tracing::debug!(principal = session.principal_text(), host = %session.peer.ip(), %operation, %resource_type, resource = name, "denied");
        }
        allowed
    }

    /// May `session` do `operation` on the cluster?
    pub(crate) fn authorize_cluster(&self, session: &Session, operation: AclOperation) -> bool {
        self.authorize(
            session,
            operation,
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
        )
    }

    /// Could `session` do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`: an idempotent producer needs WRITE on some topic)?
    pub(crate) fn authorize_by_resource_type(
        &self,
        session: &Session,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.config.is_none() {
            return true;
        }
        self.current.read().authorize_by_resource_type(
            session.principal_text(),
            session.peer.ip(),
            operation,
            resource_type,
        )
    }

    /// The `authorized_operations` bit field of a resource: bit `code` set for each operation
    /// Kafka reports for the type that `session` may do (all of them without an authorizer).
    pub(crate) fn authorized_operations(
        &self,
        session: &Session,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        let snapshot = self.config.is_some().then(|| self.snapshot());
        resource_type
            .supported_operations()
            .iter()
            .filter(|op| {
                snapshot.as_ref().is_none_or(|a| {
                    a.authorize(
                        session.principal_text(),
                        session.peer.ip(),
                        **op,
                        resource_type,
                        name,
                    )
                })
            })
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}
