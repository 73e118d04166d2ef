//! The local store on real files: round trips, incremental saves, fallback keys,
//! concurrent saves, and hostile or damaged caches.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_cache::archive::{self, Chunking, MANIFEST_VERSION};
use kiln_cache::{
    CacheKey, CacheKind, ChunkRef, Entry, EntryKind, Error, Hit, KeyInputs, LocalStore, Manifest,
    RestoreOptions, Scope, Selection,
};

/// A key whose lockfile holds `lock`; `toolchain` changes the restore prefix.
fn key(lock: &str, toolchain: &str) -> CacheKey {
    scoped_key(lock, toolchain, Scope::default())
}

fn scoped_key(lock: &str, toolchain: &str, scope: Scope) -> CacheKey {
    let project = tempfile::tempdir().unwrap();
    fs::write(project.path().join("Cargo.lock"), lock).unwrap();
    CacheKey::compute(&KeyInputs {
        prefix: "test".into(),
        scope,
        kind: CacheKind::Cargo,
        toolchains: vec![toolchain.into()],
        project: project.path().to_path_buf(),
    })
    .unwrap()
}

/// Deterministic incompressible bytes (xorshift64*).
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = (seed << 1) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[derive(Debug, PartialEq, Eq)]
enum Node {
    File {
        content: Vec<u8>,
        mode: u32,
        mtime: std::time::SystemTime,
    },
    Dir,
    Link(PathBuf),
}

/// Everything under `root`, by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for item in fs::read_dir(dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                out.insert(rel, Node::Link(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Node::Dir);
                go(root, &path, out);
            } else {
                use std::os::unix::fs::PermissionsExt;
                out.insert(
                    rel,
                    Node::File {
                        content: fs::read(&path).unwrap(),
                        mode: meta.permissions().mode() & 0o777,
                        mtime: meta.modified().unwrap(),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn sample_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("a/b/c/small.txt"), b"hello").unwrap();
    fs::write(root.join("a/big.bin"), random_bytes(5 << 20, 7)).unwrap();
    fs::write(root.join("a/b/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("a/b/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("b/c/small.txt", root.join("a/link")).unwrap();
}

#[test]
fn round_trip_keeps_content_modes_mtimes_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    sample_tree(&src);
    let store = LocalStore::new(tmp.path().join("store"));
    let k = key("1", "rustc 1.95.0");

    let saved = store.save(&k, &src, &Selection::all()).unwrap();
    assert_eq!((saved.files, saved.dirs, saved.symlinks), (4, 4, 1));
    assert_eq!(saved.chunks_reused, 0);
    assert!(saved.chunks_written >= 6, "{saved:?}"); // 5 MiB cut at ~1 MiB + 3 small files

    let restored = store.restore(&k, &dst, &RestoreOptions::default()).unwrap();
    assert_eq!(restored.hit, Hit::Exact);
    assert_eq!(restored.counts.files_restored, 4);
    assert_eq!(restored.counts.bytes_restored, saved.bytes_total);
    assert_eq!(snapshot(&src), snapshot(&dst));
    assert_eq!(fs::read(dst.join("a/link")).unwrap(), b"hello");
}

#[test]
fn second_save_writes_only_the_changed_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let mut big = random_bytes(8 << 20, 1);
    fs::write(src.join("big.bin"), &big).unwrap();
    for i in 0..10 {
        fs::write(src.join(format!("small-{i}")), random_bytes(1000, i + 10)).unwrap();
    }
    let store = LocalStore::new(tmp.path().join("store"));
    let first = store.save(&key("1", "t"), &src, &Selection::all()).unwrap();
    assert!(first.chunks_written >= 14, "{first:?}");

    // Insert 100 bytes at 1.5 MiB: fixed-size chunks would all shift after it.
    let at = 3 << 19;
    big.splice(at..at, random_bytes(100, 99));
    fs::write(src.join("big.bin"), &big).unwrap();
    let second = store.save(&key("2", "t"), &src, &Selection::all()).unwrap();
    assert!(
        (1..=2).contains(&second.chunks_written),
        "an insertion rewrote {} chunks: {second:?}",
        second.chunks_written
    );
    // Everything else (the small files, the big file's other chunks) was reused.
    assert!(
        second.chunks_reused >= first.chunks_written - 2,
        "{second:?}"
    );

    // Restoring the new key over the old content rewrites only the changed file.
    let dst = tmp.path().join("dst");
    store
        .restore(&key("1", "t"), &dst, &RestoreOptions::default())
        .unwrap();
    let again = store
        .restore(&key("2", "t"), &dst, &RestoreOptions::default())
        .unwrap();
    assert_eq!(
        (again.counts.files_restored, again.counts.files_unchanged),
        (1, 10)
    );
    assert_eq!(fs::read(dst.join("big.bin")).unwrap(), big);
}

#[test]
fn partial_hit_picks_the_newest_key_with_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    for (lock, toolchain) in [("old", "t"), ("new", "t"), ("other-toolchain", "u")] {
        fs::write(src.join("which"), lock).unwrap();
        store
            .save(&key(lock, toolchain), &src, &Selection::all())
            .unwrap();
    }

    let dst = tmp.path().join("dst");
    let wanted = key("unseen", "t");
    let report = store
        .restore(&wanted, &dst, &RestoreOptions::default())
        .unwrap();
    assert_eq!(report.hit, Hit::Partial);
    assert_eq!(report.restored_key, Some(key("new", "t").to_string()));
    assert_eq!(fs::read_to_string(dst.join("which")).unwrap(), "new");

    let exact = store
        .restore(&key("old", "t"), &dst, &RestoreOptions::default())
        .unwrap();
    assert_eq!(exact.hit, Hit::Exact);
    assert_eq!(fs::read_to_string(dst.join("which")).unwrap(), "old");

    let miss = store
        .restore(
            &key("x", "v"),
            &tmp.path().join("none"),
            &RestoreOptions::default(),
        )
        .unwrap();
    assert_eq!(miss.hit, Hit::Miss);
    assert!(!tmp.path().join("none").exists());
}

#[test]
fn a_pull_requests_save_is_never_restored_on_main_but_mains_is_on_the_pull_request() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let src = tmp.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let main = || Scope::new("refs/heads/main");
    let pr = || Scope::new("refs/pull/9").reading("refs/heads/main");

    // A pull request saves a poisoned cache under main's exact lockfile and a newer one.
    fs::write(src.join("which"), "poison").unwrap();
    for lock in ["same", "newer"] {
        store
            .save(&scoped_key(lock, "t", pr()), &src, &Selection::all())
            .unwrap();
    }
    for lock in ["same", "unseen"] {
        let report = store
            .restore(
                &scoped_key(lock, "t", main()),
                &tmp.path().join("main"),
                &RestoreOptions::default(),
            )
            .unwrap();
        assert_eq!(
            report.hit,
            Hit::Miss,
            "main restored {:?}",
            report.restored_key
        );
    }
    assert!(!tmp.path().join("main").exists());

    // Main's own save is what the pull request falls back to, exact before partial.
    fs::write(src.join("which"), "main").unwrap();
    store
        .save(&scoped_key("other", "t", main()), &src, &Selection::all())
        .unwrap();
    let report = store
        .restore(
            &scoped_key("other", "t", pr()),
            &tmp.path().join("pr"),
            &RestoreOptions::default(),
        )
        .unwrap();
    assert_eq!(report.hit, Hit::Exact);
    assert_eq!(
        report.restored_key,
        Some(scoped_key("other", "t", main()).to_string())
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("pr/which")).unwrap(),
        "main"
    );
    // Its own partial hit comes before main's.
    let report = store
        .restore(
            &scoped_key("unseen", "t", pr()),
            &tmp.path().join("pr2"),
            &RestoreOptions::default(),
        )
        .unwrap();
    assert_eq!(report.hit, Hit::Partial);
    assert_eq!(
        report.restored_key,
        Some(scoped_key("newer", "t", pr()).to_string())
    );
}

#[test]
fn concurrent_saves_of_one_key_leave_a_whole_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let k = key("1", "t");
    let trees: Vec<PathBuf> = (0..2u64)
        .map(|i| {
            let root = tmp.path().join(format!("src{i}"));
            fs::create_dir_all(root.join("d")).unwrap();
            fs::write(root.join("d/data"), random_bytes(3 << 20, i + 1)).unwrap();
            for j in 0..20 {
                fs::write(root.join(format!("f{j}")), format!("tree {i} file {j}")).unwrap();
            }
            root
        })
        .collect();
    // A first save, so the reader always finds the key.
    store.save(&k, &trees[0], &Selection::all()).unwrap();

    std::thread::scope(|scope| {
        for root in &trees {
            let (store, k) = (&store, &k);
            scope.spawn(move || {
                for _ in 0..5 {
                    store.save(k, root, &Selection::all()).unwrap();
                }
            });
        }
        let (store, k, tmp, trees) = (&store, &k, tmp.path(), &trees);
        scope.spawn(move || {
            for i in 0..10 {
                let dst = tmp.join(format!("reader{i}"));
                let report = store.restore(k, &dst, &RestoreOptions::default()).unwrap();
                assert_eq!(report.hit, Hit::Exact);
                let got = snapshot(&dst);
                assert!(
                    trees.iter().any(|t| same_content(&snapshot(t), &got)),
                    "restore {i} matches neither tree"
                );
            }
        });
    });

    let dst = tmp.path().join("final");
    store.restore(&k, &dst, &RestoreOptions::default()).unwrap();
    let got = snapshot(&dst);
    assert!(trees.iter().any(|t| same_content(&snapshot(t), &got)));
    // No temporary file was left in the store's refs or manifests.
    for dir in ["refs", "manifests"] {
        for item in fs::read_dir(tmp.path().join("store").join(dir)).unwrap() {
            let name = item.unwrap().file_name();
            assert!(!name.to_str().unwrap().starts_with('.'), "{name:?}");
        }
    }
}

fn same_content(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && match (va, vb) {
                    (Node::File { content: x, .. }, Node::File { content: y, .. }) => x == y,
                    (x, y) => x == y,
                }
        })
}

// ---- hostile and damaged caches ----

/// A temp dir holding `root` (the restore target), `outside` (with a sentinel file)
/// and `store`.
struct Arena {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    store: LocalStore,
}

impl Arena {
    fn new() -> Arena {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("outside/sentinel"), "untouched").unwrap();
        Arena {
            store: LocalStore::new(base.join("store")),
            _tmp: tmp,
            base,
        }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn outside(&self) -> PathBuf {
        self.base.join("outside")
    }

    /// Saves `entries` under a key and restores it into `root`.
    fn restore(&self, entries: Vec<Entry>) -> Result<kiln_cache::RestoreReport, Error> {
        self.restore_with(entries, &RestoreOptions::default())
    }

    fn restore_with(
        &self,
        entries: Vec<Entry>,
        options: &RestoreOptions,
    ) -> Result<kiln_cache::RestoreReport, Error> {
        let k = key("hostile", "t");
        self.store
            .put_manifest(&Manifest {
                schema_version: MANIFEST_VERSION,
                key: k.to_string(),
                chunking: Chunking::current(),
                compression: "zstd".into(),
                entries,
            })
            .unwrap();
        self.store.restore(&k, &self.root(), options)
    }

    /// Nothing but the sentinel outside the root, and nothing else beside root, store
    /// and outside.
    fn assert_nothing_outside(&self) {
        let names: Vec<_> = fs::read_dir(self.outside())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["sentinel"]);
        assert_eq!(
            fs::read_to_string(self.outside().join("sentinel")).unwrap(),
            "untouched"
        );
        for item in fs::read_dir(&self.base).unwrap() {
            let name = item.unwrap().file_name();
            assert!(
                ["root", "outside", "store"].contains(&name.to_str().unwrap()),
                "{name:?}"
            );
        }
    }

    /// The root holds nothing (validation happens before any write).
    fn assert_root_empty(&self) {
        if let Ok(listing) = fs::read_dir(self.root()) {
            assert_eq!(listing.count(), 0);
        }
    }
}

fn file(path: &str, content: &[u8], store: &LocalStore) -> Entry {
    let (chunk, _) = store.put_chunk(content).unwrap();
    Entry {
        path: path.into(),
        kind: EntryKind::File,
        mode: 0o644,
        size: content.len() as u64,
        mtime_ns: None,
        target: None,
        chunks: vec![chunk],
    }
}

fn entry(path: &str, kind: &str, target: Option<&str>) -> Entry {
    Entry {
        path: path.into(),
        kind: EntryKind::from(kind.to_owned()),
        mode: 0o644,
        size: 0,
        mtime_ns: None,
        target: target.map(Into::into),
        chunks: Vec::new(),
    }
}

#[test]
fn absolute_path_is_refused() {
    let arena = Arena::new();
    let evil = arena.outside().join("evil");
    let err = arena
        .restore(vec![file(evil.to_str().unwrap(), b"x", &arena.store)])
        .unwrap_err();
    assert!(matches!(err, Error::AbsolutePath { .. }), "{err:?}");
    assert!(err.is_corrupt_cache());
    arena.assert_nothing_outside();
    arena.assert_root_empty();
}

#[test]
fn parent_component_is_refused() {
    let arena = Arena::new();
    let err = arena
        .restore(vec![
            file("ok.txt", b"fine", &arena.store),
            file("a/../../outside/evil", b"x", &arena.store),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::ParentComponent { .. }), "{err:?}");
    arena.assert_nothing_outside();
    arena.assert_root_empty();
}

#[test]
fn escaping_symlinks_are_refused() {
    for (path, target) in [
        ("link", "../outside"),
        ("d/link", "../../outside/sentinel"),
        ("link", "/etc/passwd"),
        // `up -> ..` is fine on its own; going through it climbs out of the root.
        ("s", "d/up/../outside"),
    ] {
        let arena = Arena::new();
        let err = arena
            .restore(vec![
                entry("d", "dir", None),
                entry("d/up", "symlink", Some("..")),
                entry(path, "symlink", Some(target)),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, Error::SymlinkEscapes { target: t, .. } if t == target),
            "{path} -> {target}: {err:?}"
        );
        arena.assert_nothing_outside();
        arena.assert_root_empty();
    }
}

#[test]
fn symlink_already_on_disk_is_never_followed() {
    let arena = Arena::new();
    fs::create_dir_all(arena.root()).unwrap();
    std::os::unix::fs::symlink(arena.outside(), arena.root().join("evil")).unwrap();
    let err = arena
        .restore(vec![file("evil/payload", b"x", &arena.store)])
        .unwrap_err();
    assert!(
        matches!(&err, Error::SymlinkInPath { symlink, .. } if symlink == "evil"),
        "{err:?}"
    );
    arena.assert_nothing_outside();

    // The same trick inside one manifest: a link entry, then a file under it.
    let arena = Arena::new();
    fs::create_dir_all(arena.root().join("inner")).unwrap();
    let err = arena
        .restore(vec![
            entry("a", "symlink", Some("inner")),
            file("a/payload", b"x", &arena.store),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::SymlinkInPath { .. }), "{err:?}");
    assert!(!arena.root().join("inner/payload").exists());
    arena.assert_nothing_outside();
}

#[test]
fn devices_fifos_and_hardlinks_are_refused() {
    for kind in ["char-device", "block-device", "fifo", "hardlink", "socket"] {
        let arena = Arena::new();
        let err = arena.restore(vec![entry("dev", kind, None)]).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedEntry { kind: k, .. } if k == kind),
            "{kind}: {err:?}"
        );
        arena.assert_nothing_outside();
        arena.assert_root_empty();
    }
}

#[test]
fn decompression_bomb_stops_at_the_declared_size() {
    let arena = Arena::new();
    // 64 MiB of zeros compresses to a few KiB; the manifest claims 1000 bytes.
    let claimed = vec![0u8; 1000];
    let chunk = ChunkRef {
        digest: archive::digest(&claimed),
        size: 1000,
    };
    let path = arena.store.chunk_path(&chunk.digest).unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, archive::compress(&vec![0u8; 64 << 20]).unwrap()).unwrap();
    let mut bomb = entry("bomb", "file", None);
    bomb.size = 1000;
    bomb.chunks = vec![chunk];
    let err = arena.restore(vec![bomb]).unwrap_err();
    assert!(
        matches!(err, Error::ChunkTooLarge { declared: 1000, .. }),
        "{err:?}"
    );
    assert!(!arena.root().join("bomb").exists());
    assert_eq!(
        fs::read_dir(arena.root()).unwrap().count(),
        0,
        "temp file left"
    );
    arena.assert_nothing_outside();
}

#[test]
fn total_size_above_the_limit_is_refused_before_writing() {
    let arena = Arena::new();
    let entries = vec![
        file("a", &random_bytes(600_000, 1), &arena.store),
        file("b", &random_bytes(600_000, 2), &arena.store),
    ];
    let err = arena
        .restore_with(
            entries,
            &RestoreOptions {
                max_total_bytes: 1 << 20,
                ..RestoreOptions::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                total: 1_200_000,
                limit: 1_048_576
            }
        ),
        "{err:?}"
    );
    arena.assert_root_empty();
}

#[test]
fn more_entries_than_the_limit_are_refused_before_writing() {
    let arena = Arena::new();
    let entries = (0..11)
        .map(|i| file(&format!("f{i}"), b"x", &arena.store))
        .collect();
    let err = arena
        .restore_with(
            entries,
            &RestoreOptions {
                max_entries: 10,
                ..RestoreOptions::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyEntries {
                count: 11,
                limit: 10
            }
        ),
        "{err:?}"
    );
    assert!(err.is_corrupt_cache());
    arena.assert_root_empty();
}

/// Saves a small tree and returns the store, key and the path of its one chunk.
fn saved_one_chunk(arena: &Arena) -> (CacheKey, PathBuf) {
    let src = arena.base.join("src");
    fs::create_dir_all(&src).unwrap();
    let content = random_bytes(100_000, 3);
    fs::write(src.join("data"), &content).unwrap();
    let k = key("damaged", "t");
    arena.store.save(&k, &src, &Selection::all()).unwrap();
    fs::remove_dir_all(&src).unwrap();
    (
        k,
        arena.store.chunk_path(&archive::digest(&content)).unwrap(),
    )
}

#[test]
fn corrupt_chunk_is_reported_by_digest() {
    let arena = Arena::new();
    let (k, chunk) = saved_one_chunk(&arena);
    // Valid zstd of other bytes of the same size: only the digest can tell.
    fs::write(
        &chunk,
        archive::compress(&random_bytes(100_000, 4)).unwrap(),
    )
    .unwrap();
    let err = arena
        .store
        .restore(&k, &arena.root(), &RestoreOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::ChunkDigest { .. }), "{err:?}");
    assert!(err.is_corrupt_cache());
    assert_eq!(fs::read_dir(arena.root()).unwrap().count(), 0);
    // The damaged chunk is dropped, so the next save writes it again.
    assert!(!chunk.exists());
    arena.assert_nothing_outside();
}

#[test]
fn truncated_chunk_is_reported() {
    let arena = Arena::new();
    let (k, chunk) = saved_one_chunk(&arena);
    let stored = fs::read(&chunk).unwrap();
    fs::write(&chunk, &stored[..stored.len() / 2]).unwrap();
    let err = arena
        .store
        .restore(&k, &arena.root(), &RestoreOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChunkDecode { .. } | Error::ChunkTruncated { .. }
        ),
        "{err:?}"
    );
    assert_eq!(fs::read_dir(arena.root()).unwrap().count(), 0);
}

#[test]
fn truncated_manifest_is_reported_by_digest() {
    let arena = Arena::new();
    let (k, _) = saved_one_chunk(&arena);
    let manifests = arena.base.join("store/manifests");
    let manifest = fs::read_dir(&manifests)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = fs::read(&manifest).unwrap();
    fs::write(&manifest, &bytes[..bytes.len() - 10]).unwrap();
    let err = arena
        .store
        .restore(&k, &arena.root(), &RestoreOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::ManifestDigest { .. }), "{err:?}");
    assert!(err.is_corrupt_cache());
    arena.assert_root_empty();
}

#[test]
fn newer_manifest_version_is_named() {
    let arena = Arena::new();
    let k = key("future", "t");
    let bytes = br#"{"schema_version": 2, "whatever": []}"#;
    let digest = archive::digest(bytes);
    let hex = archive::digest_hex(&digest).unwrap();
    let store = arena.base.join("store");
    fs::create_dir_all(store.join("manifests")).unwrap();
    fs::create_dir_all(store.join("refs")).unwrap();
    fs::write(store.join(format!("manifests/{hex}.json")), bytes).unwrap();
    fs::write(
        store.join(format!("refs/{k}.json")),
        format!(r#"{{"manifest":"{digest}","saved_at_ns":1}}"#),
    )
    .unwrap();
    let err = arena
        .store
        .restore(&k, &arena.root(), &RestoreOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::ManifestVersion { version: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn duplicates_oversized_chunks_and_entries_under_files_are_refused() {
    let arena = Arena::new();
    let err = arena
        .restore(vec![
            file("a", b"one", &arena.store),
            file("a", b"two", &arena.store),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateEntry { .. }), "{err:?}");
    arena.assert_root_empty();

    let arena = Arena::new();
    let err = arena
        .restore(vec![
            file("f", b"file", &arena.store),
            file("f/under", b"x", &arena.store),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
    arena.assert_root_empty();

    // A chunk declared larger than any chunk a save cuts: refused before any read.
    let arena = Arena::new();
    let mut huge = file("huge", b"x", &arena.store);
    huge.chunks[0].size = (archive::CHUNK_MAX as u64) + 1;
    huge.size = huge.chunks[0].size;
    let err = arena.restore(vec![huge]).unwrap_err();
    assert!(matches!(err, Error::ChunkTooLarge { .. }), "{err:?}");
    arena.assert_root_empty();
    arena.assert_nothing_outside();
}
