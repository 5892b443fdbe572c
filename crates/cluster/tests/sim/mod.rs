//! The deterministic replication simulation: one partition on three brokers and a controller,
//! driven by a seeded PRNG over a simulated clock, with the invariants checked after every step.
//!
//! Fault model: messages are delayed (reordered), dropped, and lost on partitioned links;
//! brokers crash (losing their unflushed log tail and all volatile state) and restart with a new
//! incarnation. The controller never crashes (it stands for the Raft quorum), but its messages
//! cross the same network. Durability follows Strom: a leader's high watermark never passes its
//! own flushed log end, and a follower fetches again (reporting its log end) only once what it
//! fetched is flushed, so a follower never reports records a crash can take away.

pub(crate) mod broker;
pub(crate) mod check;
pub(crate) mod controller;
pub(crate) mod net;
pub(crate) mod rng;

use strom_cluster::metadata::PartitionImage;
use strom_cluster::replication::place_replicas;

use broker::Broker;
use check::Checker;
use controller::Controller;
use net::{Net, NetConfig, CONTROLLER};
use rng::Rng;

/// Appends a line to the trace when tracing (a failing seed is re-run with it on).
macro_rules! trace {
    ($ctx:expr, $($arg:tt)*) => {
        if $ctx.trace.is_some() {
            let line = format!($($arg)*);
            $ctx.push_trace(line);
        }
    };
}
pub(crate) use trace;

/// One log record. `offset` is also its index in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) offset: i64,
    pub(crate) epoch: i32,
    pub(crate) value: u64,
}

/// A producer acknowledgement (acks=all): the leader's high watermark covered the record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ack {
    pub(crate) offset: i64,
    pub(crate) value: u64,
    pub(crate) broker: i32,
    pub(crate) epoch: i32,
}

/// Known bugs the checker must catch, injected one at a time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bugs {
    /// High watermark from the furthest replica instead of the ISR's slowest.
    pub(crate) hw_from_all_max: bool,
    /// The leader serves records without checking the follower's last fetched epoch.
    pub(crate) no_divergence_check: bool,
    /// The controller elects out-of-sync replicas.
    pub(crate) unclean: bool,
    /// The leader forgets its pending ISR on any AlterPartition error, not only when the
    /// controller says the change was not applied.
    pub(crate) revert_isr_on_any_error: bool,
    /// Followers report records before flushing them (Kafka without fsync).
    pub(crate) report_unflushed: bool,
}

/// Timing and fault knobs, in simulated milliseconds.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) steps: u64,
    pub(crate) tick_ms: i64,
    pub(crate) heartbeat_ms: i64,
    pub(crate) session_timeout_ms: i64,
    pub(crate) lag_max_ms: i64,
    pub(crate) fetch_timeout_ms: i64,
    pub(crate) fetch_backoff_ms: i64,
    pub(crate) alter_retry_ms: i64,
    pub(crate) preferred_election_ms: i64,
    pub(crate) max_fetch_records: i64,
    pub(crate) produce_p: f64,
    pub(crate) flush_p: f64,
    pub(crate) crash_p: f64,
    pub(crate) min_down_ms: i64,
    pub(crate) max_down_ms: i64,
    pub(crate) partition_p: f64,
    pub(crate) min_partition_ms: i64,
    pub(crate) max_partition_ms: i64,
    pub(crate) net: NetConfig,
    /// Leaders refuse fetches older than the follower's last (Kafka's fetch sessions). Off,
    /// a delayed duplicate fetch reaches `LeaderState` with an old log end.
    pub(crate) fetch_sessions: bool,
    pub(crate) bugs: Bugs,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            steps: 2_000,
            tick_ms: 10,
            heartbeat_ms: 50,
            session_timeout_ms: 300,
            lag_max_ms: 300,
            fetch_timeout_ms: 200,
            fetch_backoff_ms: 50,
            alter_retry_ms: 150,
            preferred_election_ms: 3_000,
            max_fetch_records: 8,
            produce_p: 0.5,
            flush_p: 0.5,
            crash_p: 0.004,
            min_down_ms: 100,
            max_down_ms: 1_500,
            partition_p: 0.004,
            min_partition_ms: 100,
            max_partition_ms: 1_500,
            net: NetConfig {
                drop_p: 0.03,
                min_delay_ms: 1,
                max_delay_ms: 30,
                slow_p: 0.01,
                slow_delay_ms: 400,
            },
            fetch_sessions: true,
            bugs: Bugs::default(),
        }
    }
}

/// Counters that show a run exercised the protocol.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) acks: u64,
    pub(crate) committed: u64,
    pub(crate) leader_changes: u64,
    pub(crate) fences: u64,
    pub(crate) isr_changes: u64,
    pub(crate) alter_errors: u64,
    pub(crate) truncations: u64,
    pub(crate) crashes: u64,
    pub(crate) partitions: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, o: &Stats) {
        self.acks += o.acks;
        self.committed += o.committed;
        self.leader_changes += o.leader_changes;
        self.fences += o.fences;
        self.isr_changes += o.isr_changes;
        self.alter_errors += o.alter_errors;
        self.truncations += o.truncations;
        self.crashes += o.crashes;
        self.partitions += o.partitions;
    }
}

/// What handlers may touch besides their own node.
pub(crate) struct Ctx<'a> {
    pub(crate) now: i64,
    pub(crate) cfg: &'a Config,
    pub(crate) rng: &'a mut Rng,
    pub(crate) net: &'a mut Net,
    pub(crate) acks: &'a mut Vec<Ack>,
    pub(crate) stats: &'a mut Stats,
    pub(crate) violations: &'a mut Vec<String>,
    pub(crate) trace: &'a mut Option<Vec<String>>,
}

impl Ctx<'_> {
    pub(crate) fn push_trace(&mut self, line: String) {
        let now = self.now;
        if let Some(t) = self.trace.as_mut() {
            t.push(format!("{now:>6}ms {line}"));
        }
    }
}

/// A failed run: the broken invariant, and the trace when it was recorded.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) seed: u64,
    pub(crate) step: u64,
    pub(crate) message: String,
    pub(crate) trace: Vec<String>,
}

/// The whole simulated system.
struct World {
    cfg: Config,
    now: i64,
    rng: Rng,
    net: Net,
    controller: Controller,
    brokers: Vec<Broker>,
    acks: Vec<Ack>,
    stats: Stats,
    violations: Vec<String>,
    trace: Option<Vec<String>>,
    checker: Checker,
    next_value: u64,
    heal_at: Option<i64>,
}

const BROKERS: [i32; 3] = [1, 2, 3];

impl World {
    fn new(seed: u64, cfg: Config, tracing: bool) -> World {
        let mut rng = Rng::new(seed);
        let start = rng.below(BROKERS.len() as u64) as usize;
        let replicas = place_replicas(1, BROKERS.len(), &BROKERS, start)
            .pop()
            .unwrap_or_default();
        let image = PartitionImage {
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
        };
        let net = Net::new(cfg.net.clone());
        let mut w = World {
            cfg,
            now: 0,
            rng,
            net,
            controller: Controller::new(image.clone(), &BROKERS),
            brokers: BROKERS.iter().map(|&b| Broker::new(b)).collect(),
            acks: Vec::new(),
            stats: Stats::default(),
            violations: Vec::new(),
            trace: tracing.then(Vec::new),
            checker: Checker::default(),
            next_value: 1,
            heal_at: None,
        };
        // Every broker starts from the initial image, as if it had read the metadata log.
        for i in 0..w.brokers.len() {
            let (brokers, mut ctx) = w.split();
            brokers[i].on_image(image.clone(), &mut ctx);
        }
        w
    }

    fn split(&mut self) -> (&mut Vec<Broker>, Ctx<'_>) {
        (
            &mut self.brokers,
            Ctx {
                now: self.now,
                cfg: &self.cfg,
                rng: &mut self.rng,
                net: &mut self.net,
                acks: &mut self.acks,
                stats: &mut self.stats,
                violations: &mut self.violations,
                trace: &mut self.trace,
            },
        )
    }

    /// One tick. Faults come first so that everything a step does (a high watermark rising, an
    /// acknowledgement) is still visible to the check that follows it.
    fn step(&mut self) {
        self.now += self.cfg.tick_ms;
        let now = self.now;
        self.faults();
        for env in self.net.due(now) {
            let to = env.to;
            if to == CONTROLLER {
                let mut ctx = Ctx {
                    now,
                    cfg: &self.cfg,
                    rng: &mut self.rng,
                    net: &mut self.net,
                    acks: &mut self.acks,
                    stats: &mut self.stats,
                    violations: &mut self.violations,
                    trace: &mut self.trace,
                };
                self.controller.on_message(env, &mut ctx);
            } else if let Some(i) = self.brokers.iter().position(|b| b.id == to) {
                let (brokers, mut ctx) = self.split();
                let b = &mut brokers[i];
                // Down, or a message for an earlier life: the connection is gone.
                if b.up && (env.to_incarnation == 0 || env.to_incarnation == b.incarnation) {
                    b.on_message(env, &mut ctx);
                }
            }
        }
        {
            let mut ctx = Ctx {
                now,
                cfg: &self.cfg,
                rng: &mut self.rng,
                net: &mut self.net,
                acks: &mut self.acks,
                stats: &mut self.stats,
                violations: &mut self.violations,
                trace: &mut self.trace,
            };
            self.controller.tick(&mut ctx);
        }
        self.produce();
        let (brokers, mut ctx) = self.split();
        for b in brokers.iter_mut() {
            b.tick(&mut ctx);
        }
    }

    /// Crashes, restarts, network partitions and their healing.
    fn faults(&mut self) {
        let now = self.now;
        let (brokers, mut ctx) = self.split();
        for b in brokers.iter_mut() {
            if !b.up && now >= b.down_until_ms {
                // Unique per broker: its own crash came in between.
                let inc = ctx.stats.crashes + 1;
                b.restart(inc, &mut ctx);
            } else if b.up && ctx.rng.chance(ctx.cfg.crash_p) {
                ctx.stats.crashes += 1;
                b.crash(&mut ctx);
            }
        }
        if self.heal_at.is_some_and(|t| now >= t) {
            self.heal_at = None;
            self.net.heal();
            let mut ctx = self.split().1;
            trace!(ctx, "network: healed");
        } else if self.heal_at.is_none() && self.rng.chance(self.cfg.partition_p) {
            let nodes = [CONTROLLER, 1, 2, 3];
            let a = self.rng.pick(&nodes).unwrap_or(CONTROLLER);
            if self.rng.chance(0.5) {
                self.net.isolate(a, &nodes);
            } else {
                let b = self.rng.pick(&nodes).unwrap_or(CONTROLLER);
                self.net.cut_link(a, b);
            }
            let d = self
                .rng
                .range(self.cfg.min_partition_ms, self.cfg.max_partition_ms);
            self.heal_at = Some(now + d);
            self.stats.partitions += 1;
            let cuts = self.net.cuts().to_vec();
            let mut ctx = self.split().1;
            trace!(ctx, "network: cut {cuts:?}");
        }
    }

    /// A producer sends to a broker that believes it leads (acks=all).
    fn produce(&mut self) {
        if !self.rng.chance(self.cfg.produce_p) {
            return;
        }
        let leaders: Vec<usize> = (0..self.brokers.len())
            .filter(|&i| self.brokers[i].leader().is_some())
            .collect();
        let Some(i) = self.rng.pick(&leaders) else {
            return;
        };
        let value = self.next_value;
        self.next_value += 1;
        let (brokers, mut ctx) = self.split();
        brokers[i].produce(value, &mut ctx);
    }

    fn check(&mut self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        self.checker
            .check(&mut self.brokers, &self.controller, &self.acks)
    }

    fn state(&self) -> Vec<String> {
        let mut out = vec![format!("controller image {:?}", self.controller.image)];
        for b in &self.brokers {
            let tail: Vec<(i32, u64)> = b
                .log
                .iter()
                .rev()
                .take(6)
                .rev()
                .map(|r| (r.epoch, r.value))
                .collect();
            out.push(format!(
                "b{} up {} log {} flushed {} hw {} epochs {:?} role {} tail {:?}",
                b.id,
                b.up,
                b.log.len(),
                b.flushed,
                b.hw,
                b.epochs,
                match b.leader() {
                    Some(l) => format!("leader e{} isr {:?}", l.epoch, l.state.isr()),
                    None => "not leader".into(),
                },
                tail
            ));
        }
        out
    }
}

/// Runs one seed; on a broken invariant, re-runs it with tracing to explain the failure.
pub(crate) fn run(seed: u64, cfg: &Config) -> Result<Stats, Failure> {
    match run_once(seed, cfg, false) {
        Ok(stats) => Ok(stats),
        Err(f) => Err(run_once(seed, cfg, true).err().unwrap_or(f)),
    }
}

fn run_once(seed: u64, cfg: &Config, tracing: bool) -> Result<Stats, Failure> {
    let mut w = World::new(seed, cfg.clone(), tracing);
    for step in 1..=cfg.steps {
        w.step();
        if let Err(message) = w.check() {
            let mut trace = w.trace.take().unwrap_or_default();
            trace.extend(w.state());
            return Err(Failure {
                seed,
                step,
                message,
                trace,
            });
        }
    }
    w.stats.acks = w.acks.len() as u64;
    w.stats.committed = w.checker.committed_len() as u64;
    Ok(w.stats)
}
