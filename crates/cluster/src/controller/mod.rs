//! The active controller (Kafka's `QuorumController`): runs on the Raft leader only, started and
//! stopped by the quorum on leadership changes.
//!
//! It serves broker registration, heartbeats (session tracking, unfencing, controlled shutdown),
//! AlterPartition and preferred elections, and has a clock (`Controller::tick`) that fences
//! brokers whose sessions lapsed and, when enabled, rebalances leaders. Every decision is a pure
//! function in `decisions` run inside its host's `propose`, so it is made on the current image
//! and retried if another write got in first. Heartbeat state is in memory (`sessions`).
//!
//! Dependencies point one way: the quorum hosts and owns the controller, and the controller does
//! not know the quorum. What it needs of its node is the `ControllerHost` trait (`host`), lent
//! to every call; the requests and answers it serves are its own (`requests`), and its errors are
//! the crate's (`crate::error`). The controller keeps no reference to its host and spawns no
//! task: the quorum runs the clock (every `Controller::tick_period`) in a task it owns and
//! aborts when leadership ends or the quorum shuts down, so nothing here can outlive its host or
//! needs a `Weak` to find out whether it did.
//!
//! Thread-safety: handlers run concurrently on RPC tasks; `sessions` is a short-held mutex and all
//! metadata changes are serialised by the host's `propose`. `tick` runs on one task at a time.

mod decisions;
pub(crate) mod host;
pub(crate) mod requests;
mod sessions;

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::{QuorumError, RemoteError};
use crate::metadata::{BrokerRegistration, InvalidRecord, PartitionImage, RegistrationProblem};
use crate::replication::election::AlterPartitionRequest;
use host::{ControllerHost, ControllerSettings};
use requests::{AlterPartition, Decided, Heartbeat, HeartbeatReply};
use sessions::BrokerSessions;

/// The active controller of this node's term of leadership.
#[derive(Debug)]
pub struct Controller {
    sessions: Mutex<BrokerSessions>,
    /// When the clock last rebalanced leaders (activation at first). Only `tick` uses it.
    last_rebalance: Mutex<Instant>,
}

/// A failed proposal as the requester is told.
fn failed(e: QuorumError) -> RemoteError {
    match e {
        QuorumError::Remote(r) => r,
        QuorumError::Invalid(r) => RemoteError::Invalid(r),
        QuorumError::Stopped => RemoteError::Stopped,
        other => RemoteError::Failed(other.to_string()),
    }
}

/// `Ok` while the host leads, else `NotController` with its leader hint.
fn leading(host: &impl ControllerHost) -> Result<(), RemoteError> {
    if host.is_leader() {
        Ok(())
    } else {
        Err(RemoteError::NotController {
            leader: host.controller_leader(),
        })
    }
}

impl Controller {
    /// Activates the controller on the new Raft leader, whose log ends at `log_end`: every
    /// registered broker gets a fresh session timeout from now.
    pub(crate) fn start(log_end: i64) -> Controller {
        let now = Instant::now();
        Controller {
            sessions: Mutex::new(BrokerSessions::new(now, log_end)),
            last_rebalance: Mutex::new(now),
        }
    }

    /// Registers a broker as Kafka's controller does: the registration must be sane, only a
    /// configured voter registers as a voter, and a new incarnation is refused while another one
    /// is registered, unfenced and within its session (DUPLICATE_BROKER_REGISTRATION). Answers
    /// with the offset from which the image shows the registration.
    pub(crate) async fn register_broker(
        &self,
        host: &impl ControllerHost,
        reg: BrokerRegistration,
    ) -> Result<Decided<()>, RemoteError> {
        leading(host)?;
        let mut checked = reg.validate();
        if checked.is_ok() && reg.voter && !host.is_voter_id(reg.broker_id) {
            checked = Err(InvalidRecord::Registration {
                broker_id: reg.broker_id,
                problem: RegistrationProblem::NotAVoter,
            });
        }
        if let Err(e) = checked {
            tracing::warn!(broker = reg.broker_id, error = %e, "broker registration refused");
            return Err(RemoteError::Invalid(e));
        }
        let settings = host.settings();
        let timeout = Duration::from_millis(settings.session_timeout_ms);
        let session_live = !self
            .sessions
            .lock()
            .expired(reg.broker_id, Instant::now(), timeout);
        let unclean = settings.unclean_leader_election_default;
        let result = host
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
                return Err(RemoteError::DuplicateBrokerRegistration {
                    broker_id: reg.broker_id,
                });
            }
            Err(e) => return Err(failed(e)),
        };
        self.sessions
            .lock()
            .registered(reg.broker_id, image.offset, Instant::now());
        tracing::info!(broker = reg.broker_id, incarnation = %reg.incarnation, offset = image.offset, "broker registered");
        if !reg.voter && !reg.controller_addr.is_empty() {
            if let Err(r) = host
                .ensure_learner(reg.broker_id, &reg.controller_addr)
                .await
            {
                tracing::warn!(broker = reg.broker_id, answer = ?r, "adding the broker as a learner failed");
            }
        }
        Ok(Decided {
            value: (),
            offset: image.offset,
        })
    }

    /// A broker heartbeat: keeps its session, unfences it once it caught up with its
    /// registration, or runs its controlled shutdown.
    pub(crate) async fn heartbeat(
        &self,
        host: &impl ControllerHost,
        h: Heartbeat,
    ) -> Result<Decided<HeartbeatReply>, RemoteError> {
        leading(host)?;
        let stale = RemoteError::StaleBroker {
            broker_id: h.broker_id,
        };
        let img = host.image();
        let Some(b) = img.brokers.get(&h.broker_id) else {
            return Err(stale);
        };
        if b.registration.incarnation != h.incarnation {
            return Err(stale);
        }
        let unclean = host.settings().unclean_leader_election_default;
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
            let fenced = host
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
                    Ok(Decided {
                        value: HeartbeatReply {
                            fenced: true,
                            should_shut_down: true,
                        },
                        offset: image.offset,
                    })
                }
                Err(e) => Err(failed(e)),
            };
        }
        let mut fenced = b.fenced;
        let mut offset = img.offset;
        if fenced && h.metadata_offset >= registered_offset {
            let result = host
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
                Err(e) => return Err(failed(e)),
            }
        }
        Ok(Decided {
            value: HeartbeatReply {
                fenced,
                should_shut_down: false,
            },
            offset,
        })
    }

    /// An ISR change from a partition leader: the new partition state, or the refusal's Kafka
    /// error code.
    pub(crate) async fn alter_partition(
        &self,
        host: &impl ControllerHost,
        a: AlterPartition,
    ) -> Result<Decided<Result<PartitionImage, i16>>, RemoteError> {
        leading(host)?;
        let req = AlterPartitionRequest {
            broker: a.broker,
            leader_epoch: a.leader_epoch,
            partition_epoch: a.partition_epoch,
            new_isr: a.new_isr.clone(),
        };
        match host
            .propose(|img| decisions::alter(img, a.topic_id, a.partition, &req))
            .await
        {
            Ok((value, image)) => Ok(Decided {
                value,
                offset: image.offset,
            }),
            Err(e) => Err(failed(e)),
        }
    }

    /// Preferred leader election: per partition `Ok` or a Kafka error code.
    pub(crate) async fn elect_leaders(
        &self,
        host: &impl ControllerHost,
        partitions: Vec<(Uuid, i32)>,
    ) -> Result<Decided<Vec<Result<(), i16>>>, RemoteError> {
        leading(host)?;
        match host.propose(|img| decisions::elect(img, &partitions)).await {
            Ok((value, image)) => Ok(Decided {
                value,
                offset: image.offset,
            }),
            Err(e) => Err(failed(e)),
        }
    }

    /// How often the host runs [`Controller::tick`]: a quarter session timeout (10 ms to 1 s),
    /// so a lapsed session is fenced within a quarter timeout of lapsing.
    pub(crate) fn tick_period(settings: &ControllerSettings) -> Duration {
        Duration::from_millis((settings.session_timeout_ms / 4).clamp(10, 1000))
    }

    /// The controller's clock: fences brokers whose sessions lapsed and, every
    /// `leader_imbalance_check_interval_ms` when `auto_leader_rebalance` is on, rebalances
    /// leaders. Does nothing while the host does not lead.
    pub(crate) async fn tick(&self, host: &impl ControllerHost) {
        if leading(host).is_err() {
            return;
        }
        let settings = host.settings();
        self.fence_expired(host, &settings).await;
        let every = Duration::from_millis(settings.leader_imbalance_check_interval_ms.max(1));
        let due = settings.auto_leader_rebalance && {
            let mut last = self.last_rebalance.lock();
            let due = last.elapsed() >= every;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.rebalance(host).await;
        }
    }

    /// Fences every unfenced broker whose session lapsed.
    async fn fence_expired(&self, host: &impl ControllerHost, settings: &ControllerSettings) {
        let timeout = Duration::from_millis(settings.session_timeout_ms);
        let unclean = settings.unclean_leader_election_default;
        let img = host.image();
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
            let r = host
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

    async fn rebalance(&self, host: &impl ControllerHost) {
        match host.propose(|img| (decisions::rebalance(img), ())).await {
            Ok(((), img)) => tracing::debug!(offset = img.offset, "auto leader rebalance checked"),
            Err(e) => tracing::warn!(error = %e, "auto leader rebalance failed"),
        }
    }
}

#[cfg(test)]
mod tests;
