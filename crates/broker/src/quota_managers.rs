//! `QuotaManagers`: the client quotas of the metadata log as this broker enforces them (Kafka's
//! `QuotaFactory.QuotaManagers`): one `strom_quota::QuotaManager` per quota type, fed the
//! configured quotas whenever a published image changes them.
//!
//! A throttled client is answered at once with `throttle_time_ms`, and its connection is muted
//! for that long (`RequestContext::mute_for`), as Kafka does since KIP-219: the client backs off
//! by itself, and one that does not is held back by the broker.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use strom_cluster::metadata::ClientQuotas;
use strom_quota::{
    ClientQuotaManagerConfig, QuotaEntity, QuotaKey, QuotaManager, QuotaStore, QuotaType,
};

use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;
use crate::session::Session;

/// Every quota type's manager and the configured quotas.
#[derive(Debug)]
pub(crate) struct QuotaManagers {
    /// `producer_byte_rate`: bytes of record batches produced.
    pub(crate) produce: QuotaManager,
    /// `consumer_byte_rate`: bytes of records fetched by consumers (followers are exempt).
    pub(crate) fetch: QuotaManager,
    /// `request_percentage`: handler time, in percent of one thread (KIP-124).
    pub(crate) request: QuotaManager,
    /// `controller_mutation_rate`: partitions created or deleted per second (KIP-599).
    pub(crate) controller_mutation: QuotaManager,
    store: RwLock<Arc<QuotaStore>>,
    /// The image quotas `store` was built from (compared by pointer).
    built_from: Mutex<ClientQuotas>,
}

impl QuotaManagers {
    /// From `quota.window.num` and `quota.window.size.seconds`.
    pub(crate) fn new(config: &BrokerConfig) -> QuotaManagers {
        let settings = ClientQuotaManagerConfig::new(
            config.parsed("quota.window.num").unwrap_or(11),
            config.parsed("quota.window.size.seconds").unwrap_or(1),
        )
        .unwrap_or_default();
        let manager = |t| QuotaManager::new(t, settings);
        QuotaManagers {
            produce: manager(QuotaType::Produce),
            fetch: manager(QuotaType::Fetch),
            request: manager(QuotaType::Request),
            controller_mutation: manager(QuotaType::ControllerMutation),
            store: RwLock::new(Arc::new(QuotaStore::new())),
            built_from: Mutex::new(ClientQuotas::default()),
        }
    }

    /// Rebuilds the configured quotas when `image` holds other ones; the managers apply them to
    /// existing clients at once.
    pub(crate) fn on_image(&self, image: &MetadataImage) {
        let mut built_from = self.built_from.lock();
        if built_from.same_as(image.client_quotas()) {
            return;
        }
        let store = Arc::new(store_of(image.client_quotas()));
        for m in self.managers() {
            m.update_quotas(&store);
        }
        *self.store.write() = store;
        *built_from = image.client_quotas().clone();
    }

    /// The configured quotas (DescribeClientQuotas and alteration checks read them).
    pub(crate) fn store(&self) -> Arc<QuotaStore> {
        self.store.read().clone()
    }

    fn managers(&self) -> [&QuotaManager; 4] {
        [
            &self.produce,
            &self.fetch,
            &self.request,
            &self.controller_mutation,
        ]
    }
}

/// The user a quota names for a connection: the principal's name (`ANONYMOUS` unauthenticated),
/// as Kafka's `session.sanitizedUser` before URL encoding.
pub(crate) fn quota_user(session: &Session) -> &str {
    &session.principal().name
}

/// The metadata image's quotas as a store; an entity or key the quota crate does not accept
/// (a record it would have refused) is skipped with a log line.
fn store_of(quotas: &ClientQuotas) -> QuotaStore {
    let mut store = QuotaStore::new();
    for (parts, values) in quotas.iter() {
        let entity = QuotaEntity::from_components(
            parts
                .iter()
                .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
        );
        let Ok(entity) = entity else {
            tracing::warn!(?parts, "client quota entity skipped");
            continue;
        };
        for (key, value) in values {
            match QuotaKey::parse(key) {
                Ok(k) => store.replay(&entity, k, Some(*value)),
                Err(e) => tracing::warn!(%entity, key, error = %e, "client quota skipped"),
            }
        }
    }
    store
}
