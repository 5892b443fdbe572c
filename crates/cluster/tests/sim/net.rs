//! `Net`: the simulated network. Every message between the controller and the brokers, and
//! between brokers, travels here with a random delay (so messages reorder), may be dropped, and
//! is lost while its link is cut by a partition.

use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::{AlterPartitionError, AlterPartitionRequest};

use super::rng::Rng;
use super::Record;

/// The controller's node id; brokers are 1..=N.
pub(crate) const CONTROLLER: i32 = 0;

/// A message body.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    /// Broker → controller, every heartbeat interval (Kafka's BrokerHeartbeat; a new
    /// incarnation is a re-registration).
    Heartbeat { incarnation: u64 },
    /// Controller → broker: the heartbeat was accepted; carries the current partition state
    /// (the broker catching up on the metadata log).
    HeartbeatReply { image: PartitionImage },
    /// Controller → every broker after a change (the metadata log being replicated).
    Metadata { image: PartitionImage },
    /// Leader → controller.
    AlterPartition { req: AlterPartitionRequest },
    /// Controller → leader.
    AlterPartitionReply {
        req: AlterPartitionRequest,
        result: Result<PartitionImage, AlterPartitionError>,
    },
    /// Follower → leader.
    Fetch(FetchRequest),
    /// Leader → follower.
    FetchReply {
        leader_epoch: i32,
        fetch_offset: i64,
        body: FetchBody,
    },
}

/// A replica Fetch: Kafka's, with `lastFetchedEpoch` (KIP-320) and a fetch session (KIP-227).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchRequest {
    /// The leader epoch the follower fetches in.
    pub(crate) leader_epoch: i32,
    pub(crate) fetch_offset: i64,
    /// Epoch of the follower's last record (its latest cached epoch), or -1.
    pub(crate) last_fetched_epoch: i32,
    /// `(incarnation, sequence)`, rising with every fetch: the leader refuses one older than
    /// the last it served (Kafka's fetch session epoch), so a delayed duplicate cannot report
    /// an old log end.
    pub(crate) session: (u64, u64),
}

/// What a fetch got back.
#[derive(Debug, Clone)]
pub(crate) enum FetchBody {
    /// Records from the fetch offset, and the leader's high watermark.
    Records { records: Vec<Record>, hw: i64 },
    /// The follower's log is not a prefix of the leader's: `(epoch, end_offset)`.
    Diverging { epoch: i32, end_offset: i64 },
    /// Not the leader, wrong epoch, or offset out of range: retry after new metadata.
    Error,
}

/// A message in flight.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) from: i32,
    pub(crate) to: i32,
    /// The receiving process's incarnation when sent: a restarted broker never sees messages
    /// meant for its previous life (its connections were reset).
    pub(crate) to_incarnation: u64,
    pub(crate) deliver_at: i64,
    seq: u64,
    pub(crate) msg: Msg,
}

/// Fault knobs of the network.
#[derive(Debug, Clone)]
pub(crate) struct NetConfig {
    pub(crate) drop_p: f64,
    pub(crate) min_delay_ms: i64,
    pub(crate) max_delay_ms: i64,
    /// Chance of a much longer delay (a stalled connection), which reorders messages widely.
    pub(crate) slow_p: f64,
    pub(crate) slow_delay_ms: i64,
}

#[derive(Debug)]
pub(crate) struct Net {
    cfg: NetConfig,
    in_flight: Vec<Envelope>,
    /// Cut links as unordered node pairs.
    cut: Vec<(i32, i32)>,
    seq: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
}

impl Net {
    pub(crate) fn new(cfg: NetConfig) -> Net {
        Net {
            cfg,
            in_flight: Vec::new(),
            cut: Vec::new(),
            seq: 0,
            sent: 0,
            dropped: 0,
        }
    }

    pub(crate) fn send(
        &mut self,
        rng: &mut Rng,
        now: i64,
        (from, to, to_incarnation): (i32, i32, u64),
        msg: Msg,
    ) {
        self.sent += 1;
        if rng.chance(self.cfg.drop_p) || self.is_cut(from, to) {
            self.dropped += 1;
            return;
        }
        let delay = if rng.chance(self.cfg.slow_p) {
            self.cfg.slow_delay_ms
        } else {
            rng.range(self.cfg.min_delay_ms, self.cfg.max_delay_ms)
        };
        self.seq += 1;
        self.in_flight.push(Envelope {
            from,
            to,
            to_incarnation,
            deliver_at: now + delay,
            seq: self.seq,
            msg,
        });
    }

    /// Messages due by `now`, in delivery order; those on a link cut meanwhile are lost.
    pub(crate) fn due(&mut self, now: i64) -> Vec<Envelope> {
        let (mut due, rest): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|e| e.deliver_at <= now);
        self.in_flight = rest;
        due.sort_by_key(|e| (e.deliver_at, e.seq));
        let before = due.len();
        due.retain(|e| !self.is_cut(e.from, e.to));
        self.dropped += (before - due.len()) as u64;
        due
    }

    fn is_cut(&self, a: i32, b: i32) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Cuts every link between `node` and the others.
    pub(crate) fn isolate(&mut self, node: i32, others: &[i32]) {
        for &o in others {
            if o != node && !self.is_cut(node, o) {
                self.cut.push((node.min(o), node.max(o)));
            }
        }
    }

    /// Cuts one link.
    pub(crate) fn cut_link(&mut self, a: i32, b: i32) {
        if a != b && !self.is_cut(a, b) {
            self.cut.push((a.min(b), a.max(b)));
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn cuts(&self) -> &[(i32, i32)] {
        &self.cut
    }
}
