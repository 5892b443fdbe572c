//! The crash model: an in-memory tree in which every file and directory has a current state (what
//! the page cache shows a running process) and a durable state (what the disk would hold after a
//! power cut), and the rules that move the one to the other.
//!
//! The rules are strict POSIX, stricter than ext4's ordered mode on purpose, like LazyFS:
//! - a file's bytes and length become durable only when that file is fsync'd (or fdatasync'd);
//! - a directory's entries (name → inode) become durable only when that directory is fsync'd, so a
//!   file created, renamed or unlinked is durable in its parent only after the parent's fsync,
//!   however often the file itself was fsync'd;
//! - a power loss reverts every file to its durable bytes (a file never fsync'd is empty) and every
//!   directory to its durable entries; whatever is no longer reachable from the root through
//!   durable entries is gone.
//!
//! Ownership, permissions and times are not part of the crash model (they keep their current
//! values): Strom depends on none of them.
//!
//! Inodes are never reused and never freed: the kernel may still name an inode that a power loss
//! made unreachable, and a file unlinked but not yet durable in its directory comes back after a
//! power loss with its durable bytes. Memory is therefore proportional to the data ever written,
//! which is what a test writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use fuser::{Errno, FileAttr, FileType, INodeNo};

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub(crate) const ROOT: u64 = 1;

/// The most bytes one file may really hold: a write past it fails with EFBIG rather than
/// allocating the zeros before it (a sparse length set with `set_len` costs nothing).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// What the filesystem has done since it was mounted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// `fsync`/`fdatasync` calls on files.
    pub file_syncs: u64,
    /// `fsync` calls on directories.
    pub dir_syncs: u64,
    /// Simulated power losses.
    pub power_losses: u64,
}

/// What one power loss threw away, by path (as the paths were just before it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerLoss {
    /// Entries that existed and are gone: created or renamed into place and the directory never
    /// fsync'd since (everything below a lost directory is not listed again).
    pub lost: Vec<PathBuf>,
    /// Entries that had been removed or renamed away and are back: the directory was not fsync'd.
    pub reappeared: Vec<PathBuf>,
    /// Files still there whose bytes or length went back to their last fsync.
    pub reverted: Vec<PathBuf>,
}

impl fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, what: &str, paths: &[PathBuf]| {
            writeln!(f, "{what} ({}):", paths.len())?;
            paths
                .iter()
                .try_for_each(|p| writeln!(f, "  {}", p.display()))
        };
        list(f, "lost", &self.lost)?;
        list(f, "reappeared", &self.reappeared)?;
        list(f, "reverted", &self.reverted)
    }
}

/// A file's bytes: `bytes` then zeros up to `len` (a length grown by `set_len` or `fallocate` holds
/// no memory).
#[derive(Debug, Default, Clone)]
struct Contents {
    bytes: Vec<u8>,
    len: u64,
}

impl Contents {
    fn read(&self, offset: u64, size: u32) -> Vec<u8> {
        if offset >= self.len {
            return Vec::new();
        }
        let end = self.len.min(offset.saturating_add(u64::from(size)));
        let mut out = vec![0u8; (end - offset) as usize];
        let have = self.bytes.len() as u64;
        if offset < have {
            let stop = end.min(have);
            out[..(stop - offset) as usize]
                .copy_from_slice(&self.bytes[offset as usize..stop as usize]);
        }
        out
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_BYTES)
            .ok_or(Errno::EFBIG)?;
        let (start, end) = (offset as usize, end as usize);
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[start..end].copy_from_slice(data);
        self.len = self.len.max(end as u64);
        Ok(())
    }

    fn set_len(&mut self, len: u64) {
        if len < self.bytes.len() as u64 {
            self.bytes.truncate(len as usize);
        }
        self.len = len;
    }
}

/// A regular file: its current and durable contents. `clean` bytes at the start are known to be
/// equal in both, so an fsync copies only what changed since the last one.
#[derive(Debug, Default)]
struct FileNode {
    current: Contents,
    durable: Contents,
    clean: usize,
}

impl FileNode {
    fn touched(&mut self, from: u64) {
        self.clean = self.clean.min(usize::try_from(from).unwrap_or(usize::MAX));
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.current.write(offset, data)?;
        self.touched(offset);
        Ok(())
    }

    fn set_len(&mut self, len: u64) {
        self.current.set_len(len);
        self.touched(len);
    }

    fn is_dirty(&self) -> bool {
        self.current.len != self.durable.len
            || self.clean < self.current.bytes.len()
            || self.clean < self.durable.bytes.len()
    }

    fn sync(&mut self) {
        self.durable.bytes.truncate(self.clean);
        self.durable
            .bytes
            .extend_from_slice(&self.current.bytes[self.clean..]);
        self.durable.len = self.current.len;
        self.clean = self.current.bytes.len();
    }

    fn revert(&mut self) {
        self.current.bytes.truncate(self.clean);
        self.current
            .bytes
            .extend_from_slice(&self.durable.bytes[self.clean..]);
        self.current.len = self.durable.len;
        self.clean = self.current.bytes.len();
    }
}

/// A directory: its current and durable entries, and its parent in the current tree.
#[derive(Debug)]
struct DirNode {
    current: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
    parent: u64,
}

#[derive(Debug)]
enum Body {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct Inode {
    body: Body,
    perm: u16,
    uid: u32,
    gid: u32,
    /// Current entries naming this inode (files; directories report 2).
    links: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    crtime: SystemTime,
}

impl Inode {
    fn new(body: Body, perm: u16, uid: u32, gid: u32) -> Self {
        let now = SystemTime::now();
        Inode {
            body,
            perm,
            uid,
            gid,
            links: 1,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
        }
    }

    fn kind(&self) -> FileType {
        match self.body {
            Body::File(_) => FileType::RegularFile,
            Body::Dir(_) => FileType::Directory,
        }
    }

    fn attr(&self, ino: u64) -> FileAttr {
        let (size, bytes, nlink) = match &self.body {
            Body::File(f) => (f.current.len, f.current.bytes.len() as u64, self.links),
            Body::Dir(d) => (d.current.len() as u64, 0, 2),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: bytes.div_ceil(512),
            atime: self.atime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.crtime,
            kind: self.kind(),
            perm: self.perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

/// Who creates an inode, and with which mode bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Permission bits after the umask.
    pub(crate) perm: u16,
}

/// The changes a `setattr` asks for.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SetAttr {
    pub(crate) perm: Option<u16>,
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) len: Option<u64>,
    pub(crate) atime: Option<SystemTime>,
    pub(crate) mtime: Option<SystemTime>,
}

/// The whole filesystem: every inode ever created, by number.
#[derive(Debug)]
pub(crate) struct Model {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    stats: Stats,
}

impl Model {
    /// An empty root directory, durable (the state at mount time is what the disk holds).
    pub(crate) fn new(root: Owner) -> Self {
        let dir = DirNode {
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
            parent: ROOT,
        };
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            Inode::new(Body::Dir(dir), root.perm, root.uid, root.gid),
        );
        Model {
            inodes,
            next_ino: ROOT + 1,
            stats: Stats::default(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    fn inode(&self, ino: u64) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn inode_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&DirNode, Errno> {
        match &self.inode(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirNode, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileNode, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<Option<u64>, Errno> {
        Ok(self.dir(parent)?.current.get(name).copied())
    }

    /// The directory's mtime and ctime move when its entries change.
    fn dir_changed(&mut self, dir: u64) {
        if let Some(d) = self.inodes.get_mut(&dir) {
            let now = SystemTime::now();
            d.mtime = now;
            d.ctime = now;
        }
    }

    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr, Errno> {
        let ino = self.child(parent, name)?.ok_or(Errno::ENOENT)?;
        self.getattr(ino)
    }

    pub(crate) fn getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        Ok(self.inode(ino)?.attr(ino))
    }

    pub(crate) fn setattr(&mut self, ino: u64, set: SetAttr) -> Result<FileAttr, Errno> {
        let now = SystemTime::now();
        if let Some(len) = set.len {
            self.file_mut(ino)?.set_len(len);
        }
        let node = self.inode_mut(ino)?;
        if set.len.is_some() {
            node.mtime = now;
        }
        if let Some(perm) = set.perm {
            node.perm = perm;
        }
        if let Some(uid) = set.uid {
            node.uid = uid;
        }
        if let Some(gid) = set.gid {
            node.gid = gid;
        }
        if let Some(t) = set.atime {
            node.atime = t;
        }
        if let Some(t) = set.mtime {
            node.mtime = t;
        }
        node.ctime = now;
        Ok(node.attr(ino))
    }

    fn insert(&mut self, parent: u64, name: &OsStr, body: Body, owner: Owner) -> FileAttr {
        let ino = self.next_ino;
        self.next_ino += 1;
        let node = Inode::new(body, owner.perm, owner.uid, owner.gid);
        let attr = node.attr(ino);
        self.inodes.insert(ino, node);
        if let Ok(d) = self.dir_mut(parent) {
            d.current.insert(name.to_os_string(), ino);
        }
        self.dir_changed(parent);
        attr
    }

    /// Creates an empty regular file (`mknod`, `create`); EEXIST if the name is taken.
    pub(crate) fn create_file(
        &mut self,
        parent: u64,
        name: &OsStr,
        owner: Owner,
    ) -> Result<FileAttr, Errno> {
        if self.child(parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        Ok(self.insert(parent, name, Body::File(FileNode::default()), owner))
    }

    pub(crate) fn mkdir(
        &mut self,
        parent: u64,
        name: &OsStr,
        owner: Owner,
    ) -> Result<FileAttr, Errno> {
        if self.child(parent, name)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let dir = DirNode {
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
            parent,
        };
        Ok(self.insert(parent, name, Body::Dir(dir), owner))
    }

    /// Drops one current link to `ino` (an entry naming it was removed or replaced).
    fn unlinked(&mut self, ino: u64) {
        if let Some(node) = self.inodes.get_mut(&ino) {
            node.links = node.links.saturating_sub(1);
            node.ctime = SystemTime::now();
        }
    }

    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.child(parent, name)?.ok_or(Errno::ENOENT)?;
        if matches!(self.inode(ino)?.body, Body::Dir(_)) {
            return Err(Errno::EISDIR);
        }
        self.dir_mut(parent)?.current.remove(name);
        self.unlinked(ino);
        self.dir_changed(parent);
        Ok(())
    }

    pub(crate) fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let ino = self.child(parent, name)?.ok_or(Errno::ENOENT)?;
        if !self.dir(ino)?.current.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.dir_mut(parent)?.current.remove(name);
        self.unlinked(ino);
        self.dir_changed(parent);
        Ok(())
    }

    /// Whether `dir` is `ancestor` or lies below it in the current tree.
    fn is_within(&self, mut dir: u64, ancestor: u64) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.dir(dir) {
                Ok(d) if dir != ROOT && d.parent != dir => dir = d.parent,
                _ => return false,
            }
        }
    }

    /// `rename(2)`, replacing an existing target as POSIX says (`no_replace`: RENAME_NOREPLACE).
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.child(parent, name)?.ok_or(Errno::ENOENT)?;
        let moving_dir = matches!(self.inode(ino)?.body, Body::Dir(_));
        self.dir(new_parent)?;
        if moving_dir && self.is_within(new_parent, ino) {
            return Err(Errno::EINVAL);
        }
        if let Some(target) = self.child(new_parent, new_name)? {
            if no_replace {
                return Err(Errno::EEXIST);
            }
            if target == ino {
                return Ok(());
            }
            match (&self.inode(target)?.body, moving_dir) {
                (Body::Dir(d), true) if !d.current.is_empty() => return Err(Errno::ENOTEMPTY),
                (Body::Dir(_), true) | (Body::File(_), false) => {}
                (Body::Dir(_), false) => return Err(Errno::EISDIR),
                (Body::File(_), true) => return Err(Errno::ENOTDIR),
            }
            self.unlinked(target);
        }
        self.dir_mut(parent)?.current.remove(name);
        self.dir_mut(new_parent)?
            .current
            .insert(new_name.to_os_string(), ino);
        if moving_dir {
            self.dir_mut(ino)?.parent = new_parent;
        }
        if let Some(node) = self.inodes.get_mut(&ino) {
            node.ctime = SystemTime::now();
        }
        self.dir_changed(parent);
        self.dir_changed(new_parent);
        Ok(())
    }

    pub(crate) fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match &self.inode(ino)?.body {
            Body::File(f) => Ok(f.current.read(offset, size)),
            Body::Dir(_) => Err(Errno::EISDIR),
        }
    }

    pub(crate) fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.file_mut(ino)?.write(offset, data)?;
        let node = self.inode_mut(ino)?;
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        Ok(())
    }

    /// `fallocate(2)`: mode 0 grows the length to cover the range; FALLOC_FL_KEEP_SIZE changes
    /// nothing visible. Both allocate nothing here (the length is sparse); other modes are
    /// refused.
    pub(crate) fn fallocate(
        &mut self,
        ino: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let file = self.file_mut(ino)?;
        match mode {
            0 => {
                if end > file.current.len {
                    file.set_len(end);
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => Ok(()),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `fsync`/`fdatasync` of a file (its bytes and length) or of a directory (its entries).
    pub(crate) fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => {
                f.sync();
                self.stats.file_syncs += 1;
            }
            Body::Dir(d) => {
                d.durable.clone_from(&d.current);
                self.stats.dir_syncs += 1;
            }
        }
        Ok(())
    }

    /// The entries of a directory, `.` and `..` first.
    pub(crate) fn readdir(&self, ino: u64) -> Result<Vec<(u64, FileType, OsString)>, Errno> {
        let dir = self.dir(ino)?;
        let mut out = Vec::with_capacity(dir.current.len() + 2);
        out.push((ino, FileType::Directory, OsString::from(".")));
        out.push((dir.parent, FileType::Directory, OsString::from("..")));
        for (name, &child) in &dir.current {
            let kind = self.inode(child)?.kind();
            out.push((child, kind, name.clone()));
        }
        Ok(out)
    }

    /// Bytes held by file contents (current and durable), for `statfs`.
    pub(crate) fn bytes_used(&self) -> u64 {
        self.inodes
            .values()
            .map(|n| match &n.body {
                Body::File(f) => (f.current.bytes.len() + f.durable.bytes.len()) as u64,
                Body::Dir(_) => 0,
            })
            .sum()
    }

    pub(crate) fn inode_count(&self) -> u64 {
        self.inodes.len() as u64
    }

    /// Every path reachable from the root through current entries, with its inode (each
    /// directory visited once).
    fn paths(&self) -> BTreeMap<PathBuf, u64> {
        let mut out = BTreeMap::new();
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![(PathBuf::new(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let Ok(dir) = self.dir(ino) else { continue };
            for (name, &child) in &dir.current {
                let p = path.join(name);
                out.insert(p.clone(), child);
                if matches!(self.inodes.get(&child).map(|n| &n.body), Some(Body::Dir(_)))
                    && seen.insert(child)
                {
                    stack.push((p, child));
                }
            }
        }
        out
    }

    /// The power cut: every file back to its durable bytes, every directory to its durable
    /// entries. Returns what was thrown away.
    pub(crate) fn power_loss(&mut self) -> PowerLoss {
        let before = self.paths();
        let dirty: BTreeSet<u64> = self
            .inodes
            .iter()
            .filter(|(_, n)| matches!(&n.body, Body::File(f) if f.is_dirty()))
            .map(|(&ino, _)| ino)
            .collect();
        for node in self.inodes.values_mut() {
            match &mut node.body {
                Body::File(f) => f.revert(),
                Body::Dir(d) => d.current.clone_from(&d.durable),
            }
            node.links = 0;
        }
        self.rebuild_tree();
        self.stats.power_losses += 1;

        let after = self.paths();
        let mut report = PowerLoss::default();
        for (path, ino) in &before {
            // Below a lost directory, only the directory itself is listed.
            let parent_lost = path
                .parent()
                .is_some_and(|p| !p.as_os_str().is_empty() && !after.contains_key(p));
            match after.get(path) {
                None if !parent_lost => report.lost.push(path.clone()),
                Some(now) if now == ino && dirty.contains(ino) => {
                    report.reverted.push(path.clone())
                }
                _ => {}
            }
        }
        report.reappeared = after
            .keys()
            .filter(|p| !before.contains_key(*p))
            .cloned()
            .collect();
        report
    }

    /// After the entries went back to their durable state: walk the tree from the root to set
    /// each directory's parent and each file's link count. A directory named twice (renamed from
    /// one directory to another and only one of them fsync'd) keeps the first name found; the
    /// second entry is dropped, as no real filesystem shows one directory in two places.
    fn rebuild_tree(&mut self) {
        let mut seen = BTreeSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(dir) = stack.pop() {
            let entries: Vec<(OsString, u64)> = match self.dir(dir) {
                Ok(d) => d.current.iter().map(|(n, &i)| (n.clone(), i)).collect(),
                Err(_) => continue,
            };
            for (name, child) in entries {
                let is_dir = match self.inodes.get(&child) {
                    Some(n) => matches!(n.body, Body::Dir(_)),
                    None => false,
                };
                if is_dir && !seen.insert(child) {
                    if let Ok(d) = self.dir_mut(dir) {
                        d.current.remove(&name);
                        d.durable.remove(&name);
                    }
                    continue;
                }
                if let Some(node) = self.inodes.get_mut(&child) {
                    node.links += 1;
                    if let Body::Dir(d) = &mut node.body {
                        d.parent = dir;
                        stack.push(child);
                    }
                }
            }
        }
        if let Some(root) = self.inodes.get_mut(&ROOT) {
            root.links = 1;
        }
    }

    /// Every inode number, for the kernel cache invalidation after a power loss.
    pub(crate) fn inode_numbers(&self) -> Vec<u64> {
        self.inodes.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        uid: 0,
        gid: 0,
        perm: 0o644,
    };

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn ino(attr: FileAttr) -> u64 {
        attr.ino.0
    }

    #[test]
    fn sync_copies_only_the_changed_tail_and_revert_restores_it() {
        let mut m = Model::new(OWNER);
        let f = ino(m.create_file(ROOT, name("f"), OWNER).unwrap());
        m.write(f, 0, b"hello world").unwrap();
        m.fsync(f).unwrap();
        m.write(f, 6, b"WORLD!!").unwrap();
        m.write(f, 20, b"x").unwrap();
        assert_eq!(m.getattr(f).unwrap().size, 21);
        m.power_loss();
        assert_eq!(m.read(f, 0, 100).unwrap(), b"hello world");
        m.fsync(ROOT).unwrap();
        m.set_len_for_test(f, 3);
        m.fsync(f).unwrap();
        m.set_len_for_test(f, 8);
        assert_eq!(m.read(f, 0, 100).unwrap(), b"hel\0\0\0\0\0");
        m.power_loss();
        assert_eq!(m.read(f, 0, 100).unwrap(), b"hel");
    }

    #[test]
    fn reads_past_the_written_bytes_are_zeros_up_to_the_length() {
        let mut m = Model::new(OWNER);
        let f = ino(m.create_file(ROOT, name("f"), OWNER).unwrap());
        m.fallocate(f, 0, 10 << 20, 0).unwrap();
        assert_eq!(m.getattr(f).unwrap().size, 10 << 20);
        assert_eq!(m.read(f, (10 << 20) - 2, 10).unwrap(), vec![0, 0]);
        assert!(m.bytes_used() < 4096, "a sparse length holds no memory");
    }

    #[test]
    fn a_directory_renamed_across_parents_is_not_shown_twice() {
        let mut m = Model::new(OWNER);
        let a = ino(m.mkdir(ROOT, name("a"), OWNER).unwrap());
        let b = ino(m.mkdir(ROOT, name("b"), OWNER).unwrap());
        m.mkdir(a, name("x"), OWNER).unwrap();
        m.fsync(ROOT).unwrap();
        m.fsync(a).unwrap();
        m.rename(a, name("x"), b, name("x"), false).unwrap();
        m.fsync(b).unwrap();
        let report = m.power_loss();
        let shown: usize = [a, b]
            .iter()
            .map(|&d| m.readdir(d).unwrap().len() - 2)
            .sum();
        assert_eq!(shown, 1, "{report}");
    }

    #[test]
    fn the_report_names_lost_reappeared_and_reverted_paths() {
        let mut m = Model::new(OWNER);
        let kept = ino(m.create_file(ROOT, name("kept"), OWNER).unwrap());
        m.create_file(ROOT, name("gone-later"), OWNER).unwrap();
        m.fsync(ROOT).unwrap();
        m.write(kept, 0, b"unsynced").unwrap();
        m.unlink(ROOT, name("gone-later")).unwrap();
        let d = ino(m.mkdir(ROOT, name("new-dir"), OWNER).unwrap());
        m.create_file(d, name("inner"), OWNER).unwrap();
        let report = m.power_loss();
        assert_eq!(report.lost, vec![PathBuf::from("new-dir")]);
        assert_eq!(report.reappeared, vec![PathBuf::from("gone-later")]);
        assert_eq!(report.reverted, vec![PathBuf::from("kept")]);
    }

    #[test]
    fn rename_refuses_what_posix_refuses() {
        let mut m = Model::new(OWNER);
        let d = ino(m.mkdir(ROOT, name("d"), OWNER).unwrap());
        m.mkdir(d, name("sub"), OWNER).unwrap();
        m.create_file(ROOT, name("f"), OWNER).unwrap();
        assert_eq!(
            m.rename(ROOT, name("d"), d, name("x"), false),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            m.rename(ROOT, name("f"), ROOT, name("d"), false),
            Err(Errno::EISDIR)
        );
        let e = ino(m.mkdir(ROOT, name("e"), OWNER).unwrap());
        m.create_file(e, name("g"), OWNER).unwrap();
        assert_eq!(
            m.rename(ROOT, name("d"), ROOT, name("e"), false),
            Err(Errno::ENOTEMPTY)
        );
        assert_eq!(
            m.rename(ROOT, name("f"), ROOT, name("e"), true),
            Err(Errno::EEXIST)
        );
        assert_eq!(m.rmdir(ROOT, name("e")), Err(Errno::ENOTEMPTY));
        assert_eq!(m.unlink(ROOT, name("e")), Err(Errno::EISDIR));
    }

    impl Model {
        fn set_len_for_test(&mut self, ino: u64, len: u64) {
            self.setattr(
                ino,
                SetAttr {
                    len: Some(len),
                    ..SetAttr::default()
                },
            )
            .unwrap();
        }
    }
}
