//! Start-up recovery of interrupted cleaning, as Kafka's `LogLoader` does it: `.cleaned` files
//! (never committed) and `.deleted` files (already replaced) are removed; a `.log.swap` was
//! committed, so the swap is completed: the segments it replaces (base offsets in
//! `[swap base, swap next offset]`) are removed and the swap files renamed into place.

use std::fs;
use std::path::Path;

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::segment::{parse_file_stem, LogSegment, CLEANED_SUFFIX, DELETED_SUFFIX, SWAP_SUFFIX};

/// Finishes or rolls back every interrupted swap in one partition directory.
pub(crate) fn complete_swaps(dir: &Path, config: &LogConfig) -> Result<()> {
    let mut swaps: Vec<i64> = Vec::new();
    let mut stray_swaps = Vec::new();
    let mut changed = false;
    for entry in fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(CLEANED_SUFFIX) || name.ends_with(DELETED_SUFFIX) {
            let _ = fs::remove_file(entry.path());
            changed = true;
        } else if let Some(base) = name
            .strip_suffix(&format!(".log{SWAP_SUFFIX}"))
            .and_then(parse_file_stem)
        {
            swaps.push(base);
        } else if name.ends_with(SWAP_SUFFIX) {
            stray_swaps.push(entry.path());
        }
    }
    swaps.sort_unstable();
    for base in &swaps {
        let next = LogSegment::swap_next_offset(dir, *base, config)?;
        tracing::info!(dir = %dir.display(), base, next, "completing an interrupted segment swap");
        for entry in fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
            let entry = entry.map_err(|e| LogError::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((stem, ext)) = name.split_once('.') else {
                continue;
            };
            if !matches!(ext, "log" | "index" | "timeindex") {
                continue;
            }
            if parse_file_stem(stem).is_some_and(|b| b >= *base && (b < next || b == *base)) {
                fs::remove_file(entry.path()).map_err(|e| LogError::io(entry.path(), e))?;
            }
        }
        let stem = format!("{base:020}");
        for ext in ["index", "timeindex", "log"] {
            let from = dir.join(format!("{stem}.{ext}{SWAP_SUFFIX}"));
            let to = dir.join(format!("{stem}.{ext}"));
            match fs::rename(&from, &to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && ext != "log" => {}
                Err(e) => return Err(LogError::io(&from, e)),
            }
        }
        stray_swaps.retain(|p| !p.to_string_lossy().contains(&stem));
        changed = true;
    }
    for p in stray_swaps {
        let _ = fs::remove_file(p);
        changed = true;
    }
    if changed {
        crate::durable_file::fsync_dir(dir)?;
    }
    Ok(())
}
