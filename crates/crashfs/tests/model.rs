//! The crash model through a real mount: std::fs calls go through the kernel to crashfs, then a
//! power loss, then what std::fs sees. Each test checks one rule and fails if crashfs kept too
//! much (the kernel's caches included) or too little.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crashfs::{CrashFs, Handle};

/// A crashfs on a fresh temp dir; the mount goes before the dir (field order is drop order).
struct Mounted {
    fs: Handle,
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("crashfs-test-")
            .tempdir()
            .expect("temp dir");
        let fs = CrashFs::mount(dir.path()).expect("mounting crashfs");
        Mounted { fs, dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn fsync_dir(dir: &Path) {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
}

/// Creates `path` with `bytes`, fsyncs it and its directory: durable.
fn write_durable(path: &Path, bytes: &[u8]) {
    let mut f = File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
    fsync_dir(path.parent().expect("parent"));
}

#[test]
fn a_write_not_fsynced_is_lost() {
    let m = Mounted::new();
    let p = m.path("f");
    write_durable(&p, b"old");
    let mut f = OpenOptions::new().append(true).open(&p).expect("open");
    f.write_all(b" and new").expect("append");
    assert_eq!(fs::read(&p).expect("read"), b"old and new");
    drop(f);
    let report = m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"old", "{report}");
    assert_eq!(fs::metadata(&p).expect("stat").len(), 3);
    assert_eq!(report.reverted, vec![PathBuf::from("f")]);
}

#[test]
fn a_write_fsynced_is_kept() {
    let m = Mounted::new();
    let p = m.path("f");
    write_durable(&p, b"old");
    let f = OpenOptions::new().write(true).open(&p).expect("open");
    f.write_all_at(b"NEW!", 1).expect("write");
    f.sync_data().expect("fdatasync");
    drop(f);
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"oNEW!");
}

#[test]
fn a_file_fsynced_but_not_its_directory_is_gone() {
    let m = Mounted::new();
    let p = m.path("f");
    let mut f = File::create(&p).expect("create");
    f.write_all(b"data").expect("write");
    f.sync_all().expect("fsync file only");
    drop(f);
    let report = m.fs.power_loss();
    assert!(!p.exists(), "{report}");
    assert_eq!(report.lost, vec![PathBuf::from("f")]);
    assert!(fs::read_dir(m.dir.path()).expect("ls").next().is_none());
}

#[test]
fn a_file_never_fsynced_in_a_durable_directory_is_empty() {
    let m = Mounted::new();
    let p = m.path("f");
    fs::write(&p, b"data").expect("write");
    fsync_dir(m.dir.path());
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"");
}

#[test]
fn temp_fsync_rename_fsync_dir_keeps_the_new_content() {
    let m = Mounted::new();
    let p = m.path("meta.properties");
    write_durable(&p, b"old");
    write_durable(&m.path("meta.properties.tmp"), b"new");
    fs::rename(m.path("meta.properties.tmp"), &p).expect("rename over");
    fsync_dir(m.dir.path());
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"new");
    assert!(!m.path("meta.properties.tmp").exists());
}

#[test]
fn a_rename_without_the_directory_fsync_is_undone() {
    let m = Mounted::new();
    let p = m.path("meta.properties");
    write_durable(&p, b"old");
    write_durable(&m.path("meta.properties.tmp"), b"new");
    fs::rename(m.path("meta.properties.tmp"), &p).expect("rename over");
    assert_eq!(fs::read(&p).expect("read"), b"new");
    let report = m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"old", "{report}");
    assert_eq!(
        fs::read(m.path("meta.properties.tmp")).expect("temp is back"),
        b"new"
    );
}

#[test]
fn an_unlink_without_the_directory_fsync_is_undone() {
    let m = Mounted::new();
    let p = m.path("f");
    write_durable(&p, b"still here");
    fs::remove_file(&p).expect("unlink");
    let report = m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"still here");
    assert_eq!(report.reappeared, vec![PathBuf::from("f")]);
    fs::remove_file(&p).expect("unlink");
    fsync_dir(m.dir.path());
    m.fs.power_loss();
    assert!(!p.exists());
}

#[test]
fn a_new_directory_needs_its_parent_fsynced_and_its_entries_need_its_own() {
    let m = Mounted::new();
    let d = m.path("topic-0");
    fs::create_dir(&d).expect("mkdir");
    write_durable(&d.join("00000000000000000000.log"), b"batch");
    // The file and its directory are fsync'd, the data dir is not: the directory is lost.
    let report = m.fs.power_loss();
    assert!(!d.exists(), "{report}");
    assert_eq!(report.lost, vec![PathBuf::from("topic-0")]);

    fs::create_dir(&d).expect("mkdir");
    fsync_dir(m.dir.path());
    fs::write(d.join("leader-epoch-checkpoint"), b"0\n").expect("write");
    // The directory is durable, its entries are not.
    m.fs.power_loss();
    assert!(d.is_dir());
    assert!(fs::read_dir(&d).expect("ls").next().is_none());
}

#[test]
fn truncation_and_growth_are_durable_only_after_fsync() {
    let m = Mounted::new();
    let p = m.path("00000000000000000000.index");
    write_durable(&p, b"0123456789");
    let f = OpenOptions::new().write(true).open(&p).expect("open");
    f.set_len(4).expect("shrink");
    assert_eq!(fs::read(&p).expect("read"), b"0123");
    drop(f);
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"0123456789", "shrink undone");

    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .expect("open");
    f.set_len(4).expect("shrink");
    f.sync_all().expect("fsync");
    f.set_len(10 << 20).expect("grow sparse");
    assert_eq!(fs::metadata(&p).expect("stat").len(), 10 << 20);
    let mut tail = [1u8; 8];
    f.read_exact_at(&mut tail, (10 << 20) - 8)
        .expect("read tail");
    assert_eq!(tail, [0; 8], "growth reads zeros");
    drop(f);
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"0123", "growth undone");

    // O_TRUNC empties the file, but only in the page cache until an fsync.
    File::create(&p).expect("create truncates");
    assert_eq!(fs::metadata(&p).expect("stat").len(), 0);
    m.fs.power_loss();
    assert_eq!(fs::read(&p).expect("read"), b"0123");
}

#[test]
fn the_kernel_page_cache_does_not_survive_a_power_loss() {
    let m = Mounted::new();
    let p = m.path("f");
    write_durable(&p, b"durable");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .expect("open");
    f.write_all_at(b"CACHED!", 0).expect("write");
    let mut buf = [0u8; 7];
    // Read through the same open file so the page is cached, and keep it open.
    f.read_exact_at(&mut buf, 0).expect("read");
    assert_eq!(&buf, b"CACHED!");
    m.fs.power_loss();
    f.read_exact_at(&mut buf, 0).expect("read after power loss");
    assert_eq!(&buf, b"durable", "stale page served after power loss");
    assert_eq!(fs::read(&p).expect("read"), b"durable");
}

#[test]
fn the_mount_is_usable_after_a_power_loss_and_counts_syncs() {
    let m = Mounted::new();
    write_durable(&m.path("a"), b"1");
    m.fs.power_loss();
    write_durable(&m.path("b"), b"2");
    fs::create_dir_all(m.path("x/y/z")).expect("mkdir -p");
    m.fs.power_loss();
    assert_eq!(fs::read(m.path("a")).expect("a"), b"1");
    assert_eq!(fs::read(m.path("b")).expect("b"), b"2");
    assert!(!m.path("x").exists());
    let stats = m.fs.stats();
    assert_eq!(stats.file_syncs, 2);
    assert_eq!(stats.dir_syncs, 2);
    assert_eq!(stats.power_losses, 2);
}
