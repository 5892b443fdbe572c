//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): a version line `0`, a count line, then `topic partition offset`
//! per line. Written to a temp file, fsync'd, renamed, and the directory fsync'd, so a crash leaves
//! either the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Result;
use crate::TopicPartition;

/// Reads a checkpoint; a missing or malformed file reads as empty (the log then recovers more).
pub(crate) fn read(path: &Path) -> BTreeMap<TopicPartition, i64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    parse(&text).unwrap_or_else(|| {
        tracing::warn!(file = %path.display(), "unknown checkpoint version; ignoring");
        BTreeMap::new()
    })
}

/// The entries of a checkpoint's text; `None` for an unknown version. Malformed lines are
/// skipped.
pub(crate) fn parse(text: &str) -> Option<BTreeMap<TopicPartition, i64>> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return None;
    }
    let _count = lines.next();
    for line in lines {
        let mut parts = line.rsplitn(3, ' ');
        let (Some(off), Some(part), Some(topic)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if let (Ok(o), Ok(p)) = (off.parse::<i64>(), part.parse::<i32>()) {
            out.insert(TopicPartition::new(topic, p), o);
        }
    }
    Some(out)
}

/// Atomically replaces a checkpoint file.
pub(crate) fn write(path: &Path, entries: &BTreeMap<TopicPartition, i64>) -> Result<()> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(tp, off)| format!("{} {} {}", tp.topic, tp.partition, off))
        .collect();
    write_lines(path, &lines)
}

/// Atomically replaces a checkpoint file in Kafka's `CheckpointFile` layout: version `0`, the
/// entry count, then one line per entry (shared with `leader-epoch-checkpoint`).
pub(crate) fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    // `<name>.tmp` beside it; the log loader deletes leftovers ending in `.tmp`.
    let mut text = format!("0\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    crate::durable_file::write_durably(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_dashes_and_spaces_free_names() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("cp");
        let m = BTreeMap::from([
            (TopicPartition::new("a-b.c", 3), 42),
            (TopicPartition::new("x", 0), 0),
        ]);
        write(&p, &m).expect("write");
        assert_eq!(read(&p), m);
        assert!(read(&dir.path().join("missing")).is_empty());
    }
}
