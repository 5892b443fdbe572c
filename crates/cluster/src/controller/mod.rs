//! The active controller (Kafka's `QuorumController`): runs on the Raft leader only, started and
//! stopped by the quorum on leadership changes.
//!
//! It serves broker registration, heartbeats (session tracking, unfencing, controlled shutdown),
//! AlterPartition and preferred elections, and runs a periodic tick that fences brokers whose
//! sessions lapsed and, when enabled, rebalances leaders. Every decision is a pure function in
//! `decisions` run inside `Quorum::propose`, so it is made on the current image and retried if
//! another write got in first. Heartbeat state is in memory (`sessions`).
//!
//! Thread-safety: handlers run concurrently on RPC tasks; `sessions` is a short-held mutex and all
//! metadata changes are serialised by `propose`.

mod decisions;
mod sessions;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::metadata::{BrokerRegistration, InvalidRecord, RegistrationProblem};
use crate::quorum::{HeartbeatReply, Quorum, QuorumError, RemoteError};
use crate::replication::election::AlterPartitionRequest;
use sessions::BrokerSessions;

use crate::quorum::wire::{AlterPartition, Heartbeat, Response};

/// The active controller of this node's term of leadership.
#[derive(Debug)]
pub struct Controller {
    quorum: Weak<Quorum>,
    sessions: Mutex<BrokerSessions>,
    tick: Mutex<Option<JoinHandle<()>>>,
}

fn failed(e: QuorumError) -> Response {
    match e {
        QuorumError::Remote(r) => Response::Error(r),
        QuorumError::Invalid(r) => Response::Error(RemoteError::Invalid(r)),
        QuorumError::Stopped => Response::Error(RemoteError::Stopped),
        other => Response::Error(RemoteError::Failed(other.to_string())),
    }
}

impl Controller {
    /// Activates the controller on the new Raft leader: every registered broker gets a fresh
    /// session timeout from now.
    pub(crate) fn start(quorum: &Arc<Quorum>) -> Arc<Controller> {
        let log_end = quorum
            .raft()
            .metrics()
            .borrow()
            .last_log_index
            .map_or(0, |i| i64::try_from(i + 1).unwrap_or(i64::MAX));
        let c = Arc::new(Controller {
            quorum: Arc::downgrade(quorum),
            sessions: Mutex::new(BrokerSessions::new(Instant::now(), log_end)),
            tick: Mutex::new(None),
        });
        let handle = tokio::spawn(tick_loop(Arc::downgrade(&c)));
        *c.tick.lock() = Some(handle);
        c
    }

    /// Deactivates (leadership lost, or shutdown).
    pub(crate) fn stop(&self) {
        if let Some(t) = self.tick.lock().take() {
            t.abort();
        }
    }

    /// The quorum, while this node still leads.
    fn quorum(&self) -> Result<Arc<Quorum>, RemoteError> {
        match self.quorum.upgrade() {
            Some(q) if q.is_leader() => Ok(q),
            Some(q) => Err(RemoteError::NotController {
                leader: q.controller_leader(),
            }),
            None => Err(RemoteError::Stopped),
        }
    }

    /// Registers a broker as Kafka's controller does: the registration must be sane, only a
    /// configured voter registers as a voter, and a new incarnation is refused while another one
    /// is registered, unfenced and within its session (DUPLICATE_BROKER_REGISTRATION).
    pub(crate) async fn register_broker(&self, reg: BrokerRegistration) -> Response {
        let q = match self.quorum() {
            Ok(q) => q,
            Err(e) => return Response::Error(e),
        };
        let mut checked = reg.validate();
        if checked.is_ok() && reg.voter && !q.is_voter_id(reg.broker_id) {
            checked = Err(InvalidRecord::Registration {
                broker_id: reg.broker_id,
                problem: RegistrationProblem::NotAVoter,
            });
        }
        if let Err(e) = checked {
            tracing::warn!(broker = reg.broker_id, error = %e, "broker registration refused");
            return Response::Error(RemoteError::Invalid(e));
        }
        let timeout = Duration::from_millis(q.config().session_timeout_ms);
        let session_live = !self
            .sessions
            .lock()
            .expired(reg.broker_id, Instant::now(), timeout);
        let unclean = q.config().unclean_leader_election_default;
        let result = q
            .propose(|img| {
                if decisions::is_duplicate(img, &reg, session_live) {
                    return (Vec::new(), false);
                }
                (decisions::register(img, &reg, unclean), true)
            })
            .await;
        let image = match result {
            Ok((true, image)) => image,
            Ok((false, _)) => {
                tracing::warn!(broker = reg.broker_id, incarnation = %reg.incarnation, "broker registration refused: another incarnation is live");
                return Response::Error(RemoteError::DuplicateBrokerRegistration {
                    broker_id: reg.broker_id,
                });
            }
            Err(e) => return failed(e),
        };
        self.sessions
            .lock()
            .registered(reg.broker_id, image.offset, Instant::now());
        tracing::info!(broker = reg.broker_id, incarnation = %reg.incarnation, offset = image.offset, "broker registered");
        if !reg.voter && !reg.controller_addr.is_empty() {
            if let Err(r) = q.ensure_learner(reg.broker_id, &reg.controller_addr).await {
                tracing::warn!(broker = reg.broker_id, answer = ?r, "adding the broker as a learner failed");
            }
        }
        Response::Registered {
            offset: image.offset,
        }
    }

    pub(crate) async fn heartbeat(&self, h: Heartbeat) -> Response {
        let q = match self.quorum() {
            Ok(q) => q,
            Err(e) => return Response::Error(e),
        };
        let stale = Response::Error(RemoteError::StaleBroker {
            broker_id: h.broker_id,
        });
        let img = q.image();
        let Some(b) = img.brokers.get(&h.broker_id) else {
            return stale;
        };
        if b.registration.incarnation != h.incarnation {
            return stale;
        }
        let unclean = q.config().unclean_leader_election_default;
        let (shutting_down, registered_offset) = {
            let mut s = self.sessions.lock();
            s.touch(h.broker_id, Instant::now());
            if h.want_shutdown {
                s.begin_shutdown(h.broker_id);
            }
            (
                s.is_shutting_down(h.broker_id),
                s.registered_offset(h.broker_id),
            )
        };
        if shutting_down {
            let fenced = q
                .propose(|img| {
                    (
                        decisions::fence(img, h.broker_id, Some(h.incarnation), unclean),
                        (),
                    )
                })
                .await;
            return match fenced {
                Ok(((), image)) => {
                    tracing::info!(broker = h.broker_id, "controlled shutdown complete");
                    Response::Heartbeat {
                        reply: HeartbeatReply {
                            fenced: true,
                            should_shut_down: true,
                        },
                        offset: image.offset,
                    }
                }
                Err(e) => failed(e),
            };
        }
        let mut fenced = b.fenced;
        let mut offset = img.offset;
        if fenced && h.metadata_offset >= registered_offset {
            let result = q
                .propose(|img| {
                    (
                        decisions::unfence(img, h.broker_id, h.incarnation, unclean),
                        (),
                    )
                })
                .await;
            match result {
                Ok(((), image)) => {
                    fenced = image.brokers.get(&h.broker_id).is_none_or(|b| b.fenced);
                    offset = image.offset;
                    tracing::info!(broker = h.broker_id, fenced, "broker unfenced");
                }
                Err(e) => return failed(e),
            }
        }
        Response::Heartbeat {
            reply: HeartbeatReply {
                fenced,
                should_shut_down: false,
            },
            offset,
        }
    }

    pub(crate) async fn alter_partition(&self, a: AlterPartition) -> Response {
        let q = match self.quorum() {
            Ok(q) => q,
            Err(e) => return Response::Error(e),
        };
        let req = AlterPartitionRequest {
            broker: a.broker,
            leader_epoch: a.leader_epoch,
            partition_epoch: a.partition_epoch,
            new_isr: a.new_isr.clone(),
        };
        match q
            .propose(|img| decisions::alter(img, a.topic_id, a.partition, &req))
            .await
        {
            Ok((result, image)) => Response::AlterPartition {
                result,
                offset: image.offset,
            },
            Err(e) => failed(e),
        }
    }

    pub(crate) async fn elect_leaders(&self, partitions: Vec<(Uuid, i32)>) -> Response {
        let q = match self.quorum() {
            Ok(q) => q,
            Err(e) => return Response::Error(e),
        };
        match q.propose(|img| decisions::elect(img, &partitions)).await {
            Ok((results, image)) => Response::ElectLeaders {
                results,
                offset: image.offset,
            },
            Err(e) => failed(e),
        }
    }

    /// Fences every unfenced broker whose session lapsed.
    async fn fence_expired(&self, q: &Quorum) {
        let timeout = Duration::from_millis(q.config().session_timeout_ms);
        let unclean = q.config().unclean_leader_election_default;
        let img = q.image();
        let now = Instant::now();
        let expired: Vec<(i32, Uuid)> = {
            let s = self.sessions.lock();
            img.brokers
                .values()
                .filter(|b| !b.fenced && s.expired(b.id(), now, timeout))
                .map(|b| (b.id(), b.registration.incarnation))
                .collect()
        };
        for (broker, incarnation) in expired {
            tracing::warn!(broker, ?timeout, "broker session expired; fencing it");
            let r = q
                .propose(|img| {
                    let records = decisions::fence(img, broker, Some(incarnation), unclean);
                    // None: nothing to write (fenced or re-registered meanwhile).
                    let leaderless =
                        (!records.is_empty()).then(|| decisions::leaderless(img, &records));
                    (records, leaderless)
                })
                .await;
            // Every outcome is logged: "fenced, but some partitions have no leader now" looks
            // like a stuck controller from the outside otherwise.
            match r {
                Ok((None, _)) => tracing::info!(broker, "broker already fenced or re-registered"),
                Ok((Some(leaderless), image)) if leaderless.is_empty() => {
                    tracing::info!(broker, offset = image.offset, "broker fenced");
                }
                Ok((Some(leaderless), image)) => tracing::warn!(
                    broker,
                    offset = image.offset,
                    ?leaderless,
                    "broker fenced; these partitions have no leader until an ISR member returns \
                     (no other live replica in their ISR, unclean election disabled)"
                ),
                Err(e) => tracing::warn!(broker, error = %e, "fencing an expired broker failed"),
            }
        }
    }

    async fn rebalance(&self, q: &Quorum) {
        match q.propose(|img| (decisions::rebalance(img), ())).await {
            Ok(((), img)) => tracing::debug!(offset = img.offset, "auto leader rebalance checked"),
            Err(e) => tracing::warn!(error = %e, "auto leader rebalance failed"),
        }
    }
}

/// The controller's clock: session expiry every quarter session timeout, leader rebalance every
/// `leader_imbalance_check_interval_ms`.
async fn tick_loop(controller: Weak<Controller>) {
    let mut last_rebalance = Instant::now();
    loop {
        let (period, rebalance_every, rebalance_on) = {
            let Some(c) = controller.upgrade() else {
                return;
            };
            let Some(q) = c.quorum.upgrade() else { return };
            let cfg = q.config();
            (
                Duration::from_millis((cfg.session_timeout_ms / 4).clamp(10, 1000)),
                Duration::from_millis(cfg.leader_imbalance_check_interval_ms.max(1)),
                cfg.auto_leader_rebalance,
            )
        };
        tokio::time::sleep(period).await;
        let Some(c) = controller.upgrade() else {
            return;
        };
        let Ok(q) = c.quorum() else { continue };
        c.fence_expired(&q).await;
        if rebalance_on && last_rebalance.elapsed() >= rebalance_every {
            last_rebalance = Instant::now();
            c.rebalance(&q).await;
        }
    }
}
