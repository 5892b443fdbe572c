//! `Checker`: the invariants, checked after every step.
//!
//! It keeps the *committed log*: every record some broker's high watermark has covered, in
//! offset order (a high watermark only ever covers committed records, so this log may only
//! grow). Then:
//! - (a) every acknowledged `(offset, value)` is in the committed log, and the controller's
//!   leader and every ISR member hold the whole committed log (so no acknowledged record is lost
//!   or changed, and none can be by the next election);
//! - (b) at most one broker leads each leader epoch, and it is the one the controller chose;
//! - (c) a leader's high watermark never moves backwards within its epoch;
//! - (d) every broker's log agrees with the committed log below its high watermark (so all
//!   replicas agree below the minimum high watermark).
//!
//! Each broker's agreement with the committed log is tracked incrementally (`holds`) and reset
//! by truncation, so a step costs what changed, not the log's length.

use std::collections::BTreeMap;

use strom_cluster::replication::NO_LEADER;

use super::broker::Broker;
use super::controller::Controller;
use super::Ack;

#[derive(Debug, Default)]
pub(crate) struct Checker {
    /// `(epoch, value)` by offset.
    committed: Vec<(i32, u64)>,
    /// Per broker index: its log equals the committed log on `0..holds`.
    holds: Vec<usize>,
    acks_checked: usize,
    epoch_leaders: BTreeMap<i32, i32>,
    epoch_hw: BTreeMap<i32, i64>,
}

impl Checker {
    pub(crate) fn committed_len(&self) -> usize {
        self.committed.len()
    }

    pub(crate) fn check(
        &mut self,
        brokers: &mut [Broker],
        controller: &Controller,
        acks: &[Ack],
    ) -> Result<(), String> {
        self.holds.resize(brokers.len(), 0);
        for (i, b) in brokers.iter_mut().enumerate() {
            if let Some(t) = b.truncated_to.take() {
                self.holds[i] = self.holds[i].min(t);
            }
        }
        // Grow the committed log from any high watermark past it.
        for (i, b) in brokers.iter().enumerate() {
            self.extend_hold(i, b);
            let hw = b.hw.max(0) as usize;
            if hw > self.committed.len() {
                if self.holds[i] < self.committed.len() {
                    return Err(format!(
                        "(d) b{} hw {hw}: its log differs from the committed log at offset {}",
                        b.id, self.holds[i]
                    ));
                }
                let from = self.committed.len();
                self.committed
                    .extend(b.log[from..hw].iter().map(|r| (r.epoch, r.value)));
                self.holds[i] = hw;
            }
        }
        self.extend_holds(brokers);
        for (i, b) in brokers.iter().enumerate() {
            if b.hw.max(0) as usize > self.holds[i] {
                return Err(format!(
                    "(d) b{} hw {}: its log differs from the committed log at offset {}",
                    b.id, b.hw, self.holds[i]
                ));
            }
        }
        self.check_acks(brokers, controller, acks)?;
        self.check_leaders(brokers, controller)
    }

    fn extend_holds(&mut self, brokers: &[Broker]) {
        for (i, b) in brokers.iter().enumerate() {
            self.extend_hold(i, b);
        }
    }

    /// Advances broker `i`'s agreement with the committed log as far as it goes.
    fn extend_hold(&mut self, i: usize, b: &Broker) {
        let upto = self.committed.len().min(b.log.len());
        let h = &mut self.holds[i];
        while *h < upto && (b.log[*h].epoch, b.log[*h].value) == self.committed[*h] {
            *h += 1;
        }
    }

    fn check_acks(
        &mut self,
        brokers: &[Broker],
        controller: &Controller,
        acks: &[Ack],
    ) -> Result<(), String> {
        for a in &acks[self.acks_checked..] {
            let got = self.committed.get(a.offset as usize).map(|&(_, v)| v);
            if got != Some(a.value) {
                return Err(format!(
                    "(a) b{} acked value {} at offset {} in epoch {}, committed log has {got:?}",
                    a.broker, a.value, a.offset, a.epoch
                ));
            }
        }
        self.acks_checked = acks.len();
        let image = &controller.image;
        let holders = image
            .isr
            .iter()
            .chain(std::iter::once(&image.leader))
            .filter(|&&r| r != NO_LEADER);
        for &r in holders {
            let Some(i) = brokers.iter().position(|b| b.id == r) else {
                continue;
            };
            if self.holds[i] < self.committed.len() {
                return Err(format!(
                    "(a) b{r} (leader {}, ISR {:?}) lacks committed offset {} of {} \
                     (its log ends at {})",
                    image.leader,
                    image.isr,
                    self.holds[i],
                    self.committed.len(),
                    brokers[i].log.len()
                ));
            }
        }
        Ok(())
    }

    fn check_leaders(&mut self, brokers: &[Broker], controller: &Controller) -> Result<(), String> {
        let image = &controller.image;
        if image.leader != NO_LEADER {
            let chosen = *self
                .epoch_leaders
                .entry(image.leader_epoch)
                .or_insert(image.leader);
            if chosen != image.leader {
                return Err(format!(
                    "(b) epoch {} given to b{} and b{chosen}",
                    image.leader_epoch, image.leader
                ));
            }
        }
        for b in brokers {
            let Some(l) = b.leader() else {
                continue;
            };
            let chosen = *self.epoch_leaders.entry(l.epoch).or_insert(b.id);
            if chosen != b.id {
                return Err(format!(
                    "(b) b{} leads epoch {} which belongs to b{chosen}",
                    b.id, l.epoch
                ));
            }
            let last = self.epoch_hw.entry(l.epoch).or_insert(b.hw);
            if b.hw < *last {
                return Err(format!(
                    "(c) b{} hw went back from {} to {} in epoch {}",
                    b.id, last, b.hw, l.epoch
                ));
            }
            *last = b.hw;
        }
        Ok(())
    }
}
