//! One cleaning pass over one log (Kafka's `Cleaner.doClean`).
//!
//! 1. Build an [`OffsetMap`] over the dirty section: the closed, cleanable segments from the first
//!    dirty offset up (stopping at a segment boundary if the map fills).
//! 2. Rewrite every segment from the log start to the end of that section, in groups whose total
//!    size fits `segment.bytes`, keeping a record only if no later record with its key was seen;
//!    keyless records are dropped; tombstones already in the clean section and older than
//!    `delete.retention.ms` are dropped. Offsets are kept (gaps are allowed); a batch that loses
//!    records is re-encoded with its original compression, producer id/epoch and leader epoch (a
//!    batch that loses none is copied byte for byte).
//!
//!    Transactions (Kafka's `CleanedTransactionMetadata`, see `txn.rs`): only segments wholly below
//!    the last stable offset are read. Batches of aborted transactions (from the transaction
//!    index) are dropped and never enter the offset map; records of committed transactions are
//!    deduplicated like any other. A COMMIT/ABORT marker is kept while any batch of its
//!    transaction was seen in the pass; once none remains, it goes when it is in the clean
//!    section and its batch is older than `delete.retention.ms` (like tombstones, the deadline
//!    is reported so the log gets another pass). The cleaned segment's `.txnindex` keeps only
//!    aborted transactions whose data is still there.
//! 3. Each group is written as a `.cleaned` segment, committed as `.swap` and swapped in by
//!    [`PartitionLog::swap_cleaned`](crate::PartitionLog).
//!
//! Known difference from Kafka: a batch's base offset and last offset delta follow its first and
//! last retained record (Kafka keeps the original batch bounds to preserve producer sequence state
//! of idempotent producers); a batch left empty is dropped rather than kept as an empty batch,
//! including the last batch of a producer (Kafka keeps that one as an empty batch to preserve
//! producer state). Producer state is rebuilt from the snapshots taken at segment roll, which
//! cover every cleaned (closed) segment, so removed batches only matter when a snapshot is lost
//! and the rebuild replays cleaned segments: a producer may then be forgotten or carry an older
//! sequence (its next produce gets OUT_OF_ORDER_SEQUENCE / UNKNOWN_PRODUCER_ID handling).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::offset_map::OffsetMap;
use super::throttle::Throttler;
use super::txn::TxnTracker;
use crate::batch::{BatchMut, BatchView};
use crate::error::{LogError, Result};
use crate::partition_log::PartitionLog;
use crate::records::{BatchRecords, Record, RecordError};
use crate::segment::{CleanedSegmentWriter, LogSegment};
use crate::txn_index::AbortedTxn;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CleanResult {
    /// The new first dirty offset (the end of the section cleaned).
    pub(crate) next_dirty: i64,
    /// Bytes read (whole range, clean and dirty).
    pub(crate) bytes_read: u64,
    /// Bytes written to cleaned segments.
    pub(crate) bytes_written: u64,
    /// Earliest time a retained tombstone or transaction marker may be dropped (`i64::MAX`:
    /// none retained).
    pub(crate) tombstone_deadline: i64,
    /// False when the pass was abandoned (stop requested, or the log changed under it).
    pub(crate) completed: bool,
}

/// Inputs of one pass.
pub(crate) struct CleanParams<'a> {
    pub(crate) log: &'a Arc<PartitionLog>,
    pub(crate) segments: &'a [Arc<LogSegment>],
    pub(crate) first_dirty: i64,
    pub(crate) now: i64,
    pub(crate) map_limit: u64,
    pub(crate) throttler: &'a Throttler,
    pub(crate) stopping: &'a AtomicBool,
}

fn codec_err(log: &PartitionLog, seg: &LogSegment, e: impl std::fmt::Display) -> LogError {
    LogError::CorruptSegment {
        path: seg.log_path().to_path_buf(),
        reason: format!("{}: {e}", log.topic_partition()),
    }
}

/// The batch's records, or `None` when they inflate past the topic's decompression limit: such a
/// batch is kept whole and its keys stay out of the offset map, so it is never compacted and
/// never loses a record (the validator refuses such batches on compacted topics; one can still
/// arrive from a follower's fetch or from before the topic turned compacted).
fn read_records<'a>(
    log: &PartitionLog,
    seg: &LogSegment,
    view: BatchView<'a>,
) -> Result<Option<BatchRecords<'a>>> {
    match BatchRecords::new(view, log.config().max_decompressed_bytes()) {
        Ok(records) => Ok(Some(records)),
        Err(e @ RecordError::TooLarge { .. }) => {
            tracing::warn!(partition = %log.topic_partition(), offset = view.base_offset(), error = %e, "batch kept uncompacted");
            Ok(None)
        }
        Err(e) => Err(codec_err(log, seg, e)),
    }
}

/// Runs one pass. Errors leave the log as it was (nothing is swapped in half).
pub(crate) fn clean(p: &CleanParams<'_>) -> Result<CleanResult> {
    let mut result = CleanResult {
        next_dirty: p.first_dirty,
        tombstone_deadline: i64::MAX,
        ..Default::default()
    };
    let Some((all_segments, end_of_view)) = stable_segments(p) else {
        return Ok(result);
    };
    // 1. The offset map over the dirty section.
    let Some(mapped) = map_dirty_keys(p, all_segments, end_of_view)? else {
        return Ok(result);
    };
    let segments = &all_segments[..mapped.cleaned_upto];
    // 2. Rewrite in groups.
    let config = p.log.config();
    let mut txns = TxnTracker::new(
        segments
            .first()
            .map(|s| p.log.aborted_transactions(s.base_offset(), mapped.map_end))
            .unwrap_or_default(),
    );
    for group in group_segments(segments, config.segment_bytes) {
        if !rewrite_group(p, group, &mapped.map, &mut txns, &mut result)? {
            return Ok(result);
        }
    }
    result.next_dirty = mapped.map_end;
    result.completed = true;
    tracing::debug!(partition = %p.log.topic_partition(), keys = mapped.map.len(), next_dirty = mapped.map_end, "cleaned");
    Ok(result)
}

/// The closed segments below the last stable offset (open transactions are undecided: nothing at
/// or above it is touched), and the offset where that view ends; `None` when there are none.
fn stable_segments<'p>(p: &'p CleanParams<'_>) -> Option<(&'p [Arc<LogSegment>], i64)> {
    let lso = p.log.last_stable_offset();
    let below_lso = p
        .segments
        .iter()
        .take_while(|s| s.next_offset() <= lso)
        .count();
    let all_segments = &p.segments[..below_lso];
    let last = all_segments.last()?;
    Some((all_segments, last.next_offset().max(last.base_offset())))
}

/// What phase one found: the key → latest offset map, where it ends, and how many of the
/// segments the pass covers.
struct Mapped {
    map: OffsetMap,
    map_end: i64,
    cleaned_upto: usize,
}

/// Phase one: maps every key of the dirty section to its latest offset, segment by segment,
/// until the map is full; `None` when the cleaner is stopping.
fn map_dirty_keys(
    p: &CleanParams<'_>,
    all_segments: &[Arc<LogSegment>],
    end_of_view: i64,
) -> Result<Option<Mapped>> {
    let mut map = OffsetMap::new(p.map_limit);
    let mut map_end = all_segments.first().map_or(0, |s| s.base_offset());
    let mut cleaned_upto = 0usize; // segments [0, cleaned_upto) are in the pass
    let mut map_txns: Option<TxnTracker> = None;
    for (i, seg) in all_segments.iter().enumerate() {
        let seg_end = all_segments
            .get(i + 1)
            .map_or(end_of_view, |n| n.base_offset());
        cleaned_upto = i + 1;
        map_end = seg_end;
        if seg_end <= p.first_dirty {
            continue; // wholly clean
        }
        if map.is_full() {
            cleaned_upto = i;
            map_end = seg.base_offset();
            break;
        }
        // Records of aborted transactions never enter the map.
        let txns = map_txns.get_or_insert_with(|| {
            TxnTracker::new(p.log.aborted_transactions(seg.base_offset(), end_of_view))
        });
        seg.for_each_batch(|_, bytes| {
            if p.stopping.load(Ordering::Acquire) {
                return Ok(false);
            }
            p.throttler.maybe_throttle(bytes.len() as u64);
            let view = BatchView::parse(bytes)?;
            if view.is_control() {
                txns.on_control(&view);
                return Ok(true);
            }
            if txns.on_data(&view) {
                return Ok(true);
            }
            let Some(records) = read_records(p.log, seg, view)? else {
                return Ok(true);
            };
            for r in &records {
                let r = r.map_err(|e| codec_err(p.log, seg, e))?;
                if let Some(k) = r.key {
                    map.put(k, r.offset);
                }
            }
            Ok(true)
        })?;
    }
    if p.stopping.load(Ordering::Acquire) {
        return Ok(None);
    }
    Ok(Some(Mapped {
        map,
        map_end,
        cleaned_upto,
    }))
}

/// Phase two for one group of segments: writes the batches the map keeps into one cleaned
/// segment and swaps it in for the group. False when the pass must end (stopping, or the log
/// changed underneath); nothing is swapped in half.
fn rewrite_group(
    p: &CleanParams<'_>,
    group: &[Arc<LogSegment>],
    map: &OffsetMap,
    txns: &mut TxnTracker,
    result: &mut CleanResult,
) -> Result<bool> {
    let config = p.log.config();
    let retention = config.delete_retention_ms();
    let base = group[0].base_offset();
    let mut writer = CleanedSegmentWriter::create(p.log.dir(), base, &config)?;
    let mut changed = false;
    let mut kept_aborted: Vec<AbortedTxn> = Vec::new();
    let outcome = (|| -> Result<bool> {
        for seg in group {
            seg.for_each_batch(|loc, bytes| {
                if p.stopping.load(Ordering::Acquire) {
                    return Ok(false);
                }
                p.throttler.maybe_throttle(bytes.len() as u64);
                result.bytes_read += bytes.len() as u64;
                let (filtered, deadline) = filter_batch(
                    p,
                    seg,
                    loc.max_timestamp,
                    bytes,
                    map,
                    retention,
                    txns,
                    &mut kept_aborted,
                )?;
                if let Some(d) = deadline {
                    result.tombstone_deadline = result.tombstone_deadline.min(d);
                }
                match filtered {
                    Filtered::Keep => {
                        writer.append_batch(bytes, loc.last_offset, loc.max_timestamp)?
                    }
                    Filtered::Drop => changed = true,
                    Filtered::Rewritten {
                        bytes: out,
                        last_offset,
                        max_timestamp,
                    } => {
                        changed = true;
                        writer.append_batch(&out, last_offset, max_timestamp)?;
                    }
                }
                Ok(true)
            })?;
            if p.stopping.load(Ordering::Acquire) {
                return Ok(false);
            }
        }
        Ok(true)
    })();
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            writer.abort();
            return Ok(false);
        }
        Err(e) => {
            writer.abort();
            return Err(e);
        }
    }
    if !changed && group.len() == 1 {
        writer.abort();
        return Ok(true);
    }
    result.bytes_written += writer.size();
    let new = Arc::new(writer.commit(p.log.dir())?);
    if !p.log.swap_cleaned(group, new)? {
        tracing::info!(partition = %p.log.topic_partition(), "log changed while cleaning; pass abandoned");
        return Ok(false);
    }
    // The transaction index follows the swap (derived data; a crash in between leaves extra
    // entries, which only name producers whose markers are still there or gone with their data).
    let old: Vec<i64> = group.iter().map(|s| s.base_offset()).collect();
    p.log.replace_cleaned_txn_index(&old, base, kept_aborted)?;
    Ok(true)
}

/// Groups consecutive segments so each group's total size fits `max_bytes` and its offsets fit a
/// segment's 32-bit relative offsets (Kafka's `groupSegmentsBySize`).
fn group_segments(segs: &[Arc<LogSegment>], max_bytes: u64) -> Vec<&[Arc<LogSegment>]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        let base = segs[i].base_offset();
        let mut size = segs[i].size();
        let mut j = i + 1;
        while j < segs.len()
            && size + segs[j].size() <= max_bytes
            && segs[j].next_offset() - base < i64::from(i32::MAX)
        {
            size += segs[j].size();
            j += 1;
        }
        out.push(&segs[i..j]);
        i = j;
    }
    out
}

enum Filtered {
    Keep,
    Drop,
    Rewritten {
        bytes: Vec<u8>,
        last_offset: i64,
        max_timestamp: i64,
    },
}

#[allow(clippy::too_many_arguments)]
fn filter_batch(
    p: &CleanParams<'_>,
    seg: &LogSegment,
    max_timestamp: i64,
    bytes: &[u8],
    map: &OffsetMap,
    retention: i64,
    txns: &mut TxnTracker,
    kept_aborted: &mut Vec<AbortedTxn>,
) -> Result<(Filtered, Option<i64>)> {
    let view = BatchView::parse(bytes)?;
    let delete_horizon = p.now.saturating_sub(retention);
    let marker_deadline = || max_timestamp.saturating_add(retention).max(p.now);
    if view.is_control() {
        // A marker stays while its transaction has data in the log; then, once it has been
        // through a pass (clean section) and is older than delete.retention.ms, it goes.
        let fate = txns.on_control(&view);
        if fate.discardable && view.last_offset() < p.first_dirty && max_timestamp < delete_horizon
        {
            return Ok((Filtered::Drop, None));
        }
        kept_aborted.extend(fate.keep_entry);
        let deadline = (fate.discardable || fate.data_gone_now).then(marker_deadline);
        return Ok((Filtered::Keep, deadline));
    }
    if txns.on_data(&view) {
        return Ok((Filtered::Drop, None)); // an aborted transaction's data
    }
    let Some(records) = read_records(p.log, seg, view)? else {
        if view.is_transactional() {
            txns.kept_data(view.producer_id());
        }
        return Ok((Filtered::Keep, None));
    };
    let mut total = 0usize;
    let mut kept: Vec<Record<'_>> = Vec::new();
    for r in &records {
        let r = r.map_err(|e| codec_err(p.log, seg, e))?;
        total += 1;
        let Some(key) = r.key else { continue };
        if map.get(key).is_some_and(|latest| r.offset < latest) {
            continue;
        }
        // A tombstone goes once it has been through a pass (it is in the clean section) and
        // its batch is older than delete.retention.ms.
        if r.value.is_none() && r.offset < p.first_dirty && max_timestamp < delete_horizon {
            continue;
        }
        kept.push(r);
    }
    if view.is_transactional() && !kept.is_empty() {
        txns.kept_data(view.producer_id());
    }
    // A kept tombstone is in the clean section after this pass; it may go once its batch is
    // older than delete.retention.ms.
    let deadline = kept
        .iter()
        .any(|r| r.value.is_none())
        .then(|| max_timestamp.saturating_add(retention).max(p.now));
    if kept.len() == total {
        return Ok((Filtered::Keep, deadline));
    }
    let Some(first) = kept.first().map(|r| r.offset) else {
        return Ok((Filtered::Drop, None));
    };
    let kept = kept
        .iter()
        .map(|r| encodable(&view, r, first))
        .collect::<std::result::Result<Vec<KRecord>, _>>()
        .map_err(|e| codec_err(p.log, seg, e))?;
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &kept,
        &RecordEncodeOptions {
            version: 2,
            compression: compression(view.compression()),
        },
    )
    .map_err(|e| codec_err(p.log, seg, e))?;
    let mut out = out.to_vec();
    let last_offset = kept.last().map_or(view.last_offset(), |r| r.offset);
    let mut max_ts = kept
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(max_timestamp);
    if view.is_log_append_time() {
        // The encoder writes CreateTime; restore LogAppendTime and the broker's timestamp.
        BatchMut::new(&mut out).set_log_append_time(view.max_timestamp());
        max_ts = view.max_timestamp();
    }
    Ok((
        Filtered::Rewritten {
            bytes: out,
            last_offset,
            max_timestamp: max_ts,
        },
        deadline,
    ))
}

const DELETE_HORIZON_BIT: i16 = 0x40;

/// The encoder's codec for a batch's compression id (the reader refused any other).
fn compression(id: i16) -> Compression {
    match id {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// A kept record as the encoder takes it, with the batch's producer fields. The encoder starts a
/// new batch whenever offset − sequence changes, so sequences follow offsets: the producer's
/// (`baseSequence + offsetDelta`) for idempotent batches, and for others numbered from −1 at
/// `first` so the new batch's base sequence stays −1. Timestamps are the producer's create
/// times; LogAppendTime is restored on the encoded batch.
fn encodable(
    view: &BatchView<'_>,
    r: &Record<'_>,
    first: i64,
) -> std::result::Result<KRecord, std::str::Utf8Error> {
    let sequence = if view.base_sequence() == -1 {
        ((r.offset - first) as i32).wrapping_sub(1)
    } else {
        view.base_sequence().wrapping_add(r.offset_delta)
    };
    let headers = r
        .headers()
        .map(|h| {
            let key = StrBytes::from_utf8(Bytes::copy_from_slice(h.key))?;
            Ok((key, h.value.map(Bytes::copy_from_slice)))
        })
        .collect::<std::result::Result<_, std::str::Utf8Error>>()?;
    Ok(KRecord {
        transactional: view.is_transactional(),
        control: false,
        // KIP-534's delete-horizon attribute, kept as the batch had it.
        delete_horizon: view.attributes() & DELETE_HORIZON_BIT != 0,
        partition_leader_epoch: view.partition_leader_epoch(),
        producer_id: view.producer_id(),
        producer_epoch: view.producer_epoch(),
        timestamp_type: TimestampType::Creation,
        offset: r.offset,
        sequence,
        timestamp: view.base_timestamp().saturating_add(r.timestamp_delta),
        key: r.key.map(Bytes::copy_from_slice),
        value: r.value.map(Bytes::copy_from_slice),
        headers,
    })
}
