//! `Controller`: the active controller of the simulation — reliable (it never crashes, its
//! state is the committed metadata), deciding every partition change with
//! `strom_cluster::replication::election`. It fences brokers whose heartbeats lapse, unfences
//! them when they heartbeat again, validates leaders' AlterPartition requests and runs preferred
//! leader election. Its messages still cross the faulty network.

use std::collections::BTreeMap;

use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::{
    alter_partition, elect_preferred, on_broker_fenced, on_broker_unfenced,
};

use super::net::{Envelope, Msg, CONTROLLER};
use super::{trace, Ctx};

/// A broker's registration.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) incarnation: u64,
    pub(crate) fenced: bool,
    pub(crate) last_heartbeat_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Controller {
    pub(crate) image: PartitionImage,
    pub(crate) brokers: BTreeMap<i32, Registration>,
    last_preferred_ms: i64,
}

impl Controller {
    /// All brokers registered, unfenced, heartbeating as of time 0.
    pub(crate) fn new(image: PartitionImage, brokers: &[i32]) -> Controller {
        let brokers = brokers
            .iter()
            .map(|&b| {
                (
                    b,
                    Registration {
                        incarnation: 1,
                        fenced: false,
                        last_heartbeat_ms: 0,
                    },
                )
            })
            .collect();
        Controller {
            image,
            brokers,
            last_preferred_ms: 0,
        }
    }

    fn is_live(&self, b: i32) -> bool {
        self.brokers.get(&b).is_some_and(|r| !r.fenced)
    }

    /// Session expiry and periodic preferred leader election.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let expired: Vec<i32> = self
            .brokers
            .iter()
            .filter(|(_, r)| {
                !r.fenced && ctx.now - r.last_heartbeat_ms > ctx.cfg.session_timeout_ms
            })
            .map(|(&b, _)| b)
            .collect();
        for b in expired {
            self.fence(b, ctx);
        }
        if ctx.now - self.last_preferred_ms >= ctx.cfg.preferred_election_ms {
            self.last_preferred_ms = ctx.now;
            let next = elect_preferred(&self.image, &|b| self.is_live(b));
            if let Some(next) = next {
                trace!(ctx, "controller: preferred election {:?}", next);
                self.publish(next, ctx);
            }
        }
    }

    fn fence(&mut self, b: i32, ctx: &mut Ctx<'_>) {
        if let Some(r) = self.brokers.get_mut(&b) {
            r.fenced = true;
        }
        ctx.stats.fences += 1;
        let next = on_broker_fenced(&self.image, b, &|x| self.is_live(x), ctx.cfg.bugs.unclean);
        trace!(ctx, "controller: fence {b} -> {:?}", next);
        if let Some(next) = next {
            self.publish(next, ctx);
        }
    }

    fn unfence(&mut self, b: i32, ctx: &mut Ctx<'_>) {
        if let Some(r) = self.brokers.get_mut(&b) {
            r.fenced = false;
        }
        let next = on_broker_unfenced(&self.image, b, &|x| self.is_live(x), ctx.cfg.bugs.unclean);
        trace!(ctx, "controller: unfence {b} -> {:?}", next);
        if let Some(next) = next {
            self.publish(next, ctx);
        }
    }

    /// Commits a new image and pushes it to every registered broker.
    fn publish(&mut self, next: PartitionImage, ctx: &mut Ctx<'_>) {
        if next.leader_epoch != self.image.leader_epoch {
            ctx.stats.leader_changes += 1;
        }
        self.image = next;
        for (&b, r) in &self.brokers {
            let image = self.image.clone();
            ctx.net.send(
                ctx.rng,
                ctx.now,
                (CONTROLLER, b, r.incarnation),
                Msg::Metadata { image },
            );
        }
    }

    pub(crate) fn on_message(&mut self, env: Envelope, ctx: &mut Ctx<'_>) {
        let from = env.from;
        match env.msg {
            Msg::Heartbeat { incarnation } => self.on_heartbeat(from, incarnation, ctx),
            Msg::AlterPartition { req } => {
                let result = alter_partition(&self.image, &req, &|b| self.is_live(b));
                trace!(ctx, "controller: alter {:?} -> {:?}", req, result);
                match &result {
                    Ok(next) if *next != self.image => {
                        ctx.stats.isr_changes += 1;
                        self.publish(next.clone(), ctx);
                    }
                    Ok(_) => {}
                    Err(_) => ctx.stats.alter_errors += 1,
                }
                let inc = self.brokers.get(&from).map_or(0, |r| r.incarnation);
                ctx.net.send(
                    ctx.rng,
                    ctx.now,
                    (CONTROLLER, from, inc),
                    Msg::AlterPartitionReply { req, result },
                );
            }
            _ => {}
        }
    }

    /// Kafka's registration rule: a new incarnation is refused while the previous one's session
    /// is alive (DuplicateBrokerRegistration), so a restarted broker is fenced — and leaves
    /// every ISR — before it comes back; it is registered fenced and unfenced by its next
    /// heartbeat.
    fn on_heartbeat(&mut self, from: i32, incarnation: u64, ctx: &mut Ctx<'_>) {
        let Some(r) = self.brokers.get_mut(&from) else {
            return;
        };
        if r.incarnation == incarnation {
            r.last_heartbeat_ms = ctx.now;
            if r.fenced {
                self.unfence(from, ctx);
            }
        } else if r.fenced {
            trace!(
                ctx,
                "controller: broker {from} registers incarnation {incarnation}"
            );
            r.incarnation = incarnation;
            r.last_heartbeat_ms = ctx.now;
        } else {
            return;
        }
        let image = self.image.clone();
        ctx.net.send(
            ctx.rng,
            ctx.now,
            (CONTROLLER, from, incarnation),
            Msg::HeartbeatReply { image },
        );
    }
}
