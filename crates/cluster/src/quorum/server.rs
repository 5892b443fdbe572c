//! The server side of the controller RPC: the accept loop on `controller.listen`, and
//! `handle_request`, which serves one request whether it came over TCP or from this node itself
//! (`call_leader` short-circuits to it when this node leads).
//!
//! Raft RPCs go straight to openraft; proposals and read-index requests need this node to be the
//! Raft leader; broker requests need the active controller. Anything that needs the leader gets
//! `NotController` with a hint elsewhere.

use std::sync::Weak;

use openraft::error::{ClientWriteError, RaftError};
use openraft::BasicNode;
use tokio::net::{TcpListener, TcpStream};

use super::types::{kafka_id, raft_id};
use super::wire::{read_frame, write_frame, Request, Response};
use super::{Quorum, RemoteError};

/// Accepts connections until the quorum is dropped or its task aborted (shutdown).
pub(crate) async fn serve(listener: TcpListener, quorum: Weak<Quorum>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if quorum.strong_count() == 0 {
            return;
        }
        let _ = stream.set_nodelay(true);
        tracing::trace!(%peer, "controller connection");
        tokio::spawn(connection(stream, quorum.clone()));
    }
}

async fn connection(mut stream: TcpStream, quorum: Weak<Quorum>) {
    // Connections end with the node: a stopped node must look like a dead peer (peers then
    // back off and reconnect to whatever listens next), not like one answering `Stopped`.
    let mut stopped = match quorum.upgrade() {
        Some(q) => q.stopped.subscribe(),
        None => return,
    };
    loop {
        let req: Request = tokio::select! {
            r = read_frame(&mut stream) => match r {
                Ok(Some(r)) => r,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "controller connection closed");
                    return;
                }
            },
            _ = stopped.wait_for(|s| *s) => return,
        };
        let resp = match quorum.upgrade() {
            Some(q) if !q.is_stopped() => q.handle_request(req).await,
            _ => return,
        };
        if let Err(e) = write_frame(&mut stream, &resp).await {
            tracing::debug!(error = %e, "controller connection write failed");
            return;
        }
    }
}

/// The answer for a refused Raft call: a leader hint, or why it failed.
fn forward<E>(e: RaftError<u64, E>) -> Response
where
    E: std::fmt::Display + openraft::TryAsRef<openraft::error::ForwardToLeader<u64, BasicNode>>,
{
    match e {
        RaftError::APIError(api) => match api.try_as_ref() {
            Some(f) => Response::Error(RemoteError::NotController {
                leader: f.leader_id.map(kafka_id),
            }),
            None => Response::Error(RemoteError::Failed(api.to_string())),
        },
        RaftError::Fatal(f) => {
            tracing::warn!(error = %f, "raft stopped");
            Response::Error(RemoteError::Stopped)
        }
    }
}

impl Quorum {
    /// Serves one request (see the module docs).
    pub(crate) async fn handle_request(&self, req: Request) -> Response {
        match req {
            Request::AppendEntries(r) => Response::AppendEntries(self.raft.append_entries(r).await),
            Request::Vote(r) => Response::Vote(self.raft.vote(r).await),
            Request::InstallSnapshot(r) => {
                Response::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
            Request::Propose(p) => {
                // Bounded: a leader that lost its quorum waits for a commit that may never come,
                // and a remote proposer has given up by then anyway.
                let timeout = self.request_timeout();
                match tokio::time::timeout(timeout, self.raft.client_write(p)).await {
                    Ok(Ok(r)) => Response::Proposed {
                        index: r.log_id.index,
                        outcome: r.data,
                    },
                    Ok(Err(e)) => forward::<ClientWriteError<u64, BasicNode>>(e),
                    Err(_) => {
                        tracing::warn!(?timeout, "proposal not committed in time");
                        Response::Error(RemoteError::Failed(format!(
                            "proposal not committed within {timeout:?}"
                        )))
                    }
                }
            }
            Request::ReadIndex => match self.raft.get_read_log_id().await {
                Ok((read, _)) => Response::ReadIndex {
                    offset: read.map_or(0, |l| i64::try_from(l.index + 1).unwrap_or(i64::MAX)),
                },
                Err(e) => forward(e),
            },
            Request::JoinLearner { node_id, addr } => {
                match self.ensure_learner(node_id, &addr).await {
                    Ok(()) => Response::Joined,
                    Err(r) => r,
                }
            }
            Request::RegisterBroker(reg) => match self.controller() {
                Some(c) => c.register_broker(reg).await,
                None => self.not_controller(),
            },
            Request::Heartbeat(h) => match self.controller() {
                Some(c) => c.heartbeat(h).await,
                None => self.not_controller(),
            },
            Request::AlterPartition(a) => match self.controller() {
                Some(c) => c.alter_partition(a).await,
                None => self.not_controller(),
            },
            Request::ElectLeaders { partitions } => match self.controller() {
                Some(c) => c.elect_leaders(partitions).await,
                None => self.not_controller(),
            },
        }
    }

    pub(crate) fn not_controller(&self) -> Response {
        Response::Error(RemoteError::NotController {
            leader: self.controller_leader(),
        })
    }

    /// Adds `node_id` as a Raft learner at `addr` unless the membership already has it there.
    /// Only the leader can change membership; others answer `NotController`.
    pub(crate) async fn ensure_learner(&self, node_id: i32, addr: &str) -> Result<(), Response> {
        let id = raft_id(node_id);
        let (present, same_addr, voter) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let node = membership.get_node(&id);
            (
                node.is_some(),
                node.is_some_and(|n| n.addr == addr),
                membership.voter_ids().any(|v| v == id),
            )
        };
        if present && (same_addr || voter) {
            return Ok(());
        }
        let node = BasicNode {
            addr: addr.to_string(),
        };
        let change = async {
            if present {
                // A learner that moved: replacing a learner's address cannot split a quorum.
                let nodes = std::collections::BTreeMap::from([(id, node)]);
                self.raft
                    .change_membership(openraft::ChangeMembers::SetNodes(nodes), true)
                    .await
            } else {
                self.raft.add_learner(id, node, false).await
            }
        };
        // Bounded like a proposal: the membership entry needs a quorum to commit.
        let timeout = self.request_timeout();
        match tokio::time::timeout(timeout, change).await {
            Ok(Ok(_)) => {
                tracing::info!(node_id, addr, "added a metadata learner");
                Ok(())
            }
            Ok(Err(e)) => Err(forward::<ClientWriteError<u64, BasicNode>>(e)),
            Err(_) => {
                tracing::warn!(
                    node_id,
                    addr,
                    ?timeout,
                    "adding a metadata learner did not commit in time"
                );
                Err(Response::Error(RemoteError::Failed(format!(
                    "learner change not committed within {timeout:?}"
                ))))
            }
        }
    }
}
