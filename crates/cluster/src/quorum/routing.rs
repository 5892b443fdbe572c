//! Reaching the Raft leader: `call_leader` sends a request to whichever node leads (handling it
//! in-process when that is this node), following `NotController` hints and retrying across
//! elections until the request timeout; plus the read index used to confirm that this node's
//! image is current (`confirm_caught_up`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

use super::types::raft_id;
use super::wire::{Request, Response};
use super::{Quorum, QuorumError, RemoteError};

impl Quorum {
    /// The controller address of node `id`: from the Raft membership, else the voters list.
    fn addr_of(&self, id: i32) -> Option<String> {
        let from_membership = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .get_node(&raft_id(id))
            .map(|n| n.addr.clone())
            .filter(|a| !a.is_empty());
        from_membership.or_else(|| {
            self.cfg
                .voters
                .iter()
                .find(|(v, _)| *v == id)
                .map(|(_, a)| a.clone())
        })
    }

    /// Sends `req` to the Raft leader and returns its answer within the request timeout.
    /// `NotController` answers and transport errors are retried (next hint, else the next voter)
    /// until then.
    pub(crate) fn call_leader(&self, req: Request) -> BoxFuture<'_, Result<Response, QuorumError>> {
        self.call_leader_until(req, Instant::now() + self.request_timeout())
    }

    /// [`Quorum::call_leader`] with an explicit deadline: every attempt, whether it goes to a peer
    /// or is served in-process because this node leads, gets only the time left. Gives up with
    /// `NoController` (logged) at the deadline.
    ///
    /// Boxed (and `Send` by signature): serving a controller request in-process may propose,
    /// which calls back in here, and a recursive future needs a named, sized type.
    pub(crate) fn call_leader_until(
        &self,
        req: Request,
        deadline: Instant,
    ) -> BoxFuture<'_, Result<Response, QuorumError>> {
        Box::pin(self.call_leader_inner(req, deadline))
    }

    async fn call_leader_inner(
        &self,
        req: Request,
        deadline: Instant,
    ) -> Result<Response, QuorumError> {
        let started = Instant::now();
        let mut hint: Option<i32> = None;
        let mut next_voter = 0usize;
        let mut pause = Duration::from_millis(5);
        let mut last_failure: String;
        loop {
            if self.is_stopped() {
                return Err(QuorumError::Stopped);
            }
            let target = hint
                .take()
                .or_else(|| self.controller_leader())
                .or_else(|| {
                    let v = self
                        .cfg
                        .voters
                        .get(next_voter % self.cfg.voters.len().max(1));
                    next_voter += 1;
                    v.map(|(id, _)| *id)
                });
            // A lone node (no voters configured) is always its own target.
            let target = target.unwrap_or(self.cfg.node_id);
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let answer = if target == self.cfg.node_id {
                // Served here, but bounded like a remote call: as the leader, a proposal waits
                // for a quorum to commit it, which may never come (peers gone, leadership lost
                // without this node noticing), and the caller may hold the propose lock.
                match tokio::time::timeout(left, self.handle_request(req.clone())).await {
                    Ok(resp) => Ok(resp),
                    Err(_) => Err(format!(
                        "not served by this node (the leader) within {left:?}"
                    )),
                }
            } else {
                match self.addr_of(target) {
                    Some(addr) => self
                        .peers
                        .call(&addr, &req, left)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Ok(Response::Error(RemoteError::NotController { leader: None })),
                }
            };
            match answer {
                Ok(Response::Error(RemoteError::NotController { leader })) => {
                    last_failure = format!("node {target} is not the active controller");
                    // A hint pointing back at the node that just refused means the election
                    // is still settling: wait a little before asking again.
                    if leader != Some(target) {
                        hint = leader;
                    }
                }
                Ok(Response::Error(e)) => return Err(e.into()),
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    tracing::debug!(target, request = req.kind(), error = %e, "controller request failed");
                    last_failure = e;
                }
            }
            if Instant::now() >= deadline {
                let waited = started.elapsed();
                tracing::warn!(
                    request = req.kind(),
                    ?waited,
                    last_failure,
                    "controller request gave up"
                );
                return Err(QuorumError::NoController(waited));
            }
            let sleep = pause.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(sleep).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Waits until the local image reaches `offset`, for at most `timeout`.
    pub(crate) async fn wait_for_offset(
        &self,
        offset: i64,
        timeout: Duration,
    ) -> Result<Arc<crate::metadata::MetadataImage>, QuorumError> {
        let mut rx = self.subscribe();
        let mut stopped = self.stopped.subscribe();
        let wait = async {
            tokio::select! {
                r = rx.wait_for(|img| img.offset >= offset) => r.map(|img| img.clone()).map_err(|_| QuorumError::Stopped),
                _ = stopped.wait_for(|s| *s) => Err(QuorumError::Stopped),
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| QuorumError::CatchUp(offset))?
    }

    /// The image offset a node must reach to have applied everything committed now.
    pub(crate) async fn read_index(&self) -> Result<i64, QuorumError> {
        match self.call_leader(Request::ReadIndex).await? {
            Response::ReadIndex { offset } => Ok(offset),
            other => Err(QuorumError::Protocol(format!("{other:?}"))),
        }
    }

    /// Waits (up to `timeout`) until this node's image holds everything committed; returns the
    /// offset it reached.
    pub(crate) async fn catch_up(&self, timeout: Duration) -> Result<i64, QuorumError> {
        let deadline = Instant::now() + timeout;
        let offset = tokio::time::timeout(timeout, self.read_index())
            .await
            .map_err(|_| QuorumError::NoController(timeout))??;
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_for_offset(offset, left).await?;
        Ok(offset)
    }

    /// True when this node can catch up: a voter, or a learner already in the membership (a
    /// broker-only node joins when its broker registers; before that no leader serves it).
    pub(crate) fn can_catch_up(&self) -> bool {
        self.cfg.voter
            || self
                .raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .get_node(&raft_id(self.cfg.node_id))
                .is_some()
    }
}

/// Confirms, retrying until it succeeds or the quorum stops, that this node's image holds
/// everything the leader had committed when asked (a read index: the leader confirms its
/// leadership with a quorum first), then sets `caught_up` for good: an image confirmed current
/// once is at least as new as anything written before this process started.
pub(crate) async fn confirm_caught_up(quorum: Weak<Quorum>) {
    let mut pause = Duration::from_millis(50);
    let mut reported = false;
    loop {
        {
            let Some(q) = quorum.upgrade() else { return };
            if q.is_stopped() {
                return;
            }
            if q.can_catch_up() {
                match q.catch_up(q.request_timeout()).await {
                    Ok(offset) => {
                        q.caught_up.send_replace(true);
                        tracing::info!(offset, "metadata image confirmed current");
                        return;
                    }
                    Err(e) if !reported => {
                        reported = true;
                        tracing::info!(error = %e, "metadata image not confirmed current yet; retrying");
                    }
                    Err(e) => tracing::debug!(error = %e, "catching up with the metadata leader"),
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}
