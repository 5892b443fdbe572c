//! `StateMachine`: openraft's `RaftStateMachine` holding the `MetadataImage`.
//!
//! The image lives in memory and is published (an `Arc` in a watch channel) after every applied
//! batch of entries; durability comes from the log plus snapshots: at start-up the newest snapshot
//! is loaded and openraft re-applies the committed entries after it.
//!
//! Optimistic concurrency (see `Proposal`): `last_modified` is the image offset just after the
//! last entry that changed the image; a proposal decided on an image older than that is refused
//! (`ApplyOutcome::Conflict`). It is part of the snapshot, so every replica decides alike.
//!
//! Every proposal is checked again here (`based_on` precedes the entry, the records pass
//! `MetadataImage::check`): one that fails is skipped with an error log and answered
//! `ApplyOutcome::Invalid`, never applied in part, never a storage error (which would stop
//! openraft). Every replica decides alike, since the check depends only on the image. Parts of a
//! split proposal are staged (`staging`) and applied together at the last one.
//!
//! `image.offset` is the index of the last applied entry + 1 (blank and membership entries
//! included), i.e. the next metadata offset, as Kafka's `MetadataImage` offset.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use tokio::sync::watch;

use super::entry_codec::Entry;
use super::snapshot_store::{Meta, SnapshotPayload, SnapshotStore};
use super::staging::{StagedProposals, Staging};
use super::types::{ApplyOutcome, NodeId, Proposal, TypeConfig};
use crate::metadata::MetadataImage;

type SResult<T> = Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, BasicNode>;

/// The applied metadata state of one node.
#[derive(Debug)]
pub(crate) struct StateMachine {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    last_modified: i64,
    /// Parts of split proposals not complete yet.
    staged: StagedProposals,
    snapshots: Arc<SnapshotStore>,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
}

fn to_offset(index: u64) -> i64 {
    i64::try_from(index.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Applies the proposal of entry `index` (see the module docs): checks `based_on`, stages a part
/// of a split proposal, applies whole ones, and answers what it did. Never fails: whatever an
/// entry holds, the outcome says so and replay goes on.
fn apply_proposal(
    image: &mut MetadataImage,
    last_modified: &mut i64,
    staged: &mut StagedProposals,
    index: u64,
    p: Proposal,
) -> ApplyOutcome {
    let offset = to_offset(index);
    // The image offset just before this entry is its index: a proposal can only have been
    // decided on an image up to there. Anything later (i64::MAX) would pass every conflict
    // check, so it is refused like invalid records.
    let before = offset - 1;
    if p.based_on < 0 || p.based_on > before {
        tracing::error!(
            index,
            based_on = p.based_on,
            "metadata entry based on an offset that does not precede it; skipped"
        );
        if let Some(part) = &p.part {
            staged.drop_group(&part.group);
        }
        return ApplyOutcome::Invalid;
    }
    if p.based_on < *last_modified {
        if let Some(part) = &p.part {
            staged.drop_group(&part.group);
        }
        return ApplyOutcome::Conflict;
    }
    let records = match p.part {
        None => p.records,
        Some(part) => match staged.add(index, p.based_on, part, p.records) {
            Staging::Staged => return ApplyOutcome::Staged,
            Staging::Complete(records) => records,
            Staging::Invalid(why) => {
                tracing::error!(index, group = %part.group, why, "invalid part of a split proposal; the proposal is dropped");
                return ApplyOutcome::Invalid;
            }
        },
    };
    match image.apply_records(&records) {
        Ok(()) => {
            if !records.is_empty() {
                *last_modified = offset;
                staged.drop_stale(offset);
            }
            ApplyOutcome::Applied
        }
        Err(e) => {
            tracing::error!(index, error = %e, "invalid metadata entry skipped; nothing of it applied");
            ApplyOutcome::Invalid
        }
    }
}

impl StateMachine {
    /// Restores the newest snapshot (if any) and publishes its image.
    pub(crate) fn open(
        snapshots: Arc<SnapshotStore>,
        image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
    ) -> std::io::Result<StateMachine> {
        let mut sm = StateMachine {
            image: Arc::new(MetadataImage::default()),
            last_applied: None,
            last_membership: Membership::default(),
            last_modified: 0,
            staged: StagedProposals::default(),
            snapshots,
            image_tx,
        };
        if let Some((meta, data)) = sm.snapshots.current()? {
            let payload: SnapshotPayload = serde_json::from_slice(&data)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            sm.restore(&meta, payload);
            tracing::info!(snapshot = %meta, "restored metadata snapshot");
        }
        Ok(sm)
    }

    fn restore(&mut self, meta: &Meta, payload: SnapshotPayload) {
        let mut image = payload.image;
        // A snapshot from before apply checked the rules may hold what no record may make now.
        let dropped = image.drop_invalid();
        if dropped > 0 {
            tracing::error!(dropped, snapshot = %meta, "invalid entries dropped from the metadata snapshot");
        }
        self.image = Arc::new(image);
        self.last_modified = payload.last_modified;
        self.staged = payload.staged;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.image_tx.send_replace(self.image.clone());
    }
}

/// Builds a snapshot from a copy of the state taken when openraft asked for a builder.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    last_modified: i64,
    staged: StagedProposals,
    snapshots: Arc<SnapshotStore>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> SResult<Snapshot<TypeConfig>> {
        let payload = SnapshotPayload {
            image: (*self.image).clone(),
            last_modified: self.last_modified,
            staged: self.staged.clone(),
        };
        let data =
            serde_json::to_vec(&payload).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let end = self.last_applied.map_or(0, |l| l.index + 1);
        let term = self.last_applied.map_or(0, |l| l.leader_id.term);
        let meta = Meta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: format!("{end}-{term}"),
        };
        self.snapshots
            .save(&meta, &data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        tracing::info!(end, bytes = data.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> SResult<(Option<LogId<NodeId>>, Membership)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> SResult<Vec<ApplyOutcome>>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        // One copy of the image per batch of entries (readers hold the published one).
        let image = Arc::make_mut(&mut self.image);
        for entry in entries {
            let offset = to_offset(entry.log_id.index);
            let outcome = match entry.payload {
                EntryPayload::Blank => ApplyOutcome::NotProposal,
                EntryPayload::Membership(m) => {
                    self.last_membership = Membership::new(Some(entry.log_id), m);
                    ApplyOutcome::NotProposal
                }
                EntryPayload::Normal(p) => apply_proposal(
                    image,
                    &mut self.last_modified,
                    &mut self.staged,
                    entry.log_id.index,
                    p,
                ),
            };
            image.offset = offset;
            self.last_applied = Some(entry.log_id);
            out.push(outcome);
        }
        self.image_tx.send_replace(self.image.clone());
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            image: self.image.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            last_modified: self.last_modified,
            staged: self.staged.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> SResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> SResult<()> {
        let data = snapshot.into_inner();
        let payload: SnapshotPayload = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        self.snapshots
            .save(meta, &data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.restore(meta, payload);
        tracing::info!(snapshot = %meta, "installed metadata snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> SResult<Option<Snapshot<TypeConfig>>> {
        let current = self
            .snapshots
            .current()
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}
