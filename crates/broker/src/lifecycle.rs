//! A broker's life in the cluster (Kafka's `BrokerLifecycleManager`): register with the active
//! controller under a fresh incarnation, heartbeat every `broker.heartbeat.interval.ms` (the
//! controller fences a broker whose heartbeats lapse and unfences it once it has caught up), apply
//! every metadata image the quorum publishes, and on shutdown ask for a controlled shutdown so
//! leadership moves away before the process exits.

use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_cluster::quorum::BrokerRegistration;
use uuid::Uuid;

use crate::broker::Broker;

/// This process's registration.
pub(crate) fn registration(broker: &Broker, incarnation: Uuid) -> BrokerRegistration {
    BrokerRegistration {
        broker_id: broker.config.node_id,
        incarnation,
        host: broker.advertised.0.clone(),
        port: broker.advertised.1,
        rack: broker.config.explicit.get("broker.rack").cloned(),
        controller_addr: broker.config.controller_listen.clone().unwrap_or_default(),
        voter: broker.config.is_controller,
        endpoints: broker.endpoints.registration_endpoints(),
    }
}

/// Registers, then heartbeats until the controller unfences this broker and the image says so
/// (or `limit` passes: a node whose quorum is not up yet keeps trying in the background).
pub(crate) async fn join(broker: &Arc<Broker>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let reg = registration(broker, broker.incarnation);
    loop {
        match broker.metadata.register_broker(reg.clone()).await {
            Ok(()) => break,
            Err(e) => {
                tracing::debug!(error = %e, "registration not accepted yet; retrying");
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(error = %e, "not registered yet; continuing in the background");
                    start_heartbeats(Arc::downgrade(broker), Some(reg));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    start_heartbeats(Arc::downgrade(broker), None);
    let me = broker.config.node_id;
    let mut images = broker.metadata.subscribe();
    let unfenced =
        async {
            loop {
                {
                    let image = images.borrow_and_update();
                    if image.brokers.get(&me).is_some_and(|b| {
                        !b.fenced && b.registration.incarnation == broker.incarnation
                    }) {
                        break;
                    }
                }
                if images.changed().await.is_err() {
                    break;
                }
            }
        };
    if tokio::time::timeout_at(deadline, unfenced).await.is_err() {
        tracing::warn!("not unfenced yet; serving anyway (partitions stay with other leaders)");
    }
    // Roles for the image that unfenced us are applied before clients are let in.
    broker.apply_image(&broker.metadata.image());
}

/// Heartbeats every `broker.heartbeat.interval.ms` until the broker is dropped; first registers
/// with `pending` when the initial registration did not get through.
fn start_heartbeats(broker: Weak<Broker>, mut pending: Option<BrokerRegistration>) {
    tokio::spawn(async move {
        loop {
            let Some(b) = broker.upgrade() else { return };
            let interval = Duration::from_millis(b.config.broker_heartbeat_interval_ms);
            if b.shutting_down() {
                return;
            }
            if let Some(reg) = &pending {
                match b.metadata.register_broker(reg.clone()).await {
                    Ok(()) => pending = None,
                    Err(e) => tracing::debug!(error = %e, "registration retry failed"),
                }
            } else {
                let offset = b.metadata.image().offset;
                match b
                    .metadata
                    .heartbeat(b.config.node_id, b.incarnation, offset, false)
                    .await
                {
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
                }
            }
            drop(b);
            tokio::time::sleep(interval).await;
        }
    });
}

/// Applies every image the quorum publishes to this broker (roles, logs, coordinators), and the
/// current one again when the quorum confirms it caught up (logs an unconfirmed image lacked
/// may go then).
pub(crate) fn start_metadata_listener(broker: Weak<Broker>) {
    let Some(b) = broker.upgrade() else { return };
    let mut images = b.metadata.subscribe();
    let mut caught_up = b.metadata.subscribe_caught_up();
    drop(b);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = images.changed() => if r.is_err() { return },
                r = caught_up.changed() => if r.is_err() { return },
            }
            let image = images.borrow_and_update().clone();
            let Some(b) = broker.upgrade() else { return };
            // Syncing opens and deletes files: keep it off the async workers' hot path.
            let _ = tokio::task::spawn_blocking(move || b.apply_image(&image)).await;
        }
    });
}

/// Controlled shutdown: asks the controller to move leadership away and waits (bounded) until
/// it says this broker may go, so clients fail over before the process exits.
pub(crate) async fn controlled_shutdown(broker: &Broker, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let offset = broker.metadata.image().offset;
        match broker
            .metadata
            .heartbeat(broker.config.node_id, broker.incarnation, offset, true)
            .await
        {
            Ok(r) if r.should_shut_down => return,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "controlled shutdown request failed");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("controlled shutdown did not complete in time; exiting anyway");
}
