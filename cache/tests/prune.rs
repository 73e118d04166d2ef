//! The cargo prune helpers, through a real save.

use std::fs;
use std::path::Path;

use kiln_cache::{CacheKey, CacheKind, KeyInputs, LocalStore, Manifest, RestoreOptions, prune};

fn touch(root: &Path, rel: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, rel).unwrap();
}

/// Saves `root` with `selection`, restores it elsewhere, and lists the files restored.
fn saved_files(root: &Path, selection: &kiln_cache::Selection) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let key = CacheKey::compute(&KeyInputs {
        prefix: "prune".into(),
        scope: kiln_cache::Scope::default(),
        kind: CacheKind::Cargo,
        toolchains: vec![],
        project: tmp.path().to_path_buf(),
    })
    .unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    store.save(&key, root, selection).unwrap();
    let dst = tmp.path().join("dst");
    store
        .restore(&key, &dst, &RestoreOptions::default())
        .unwrap();
    let mut files = Vec::new();
    list(&dst, &dst, &mut files);
    files.sort();
    files
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for item in fs::read_dir(dir).unwrap() {
        let path = item.unwrap().path();
        if path.is_dir() {
            list(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
            );
        }
    }
}

#[test]
fn cargo_home_keeps_index_archives_and_git_db_only() {
    let home = tempfile::tempdir().unwrap();
    for rel in [
        "registry/index/index.crates.io-1949cf8c6b5b557f/.cache/se/rd/serde",
        "registry/cache/index.crates.io-1949cf8c6b5b557f/serde-1.0.0.crate",
        "registry/src/index.crates.io-1949cf8c6b5b557f/serde-1.0.0/src/lib.rs",
        "git/db/foo-0123456789abcdef/HEAD",
        "git/checkouts/foo-0123456789abcdef/abc/src/lib.rs",
        "bin/cargo-nextest",
        ".package-cache",
    ] {
        touch(home.path(), rel);
    }
    assert_eq!(
        saved_files(home.path(), &prune::cargo_home()),
        [
            "git/db/foo-0123456789abcdef/HEAD",
            "registry/cache/index.crates.io-1949cf8c6b5b557f/serde-1.0.0.crate",
            "registry/index/index.crates.io-1949cf8c6b5b557f/.cache/se/rd/serde",
        ]
    );
}

#[test]
fn cargo_target_drops_incremental_and_workspace_artifacts_in_every_profile() {
    let target = tempfile::tempdir().unwrap();
    for profile in ["debug", "wasm32-wasip2/release"] {
        for rel in [
            ".fingerprint/serde-0123456789abcdef/lib-serde",
            ".fingerprint/kiln-cache-0123456789abcdef/lib-kiln_cache",
            "build/kiln-0123456789abcdef/out/generated.rs",
            "build/serde-0123456789abcdef/out/private.rs",
            "deps/libserde-0123456789abcdef.rlib",
            "deps/libkiln_cache-0123456789abcdef.rlib",
            "deps/kiln-0123456789abcdef",
            "deps/kiln_cache-0123456789abcdef.d",
            "incremental/serde-xyz/s-abc/dep-graph.bin",
            "kiln",
            "kiln.d",
        ] {
            touch(target.path(), &format!("{profile}/{rel}"));
        }
    }
    touch(target.path(), "CACHEDIR.TAG");
    let selection = prune::cargo_target(target.path(), &["kiln", "kiln-cache"]).unwrap();
    let mut expected = vec!["CACHEDIR.TAG".to_owned()];
    for profile in ["debug", "wasm32-wasip2/release"] {
        for rel in [
            ".fingerprint/serde-0123456789abcdef/lib-serde",
            "build/serde-0123456789abcdef/out/private.rs",
            "deps/libserde-0123456789abcdef.rlib",
        ] {
            expected.push(format!("{profile}/{rel}"));
        }
    }
    expected.sort();
    assert_eq!(saved_files(target.path(), &selection), expected);
}

#[test]
fn manifest_is_versioned_json() {
    let src = tempfile::tempdir().unwrap();
    touch(src.path(), "a/b");
    let tmp = tempfile::tempdir().unwrap();
    let key = CacheKey::compute(&KeyInputs {
        prefix: "fmt".into(),
        scope: kiln_cache::Scope::default(),
        kind: CacheKind::Pip,
        toolchains: vec![],
        project: tmp.path().to_path_buf(),
    })
    .unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let report = store
        .save(&key, src.path(), &kiln_cache::Selection::all())
        .unwrap();
    let hex = report.manifest_digest.strip_prefix("sha256:").unwrap();
    let bytes = fs::read(tmp.path().join(format!("store/manifests/{hex}.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["entries"][1]["kind"], "file");
    assert_eq!(json["entries"][0]["kind"], "dir");
    let manifest = Manifest::from_slice("fmt", &bytes).unwrap();
    assert_eq!(manifest.key, key.to_string());
    assert_eq!(manifest.entries.len(), 2);
    assert_eq!(manifest.entries[1].path, "a/b");
    assert_eq!(manifest.entries[1].size, 3);
}
