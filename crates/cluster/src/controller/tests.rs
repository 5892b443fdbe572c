//! The controller against an in-memory [`ControllerHost`]: no Raft, no quorum. Shows the seam is
//! the whole of what the controller needs, and checks its handlers and clock on their own.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use uuid::Uuid;

use super::decisions::tests::reg;
use super::host::{ControllerHost, ControllerSettings};
use super::requests::{Decided, Heartbeat, HeartbeatReply};
use super::Controller;
use crate::error::{QuorumError, RemoteError};
use crate::metadata::{InvalidRecord, MetadataImage, MetadataRecord, RegistrationProblem};

/// A host whose log is its image: a proposal is applied at once, each record one offset.
struct MemoryHost {
    image: Mutex<Arc<MetadataImage>>,
    leader: AtomicBool,
    voters: Vec<i32>,
    settings: ControllerSettings,
}

impl MemoryHost {
    fn new(session_timeout_ms: u64) -> MemoryHost {
        MemoryHost {
            image: Mutex::new(Arc::new(MetadataImage::default())),
            leader: AtomicBool::new(true),
            voters: vec![1, 2, 3],
            settings: ControllerSettings {
                session_timeout_ms,
                leader_imbalance_check_interval_ms: 300_000,
                auto_leader_rebalance: false,
                unclean_leader_election_default: false,
            },
        }
    }

    fn fenced(&self, broker: i32) -> Option<bool> {
        self.image.lock().brokers.get(&broker).map(|b| b.fenced)
    }
}

impl ControllerHost for MemoryHost {
    fn propose<T: Send>(
        &self,
        mut decide: impl FnMut(&MetadataImage) -> (Vec<MetadataRecord>, T) + Send,
    ) -> impl Future<Output = Result<(T, Arc<MetadataImage>), QuorumError>> + Send {
        let mut current = self.image.lock();
        let (records, value) = decide(&current);
        let result = if records.is_empty() {
            Ok((value, current.clone()))
        } else {
            let mut next = MetadataImage::clone(&current);
            match next.apply_records(&records) {
                Ok(()) => {
                    next.offset += i64::try_from(records.len()).expect("few records");
                    *current = Arc::new(next);
                    Ok((value, current.clone()))
                }
                Err(e) => Err(QuorumError::Invalid(e)),
            }
        };
        std::future::ready(result)
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.image.lock().clone()
    }

    fn settings(&self) -> ControllerSettings {
        self.settings
    }

    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    fn controller_leader(&self) -> Option<i32> {
        Some(2)
    }

    fn is_voter_id(&self, id: i32) -> bool {
        self.voters.contains(&id)
    }

    fn ensure_learner(
        &self,
        _node_id: i32,
        _addr: &str,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Registers broker `id` with a new incarnation: its incarnation and the registration's offset.
async fn register(c: &Controller, host: &MemoryHost, id: i32) -> (Uuid, i64) {
    let inc = Uuid::new_v4();
    let registered = c
        .register_broker(host, reg(id, inc))
        .await
        .expect("registered");
    (inc, registered.offset)
}

fn beat(broker_id: i32, incarnation: Uuid, metadata_offset: i64, want_shutdown: bool) -> Heartbeat {
    Heartbeat {
        broker_id,
        incarnation,
        metadata_offset,
        want_shutdown,
    }
}

#[tokio::test]
async fn a_broker_registers_fenced_is_unfenced_when_caught_up_and_shuts_down() {
    let host = MemoryHost::new(60_000);
    let c = Controller::start(0);
    let (inc, registered) = register(&c, &host, 1).await;
    assert_eq!(host.fenced(1), Some(true));

    let behind = c
        .heartbeat(&host, beat(1, inc, registered - 1, false))
        .await
        .expect("heartbeat");
    assert!(
        behind.value.fenced,
        "not caught up with its registration yet"
    );

    let caught_up = c
        .heartbeat(&host, beat(1, inc, registered, false))
        .await
        .expect("heartbeat");
    assert_eq!(
        caught_up.value,
        HeartbeatReply {
            fenced: false,
            should_shut_down: false
        }
    );
    assert_eq!(caught_up.offset, host.image().offset);
    assert_eq!(host.fenced(1), Some(false));

    let stale = c.heartbeat(&host, beat(1, Uuid::new_v4(), 0, false)).await;
    assert_eq!(stale, Err(RemoteError::StaleBroker { broker_id: 1 }));

    let Decided { value, .. } = c
        .heartbeat(&host, beat(1, inc, caught_up.offset, true))
        .await
        .expect("shutdown heartbeat");
    assert_eq!(
        value,
        HeartbeatReply {
            fenced: true,
            should_shut_down: true
        }
    );
    assert_eq!(host.fenced(1), Some(true));
}

#[tokio::test]
async fn requests_are_refused_when_the_host_does_not_lead_or_the_rules_are_broken() {
    let host = MemoryHost::new(60_000);
    let c = Controller::start(0);
    assert_eq!(
        c.register_broker(&host, reg(7, Uuid::new_v4())).await,
        Err(RemoteError::Invalid(InvalidRecord::Registration {
            broker_id: 7,
            problem: RegistrationProblem::NotAVoter,
        }))
    );
    host.leader.store(false, Ordering::SeqCst);
    assert_eq!(
        c.register_broker(&host, reg(1, Uuid::new_v4())).await,
        Err(RemoteError::NotController { leader: Some(2) })
    );
    assert_eq!(
        c.elect_leaders(&host, Vec::new()).await,
        Err(RemoteError::NotController { leader: Some(2) })
    );
    assert_eq!(host.image().offset, 0, "nothing was written");
}

#[tokio::test]
async fn the_clock_fences_a_broker_whose_session_lapsed_and_only_while_leading() {
    let host = MemoryHost::new(40);
    let c = Controller::start(0);
    let (inc, registered) = register(&c, &host, 1).await;
    c.heartbeat(&host, beat(1, inc, registered, false))
        .await
        .expect("heartbeat");
    assert_eq!(host.fenced(1), Some(false));
    assert_eq!(
        Controller::tick_period(&host.settings()),
        std::time::Duration::from_millis(10)
    );

    c.tick(&host).await;
    assert_eq!(host.fenced(1), Some(false), "the session is still live");

    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    host.leader.store(false, Ordering::SeqCst);
    c.tick(&host).await;
    assert_eq!(
        host.fenced(1),
        Some(false),
        "a controller that does not lead does nothing"
    );

    host.leader.store(true, Ordering::SeqCst);
    c.tick(&host).await;
    assert_eq!(host.fenced(1), Some(true), "the lapsed session is fenced");
}
