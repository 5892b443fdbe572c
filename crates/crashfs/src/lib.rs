//! crashfs: a FUSE filesystem held in memory that models the page cache against the disk, the way
//! LazyFS does, so a test can cut the power under a real process and see what survives.
//!
//! Each file has current bytes and durable bytes (`fsync`/`fdatasync` makes them equal); each
//! directory has current entries and durable entries (`fsync` on the directory makes them equal).
//! [`Handle::power_loss`] throws away everything not durable; the mount stays up so the process
//! can be started again on what is left. The rules are in `model.rs`; this file owns the mount.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let fs = crashfs::CrashFs::mount(dir.path())?;
//! std::fs::write(dir.path().join("f"), b"never fsync'd")?;
//! let lost = fs.power_loss();
//! assert!(!dir.path().join("f").exists(), "{lost}");
//! # Ok(())
//! # }
//! ```
//!
//! Mounting needs root (mount(2) on /dev/fuse) or, as another user, `fusermount3` (Debian's
//! `fuse3`).

mod fs;
mod model;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier};
use parking_lot::Mutex;

pub use model::{PowerLoss, Stats};

use crate::fs::CrashFilesystem;
use crate::model::{Model, Owner};

/// Mounts crashfs filesystems.
#[derive(Debug)]
pub struct CrashFs;

impl CrashFs {
    /// Mounts an empty crashfs on `dir` (an existing directory, hidden while mounted) and
    /// serves it from a background thread until the [`Handle`] is dropped. The empty root is
    /// durable. Fails with a message naming the cause when FUSE is not available.
    pub fn mount(dir: &Path) -> io::Result<Handle> {
        if !Path::new("/dev/fuse").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "crashfs: /dev/fuse does not exist (no FUSE in this kernel or container)",
            ));
        }
        let mountpoint = dir.canonicalize()?;
        let root = Owner {
            uid: current_uid(&mountpoint),
            gid: current_gid(&mountpoint),
            perm: 0o755,
        };
        let model = Arc::new(Mutex::new(Model::new(root)));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("crashfs".into()),
            MountOption::Subtype("crashfs".into()),
            MountOption::DefaultPermissions,
        ];
        let filesystem = CrashFilesystem {
            model: Arc::clone(&model),
        };
        let session = fuser::spawn_mount(filesystem, &mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "crashfs: mounting on {} failed: {e} (needs root with CAP_SYS_ADMIN, or \
                     fusermount3 from Debian's fuse3)",
                    mountpoint.display()
                ),
            )
        })?;
        let notifier = session.notifier();
        Ok(Handle {
            session: Some(session),
            notifier,
            model,
            mountpoint,
        })
    }
}

/// The owner of the mount point, given to the root directory so the mounting user can write it.
fn current_uid(dir: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).map(|m| m.uid()).unwrap_or(0)
}

fn current_gid(dir: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).map(|m| m.gid()).unwrap_or(0)
}

/// A mounted crashfs. Dropping it unmounts (lazily if something still holds a file open).
pub struct Handle {
    session: Option<BackgroundSession>,
    notifier: Notifier,
    model: Arc<Mutex<Model>>,
    mountpoint: PathBuf,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("mountpoint", &self.mountpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Handle {
    /// Where the filesystem is mounted (canonical path).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: every file goes back to the bytes of its last fsync (empty if never
    /// fsync'd) and every directory to the entries of its last fsync; what is no longer
    /// reachable disappears. Processes using the mount should be dead (a power loss kills
    /// them); the mount stays up for the next one. Returns what was thrown away.
    pub fn power_loss(&self) -> PowerLoss {
        let (report, inodes) = {
            let mut model = self.model.lock();
            let report = model.power_loss();
            (report, model.inode_numbers())
        };
        // The kernel caches pages and attributes of inodes it has seen; drop them so nobody
        // reads what was lost. Outside the model's lock: the kernel may wait for a read in
        // flight, which needs the lock. An inode the kernel does not know answers ENOENT.
        for ino in inodes {
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, -1);
        }
        report
    }

    /// What the filesystem has done since it was mounted.
    pub fn stats(&self) -> Stats {
        self.model.lock().stats()
    }

    /// Unmounts and waits for the serving thread to end.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_now()
    }

    fn unmount_now(&mut self) -> io::Result<()> {
        match self.session.take() {
            Some(session) => session.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_now() {
            // Busy (a process still has a file open): detach it so the mount point does not
            // stay covered; the serving thread ends when the last file is closed.
            eprintln!(
                "crashfs: unmounting {}: {e}; detaching lazily",
                self.mountpoint.display()
            );
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}
