//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`): a version line `0`, a count line, then `topic partition offset`
//! per line. Written to a temp file, fsync'd, renamed, and the directory fsync'd, so a crash leaves
//! either the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::error::{LogError, Result};
use crate::TopicPartition;

/// Reads a checkpoint; a missing or malformed file reads as empty (the log then recovers more).
pub(crate) fn read(path: &Path) -> BTreeMap<TopicPartition, i64> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        tracing::warn!(file = %path.display(), "unknown checkpoint version; ignoring");
        return out;
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
    out
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
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut text = format!("0\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let io = |e| LogError::io(path, e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        crate::manager::fsync_dir(dir)?;
    }
    Ok(())
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
