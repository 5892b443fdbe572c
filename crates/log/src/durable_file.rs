//! Writing the files a broker depends on so that a crash or power loss leaves either the old or
//! the new content, never a torn or empty file: written to `<name>.tmp` beside it, fsync'd,
//! renamed over the old one, and the directory fsync'd (the rename itself is durable only then).
//! Start-up code deletes leftover `.tmp` files.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{LogError, Result};

/// fsyncs a directory so entries created, renamed or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Atomically and durably replaces `path` with `contents` (temp → fsync → rename → fsync(dir)).
pub fn write_durably(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let io = |e| LogError::io(path, e);
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fsync_dir(dir),
        _ => fsync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("meta.properties");
        write_durably(&p, b"a=1\n").expect("first");
        write_durably(&p, b"a=2\n").expect("second");
        assert_eq!(fs::read(&p).expect("read"), b"a=2\n");
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("meta.properties")]);
    }
}
