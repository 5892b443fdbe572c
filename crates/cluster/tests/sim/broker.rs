//! `Broker`: one simulated broker hosting a replica of the partition — its log (with a flushed
//! prefix that survives a crash), its epoch cache, its high watermark, and its role: leader
//! (bookkeeping through `strom_cluster::replication::LeaderState`) or follower (fetching with
//! its last fetched epoch and truncating on a diverging epoch).

use std::collections::BTreeMap;

use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::{
    diverging_epoch, end_offset_for_epoch, truncation_offset, AlterPartitionError,
    AlterPartitionRequest, LeaderState, NO_LEADER, UNDEFINED_EPOCH,
};

use super::net::{Envelope, FetchBody, FetchRequest, Msg, CONTROLLER};
use super::{trace, Ack, Ctx, Record};

/// A leader's volatile state.
#[derive(Debug)]
pub(crate) struct LeaderRole {
    pub(crate) epoch: i32,
    pub(crate) state: LeaderState,
    /// Appended, not yet covered by the high watermark: `(offset, value)`.
    pending_acks: Vec<(i64, u64)>,
    /// The AlterPartition in flight and when it was last sent; retried until a reply comes.
    alter: Option<(AlterPartitionRequest, i64)>,
    /// Each follower's last served fetch session position.
    sessions: BTreeMap<i32, (u64, u64)>,
}

/// A follower's volatile state.
#[derive(Debug)]
pub(crate) struct FollowerRole {
    leader: i32,
    epoch: i32,
    /// Fetch offset and send time of the fetch in flight.
    in_flight: Option<(i64, i64)>,
    next_fetch_ms: i64,
}

#[derive(Debug)]
pub(crate) enum Role {
    /// Just restarted: no partition state known yet.
    Unknown,
    Leader(LeaderRole),
    Follower(FollowerRole),
}

#[derive(Debug)]
pub(crate) struct Broker {
    pub(crate) id: i32,
    pub(crate) up: bool,
    pub(crate) incarnation: u64,
    pub(crate) log: Vec<Record>,
    /// Length of the log prefix on stable storage.
    pub(crate) flushed: usize,
    /// Kafka's leader epoch cache: `(epoch, start_offset)`, ascending.
    pub(crate) epochs: Vec<(i32, i64)>,
    pub(crate) hw: i64,
    pub(crate) image: Option<PartitionImage>,
    pub(crate) role: Role,
    last_heartbeat_ms: i64,
    fetch_seq: u64,
    pub(crate) down_until_ms: i64,
    /// Lowest length the log was cut to since the checker last looked.
    pub(crate) truncated_to: Option<usize>,
}

impl Broker {
    pub(crate) fn new(id: i32) -> Broker {
        Broker {
            id,
            up: true,
            incarnation: 1,
            log: Vec::new(),
            flushed: 0,
            epochs: Vec::new(),
            hw: 0,
            image: None,
            role: Role::Unknown,
            last_heartbeat_ms: i64::MIN / 2,
            fetch_seq: 0,
            down_until_ms: 0,
            truncated_to: None,
        }
    }

    pub(crate) fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    /// The leader role, if this broker believes it leads.
    pub(crate) fn leader(&self) -> Option<&LeaderRole> {
        match &self.role {
            Role::Leader(l) if self.up => Some(l),
            _ => None,
        }
    }

    fn send(&self, ctx: &mut Ctx<'_>, to: i32, to_incarnation: u64, msg: Msg) {
        ctx.net
            .send(ctx.rng, ctx.now, (self.id, to, to_incarnation), msg);
    }

    /// Cuts the log to `len` (a crash losing its tail, or follower truncation).
    fn truncate(&mut self, len: usize) {
        if len >= self.log.len() {
            return;
        }
        self.log.truncate(len);
        self.flushed = self.flushed.min(len);
        let end = len as i64;
        self.epochs.retain(|&(_, start)| start < end);
        self.hw = self.hw.min(end);
        self.truncated_to = Some(self.truncated_to.map_or(len, |t| t.min(len)));
    }

    fn append(&mut self, record: Record) {
        if self.epochs.last().map(|&(e, _)| e) != Some(record.epoch) {
            self.epochs.push((record.epoch, record.offset));
        }
        self.log.push(record);
    }

    /// A crash: volatile state is gone and the unflushed tail with it.
    pub(crate) fn crash(&mut self, ctx: &mut Ctx<'_>) {
        trace!(
            ctx,
            "b{}: CRASH (log {} flushed {})",
            self.id,
            self.log.len(),
            self.flushed
        );
        self.up = false;
        let flushed = self.flushed;
        self.truncate(flushed);
        // Kafka drops cached epochs starting at or past the recovered log end.
        let end = self.log_end();
        self.epochs.retain(|&(_, start)| start < end);
        self.hw = 0;
        self.image = None;
        self.role = Role::Unknown;
        let downtime = ctx.rng.range(ctx.cfg.min_down_ms, ctx.cfg.max_down_ms);
        self.down_until_ms = ctx.now + downtime;
    }

    pub(crate) fn restart(&mut self, incarnation: u64, ctx: &mut Ctx<'_>) {
        trace!(ctx, "b{}: RESTART as incarnation {incarnation}", self.id);
        self.up = true;
        self.incarnation = incarnation;
        self.last_heartbeat_ms = i64::MIN / 2;
    }

    /// Timers: flush, heartbeat, fetch, ISR shrink, AlterPartition retry, high watermark.
    pub(crate) fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if !self.up {
            return;
        }
        if ctx.rng.chance(ctx.cfg.flush_p) {
            self.flushed = self.log.len();
        }
        if ctx.now - self.last_heartbeat_ms >= ctx.cfg.heartbeat_ms {
            self.last_heartbeat_ms = ctx.now;
            let incarnation = self.incarnation;
            self.send(ctx, CONTROLLER, 0, Msg::Heartbeat { incarnation });
        }
        match &self.role {
            Role::Leader(_) => self.leader_tick(ctx),
            Role::Follower(_) => self.follower_tick(ctx),
            Role::Unknown => {}
        }
    }

    fn leader_tick(&mut self, ctx: &mut Ctx<'_>) {
        let id = self.id;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let mut to_send = None;
        match &mut l.alter {
            Some((req, sent)) if ctx.now - *sent >= ctx.cfg.alter_retry_ms => {
                *sent = ctx.now;
                to_send = Some(req.clone());
            }
            Some(_) => {}
            None => {
                if let Some(isr) = l.state.maybe_shrink_isr(ctx.now, ctx.cfg.lag_max_ms) {
                    trace!(ctx, "b{id}: shrink ISR to {isr:?}");
                    to_send = Some(Self::propose(l, id, isr, ctx.now));
                }
            }
        }
        if let Some(req) = to_send {
            self.send(ctx, CONTROLLER, 0, Msg::AlterPartition { req });
        }
        self.advance_hw(ctx);
    }

    fn propose(l: &mut LeaderRole, id: i32, isr: Vec<i32>, now: i64) -> AlterPartitionRequest {
        let req = AlterPartitionRequest {
            broker: id,
            leader_epoch: l.epoch,
            partition_epoch: l.state.partition_epoch(),
            new_isr: isr.clone(),
        };
        l.state.isr_change_sent(isr);
        l.alter = Some((req.clone(), now));
        req
    }

    /// The leader's high watermark: never backwards, bounded by replication (the ISR's
    /// slowest follower, via `LeaderState`) and by its own flushed log. The one place the
    /// injected `hw_from_all_max` bug swaps the rule.
    fn advance_hw(&mut self, ctx: &mut Ctx<'_>) {
        let flushed = self.flushed as i64;
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let bound = if ctx.cfg.bugs.hw_from_all_max {
            self.image
                .iter()
                .flat_map(|p| p.replicas.iter())
                .filter_map(|&r| l.state.follower(r).map(|f| f.log_end))
                .max()
                .unwrap_or(i64::MAX)
        } else {
            l.state.high_watermark_bound()
        };
        let candidate = bound.min(flushed);
        if candidate > self.hw {
            self.hw = candidate;
        }
        let hw = self.hw;
        let (epoch, id) = (l.epoch, self.id);
        l.pending_acks.retain(|&(offset, value)| {
            if offset < hw {
                ctx.acks.push(Ack {
                    offset,
                    value,
                    broker: id,
                    epoch,
                });
                false
            } else {
                true
            }
        });
    }

    fn follower_tick(&mut self, ctx: &mut Ctx<'_>) {
        // A follower reports only what is on disk (Strom acks durable data; see the module doc
        // of `sim`), so it fetches again once the last fetch's records are flushed.
        let durable = self.flushed == self.log.len() || ctx.cfg.bugs.report_unflushed;
        let fetch_offset = self.log_end();
        let last_fetched_epoch = self.epochs.last().map_or(UNDEFINED_EPOCH, |&(e, _)| e);
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        let timed_out = f
            .in_flight
            .is_some_and(|(_, sent)| ctx.now - sent >= ctx.cfg.fetch_timeout_ms);
        if f.leader == NO_LEADER
            || (f.in_flight.is_some() && !timed_out)
            || ctx.now < f.next_fetch_ms
            || !durable
        {
            return;
        }
        f.in_flight = Some((fetch_offset, ctx.now));
        let (leader, leader_epoch) = (f.leader, f.epoch);
        self.fetch_seq += 1;
        let req = FetchRequest {
            leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            session: (self.incarnation, self.fetch_seq),
        };
        // The leader's incarnation is unknown to a follower; 0 = "whichever is up".
        self.send(ctx, leader, 0, Msg::Fetch(req));
    }

    /// A producer's record, when this broker believes it leads (a deposed leader that has not
    /// heard yet accepts it too: that is what the checker must survive).
    pub(crate) fn produce(&mut self, value: u64, ctx: &mut Ctx<'_>) -> bool {
        let Role::Leader(l) = &mut self.role else {
            return false;
        };
        let offset = self.log.len() as i64;
        let epoch = l.epoch;
        l.pending_acks.push((offset, value));
        self.append(Record {
            offset,
            epoch,
            value,
        });
        trace!(
            ctx,
            "b{}: produce offset {offset} value {value} epoch {epoch}",
            self.id
        );
        true
    }

    pub(crate) fn on_message(&mut self, env: Envelope, ctx: &mut Ctx<'_>) {
        match env.msg {
            Msg::HeartbeatReply { image } | Msg::Metadata { image } => self.on_image(image, ctx),
            Msg::AlterPartitionReply { req, result } => self.on_alter_reply(req, result, ctx),
            Msg::Fetch(req) => self.on_fetch(env.from, req, ctx),
            Msg::FetchReply {
                leader_epoch,
                fetch_offset,
                body,
            } => self.on_fetch_reply(env.from, leader_epoch, fetch_offset, body, ctx),
            Msg::Heartbeat { .. } | Msg::AlterPartition { .. } => {}
        }
    }

    /// New partition state from the controller (applied only if newer: the network reorders).
    pub(crate) fn on_image(&mut self, image: PartitionImage, ctx: &mut Ctx<'_>) {
        if self
            .image
            .as_ref()
            .is_some_and(|cur| image.partition_epoch <= cur.partition_epoch)
        {
            return;
        }
        self.image = Some(image.clone());
        let id = self.id;
        if image.leader == id {
            if let Role::Leader(l) = &mut self.role {
                if l.epoch == image.leader_epoch {
                    l.state.on_partition_change(&image);
                    l.alter = None;
                    trace!(
                        ctx,
                        "b{id}: ISR now {:?} (pe {})",
                        image.isr,
                        image.partition_epoch
                    );
                    return;
                }
            }
            self.become_leader(&image, ctx);
            return;
        }
        if let Role::Follower(f) = &self.role {
            if f.leader == image.leader && f.epoch == image.leader_epoch {
                return;
            }
        }
        trace!(
            ctx,
            "b{id}: follow {} in epoch {} (log {}, hw {})",
            image.leader,
            image.leader_epoch,
            self.log.len(),
            self.hw
        );
        self.role = Role::Follower(FollowerRole {
            leader: image.leader,
            epoch: image.leader_epoch,
            in_flight: None,
            next_fetch_ms: ctx.now,
        });
    }

    fn become_leader(&mut self, image: &PartitionImage, ctx: &mut Ctx<'_>) {
        let epoch = image.leader_epoch;
        let end = self.log_end();
        // Kafka caches the new epoch at the log end on election, before any record of it.
        if self.epochs.last().map(|&(e, _)| e) != Some(epoch) {
            self.epochs.push((epoch, end));
        }
        trace!(
            ctx,
            "b{}: LEADER epoch {epoch} (log {end}, hw {}, isr {:?})",
            self.id,
            self.hw,
            image.isr
        );
        self.role = Role::Leader(LeaderRole {
            epoch,
            state: LeaderState::new(self.id, image, end, end, ctx.now),
            pending_acks: Vec::new(),
            alter: None,
            sessions: BTreeMap::new(),
        });
    }

    fn on_alter_reply(
        &mut self,
        req: AlterPartitionRequest,
        result: Result<PartitionImage, AlterPartitionError>,
        ctx: &mut Ctx<'_>,
    ) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        if l.alter.as_ref().map(|(r, _)| r) != Some(&req) {
            return;
        }
        l.alter = None;
        match result {
            Ok(image) => self.on_image(image, ctx),
            // Kafka reverts to the committed ISR only when the controller says the change was
            // not applied (INELIGIBLE_REPLICA). Any other error may answer a retry of a change
            // that *was* applied; the leader keeps the maximal ISR until metadata arrives.
            Err(AlterPartitionError::IneligibleReplica) => l.state.isr_change_failed(),
            Err(_) if ctx.cfg.bugs.revert_isr_on_any_error => l.state.isr_change_failed(),
            Err(_) => {}
        }
    }

    fn on_fetch(&mut self, follower: i32, req: FetchRequest, ctx: &mut Ctx<'_>) {
        let body = self.answer_fetch(follower, req, ctx);
        let reply = Msg::FetchReply {
            leader_epoch: req.leader_epoch,
            fetch_offset: req.fetch_offset,
            body,
        };
        self.send(ctx, follower, 0, reply);
    }

    /// Kafka's leader side of a replica fetch: fence other epochs, check divergence (KIP-320),
    /// else record the follower's progress (maybe expanding the ISR) and return records.
    fn answer_fetch(&mut self, follower: i32, req: FetchRequest, ctx: &mut Ctx<'_>) -> FetchBody {
        let (id, end) = (self.id, self.log_end());
        let (fetch_offset, last_fetched_epoch) = (req.fetch_offset, req.last_fetched_epoch);
        let Role::Leader(l) = &mut self.role else {
            return FetchBody::Error;
        };
        if l.epoch != req.leader_epoch {
            return FetchBody::Error;
        }
        if ctx.cfg.fetch_sessions {
            if l.sessions.get(&follower).is_some_and(|&s| req.session <= s) {
                return FetchBody::Error;
            }
            l.sessions.insert(follower, req.session);
        }
        let answer = end_offset_for_epoch(&self.epochs, last_fetched_epoch, end);
        if let Some((epoch, end_offset)) = diverging_epoch(fetch_offset, last_fetched_epoch, answer)
        {
            if !ctx.cfg.bugs.no_divergence_check {
                return FetchBody::Diverging { epoch, end_offset };
            }
        }
        if fetch_offset < 0 || fetch_offset > end {
            return FetchBody::Error;
        }
        let out = l
            .state
            .on_follower_fetch(follower, fetch_offset, end, ctx.now);
        trace!(
            ctx,
            "b{id}: fetch from b{follower} at {fetch_offset} (log {end}, hw {}, bound {}, isr {:?})",
            self.hw,
            l.state.high_watermark_bound(),
            l.state.maximal_isr()
        );
        if let Some(isr) = out.expand_isr.filter(|_| l.alter.is_none()) {
            trace!(ctx, "b{id}: expand ISR to {isr:?}");
            let req = Self::propose(l, id, isr, ctx.now);
            self.send(ctx, CONTROLLER, 0, Msg::AlterPartition { req });
        }
        self.advance_hw(ctx);
        let upto = end.min(fetch_offset + ctx.cfg.max_fetch_records);
        FetchBody::Records {
            records: self.log[fetch_offset as usize..upto as usize].to_vec(),
            hw: self.hw,
        }
    }

    fn on_fetch_reply(
        &mut self,
        from: i32,
        leader_epoch: i32,
        fetch_offset: i64,
        body: FetchBody,
        ctx: &mut Ctx<'_>,
    ) {
        let end = self.log_end();
        let Role::Follower(f) = &mut self.role else {
            return;
        };
        // Only the answer to the fetch in flight, from the current leader, for the current log.
        if f.leader != from
            || f.epoch != leader_epoch
            || f.in_flight.map(|(o, _)| o) != Some(fetch_offset)
            || fetch_offset != end
        {
            return;
        }
        f.in_flight = None;
        match body {
            FetchBody::Records { records, hw } => {
                for r in records {
                    self.append(r);
                }
                // Kafka's follower high watermark: the leader's, capped by its own log end.
                self.hw = hw.min(self.log_end());
            }
            FetchBody::Diverging { epoch, end_offset } => {
                let epochs = &self.epochs;
                let to = truncation_offset(
                    (epoch, end_offset),
                    |e| end_offset_for_epoch(epochs, e, end),
                    end,
                );
                trace!(
                    ctx,
                    "b{}: diverging ({epoch}, {end_offset}): truncate {end} -> {to} (hw {})",
                    self.id,
                    self.hw
                );
                if to < self.hw {
                    ctx.violations.push(format!(
                        "b{} truncated to {to}, below its high watermark {}",
                        self.id, self.hw
                    ));
                }
                ctx.stats.truncations += 1;
                self.truncate(to as usize);
            }
            FetchBody::Error => f.next_fetch_ms = ctx.now + ctx.cfg.fetch_backoff_ms,
        }
    }
}
