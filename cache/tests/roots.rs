//! Caches of several directories through the generic [`kiln_cache::save`] and
//! [`kiln_cache::restore`]: naming, change detection, and what a save leaves out.

use std::fs;
use std::path::Path;

use kiln_cache::{
    CacheKey, CacheKind, Hit, KeyInputs, LocalStore, RestoreOptions, Root, Selection, Store, prune,
};

fn key(lock: &str) -> CacheKey {
    let project = tempfile::tempdir().unwrap();
    fs::write(project.path().join("Cargo.lock"), lock).unwrap();
    CacheKey::compute(&KeyInputs {
        prefix: "roots".into(),
        scope: kiln_cache::Scope::default(),
        kind: CacheKind::Cargo,
        toolchains: vec!["t".into()],
        project: project.path().to_path_buf(),
    })
    .unwrap()
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn two_roots_restore_into_their_own_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, target) = (tmp.path().join("home"), tmp.path().join("target"));
    write(&home.join("registry/cache/a.crate"), "crate");
    write(&target.join("release/deps/liba.rlib"), "rlib");
    let store = LocalStore::new(tmp.path().join("store"));
    let roots = [
        Root::new("cargo-home", &home, Selection::all()),
        Root::new("target", &target, Selection::all()),
        // A root that does not exist is skipped, not an error.
        Root::new("absent", tmp.path().join("nowhere"), Selection::all()),
    ];
    let saved = kiln_cache::save(&store, &key("1"), &roots, None).unwrap();
    assert_eq!(saved.files, 2);
    let manifest = store.get_manifest(&key("1").to_string()).unwrap().unwrap();
    let paths: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"cargo-home/registry/cache/a.crate"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"target/release/deps/liba.rlib"),
        "{paths:?}"
    );

    let (home2, target2) = (tmp.path().join("home2"), tmp.path().join("target2"));
    let back = [
        Root::new("cargo-home", &home2, Selection::all()),
        Root::new("target", &target2, Selection::all()),
    ];
    let report = kiln_cache::restore(&store, &key("1"), &back, &RestoreOptions::default()).unwrap();
    assert_eq!(report.hit, Hit::Exact);
    assert_eq!(report.counts.files_restored, 2);
    assert_eq!(
        fs::read_to_string(home2.join("registry/cache/a.crate")).unwrap(),
        "crate"
    );
    assert_eq!(
        fs::read_to_string(target2.join("release/deps/liba.rlib")).unwrap(),
        "rlib"
    );

    // Restoring only one root leaves the other alone.
    let only = [Root::new(
        "target",
        tmp.path().join("target3"),
        Selection::all(),
    )];
    kiln_cache::restore(&store, &key("1"), &only, &RestoreOptions::default()).unwrap();
    assert!(tmp.path().join("target3/release/deps/liba.rlib").is_file());
}

#[test]
fn unchanged_files_are_not_read_and_an_unchanged_cache_is_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a"), "alpha");
    write(&src.join("b"), "beta");
    let store = LocalStore::new(tmp.path().join("store"));
    let roots = [Root::new("r", &src, Selection::all())];
    kiln_cache::save(&store, &key("1"), &roots, None).unwrap();
    let restored = kiln_cache::restore(&store, &key("1"), &roots, &RestoreOptions::default())
        .unwrap()
        .manifest
        .unwrap();

    let again = kiln_cache::save(&store, &key("1"), &roots, Some(&restored)).unwrap();
    assert!(again.unchanged, "{again:?}");
    assert_eq!(again.chunks_written, 0);

    // A file whose size and mtime match is taken from the manifest, not read: make it
    // unreadable to prove it.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(src.join("a")).is_err() {
        write(&src.join("b"), "beta, changed");
        let changed = kiln_cache::save(&store, &key("1"), &roots, Some(&restored)).unwrap();
        assert!(!changed.unchanged);
        assert_eq!(changed.chunks_written, 1, "{changed:?}");
    }
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o644)).unwrap();

    // Under another key, an unchanged cache is still saved (the next run hits exactly).
    let other = kiln_cache::save(&store, &key("2"), &roots, Some(&restored)).unwrap();
    assert!(!other.unchanged);
    assert!(store.get_manifest(&key("2").to_string()).unwrap().is_some());
}

#[test]
fn links_out_of_a_root_are_left_out_of_a_save() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("venv/lib/site.py"), "x");
    std::os::unix::fs::symlink("/usr/bin/python3", src.join("venv/python")).unwrap();
    std::os::unix::fs::symlink("../../outside", src.join("venv/up")).unwrap();
    std::os::unix::fs::symlink("lib/site.py", src.join("venv/inside")).unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let roots = [Root::new("r", &src, Selection::all())];
    let saved = kiln_cache::save(&store, &key("1"), &roots, None).unwrap();
    assert_eq!((saved.symlinks, saved.skipped), (1, 2), "{saved:?}");
    // So the rest restores.
    let dst = [Root::new("r", tmp.path().join("dst"), Selection::all())];
    kiln_cache::restore(&store, &key("1"), &dst, &RestoreOptions::default()).unwrap();
    assert_eq!(
        fs::read_to_string(tmp.path().join("dst/venv/inside")).unwrap(),
        "x"
    );
}

#[test]
fn a_manifest_under_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a"), "a");
    let store = LocalStore::new(tmp.path().join("store"));
    kiln_cache::save(
        &store,
        &key("1"),
        &[Root::new("", &src, Selection::all())],
        None,
    )
    .unwrap();
    // Point key 2's ref at key 1's manifest.
    let refs = tmp.path().join("store/refs");
    fs::copy(
        refs.join(format!("{}.json", key("1"))),
        refs.join(format!("{}.json", key("2"))),
    )
    .unwrap();
    let err = kiln_cache::restore(
        &store,
        &key("2"),
        &[Root::new("", tmp.path().join("dst"), Selection::all())],
        &RestoreOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, kiln_cache::Error::ManifestKey { .. }),
        "{err:?}"
    );
}

#[test]
fn cargo_home_keeps_only_what_the_lockfile_names() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let reg = "index.crates.io-1949cf8c6b5b557f";
    for rel in [
        format!("registry/index/{reg}/config.json"),
        format!("registry/index/{reg}/.cache/se/rd/serde"),
        format!("registry/index/{reg}/.cache/ra/nd/rand"),
        format!("registry/index/{reg}/.cache/3/l/log"),
        format!("registry/cache/{reg}/serde-1.0.0.crate"),
        format!("registry/cache/{reg}/serde-0.9.0.crate"),
        format!("registry/cache/{reg}/log-0.4.0.crate"),
        format!("registry/cache/{reg}/rand-0.8.0.crate"),
        format!("registry/src/{reg}/serde-1.0.0/src/lib.rs"),
        "git/db/dep-0123/HEAD".to_string(),
        "git/db/dep-0123/objects/pack/p.pack".to_string(),
        "git/db/dep-0123/config".to_string(),
        "git/db/dep-0123/hooks/post-checkout".to_string(),
    ] {
        write(&home.join(rel), "x");
    }
    let lock_path = tmp.path().join("Cargo.lock");
    fs::write(
        &lock_path,
        r#"version = 4
[[package]]
name = "app"
version = "0.1.0"
[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
[[package]]
name = "log"
version = "0.4.0"
source = "sparse+https://index.crates.io/"
[[package]]
name = "dep"
version = "0.1.0"
source = "git+file:///dep#0123"
"#,
    )
    .unwrap();
    let lock = prune::CargoLock::read(&lock_path).unwrap();
    assert_eq!(lock.local, ["app"]);
    assert!(prune::downloads_complete(&home, &lock));
    let selection = prune::cargo_home_for(&home, &lock).unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let saved =
        kiln_cache::save(&store, &key("1"), &[Root::new("", &home, selection)], None).unwrap();
    let manifest = store.get_manifest(&saved.key).unwrap().unwrap();
    let mut files: Vec<String> = manifest
        .entries
        .iter()
        .filter(|e| e.kind == kiln_cache::EntryKind::File)
        .map(|e| e.path.replace(reg, "R"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "git/db/dep-0123/HEAD",
            "git/db/dep-0123/objects/pack/p.pack",
            "registry/cache/R/log-0.4.0.crate",
            "registry/cache/R/serde-1.0.0.crate",
            "registry/index/R/.cache/3/l/log",
            "registry/index/R/.cache/se/rd/serde",
            "registry/index/R/config.json",
        ]
    );
    fs::remove_file(home.join(format!("registry/cache/{reg}/log-0.4.0.crate"))).unwrap();
    assert!(!prune::downloads_complete(&home, &lock));
}

#[test]
fn target_drops_crates_no_longer_in_the_lockfile() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    for rel in [
        "wasm32-wasip1/release/.fingerprint/serde-0123456789abcdef/lib-serde",
        "wasm32-wasip1/release/.fingerprint/rand-0123456789abcdef/lib-rand",
        "wasm32-wasip1/release/deps/libserde-0123456789abcdef.rlib",
        "wasm32-wasip1/release/deps/librand-0123456789abcdef.rlib",
        "wasm32-wasip1/release/deps/app-0123456789abcdef.wasm",
        "wasm32-wasip1/release/app.wasm",
        "wasm32-wasip1/release/.cargo-lock",
        "release/.fingerprint/serde-0123456789abcdef/build-script",
        "release/build/serde-0123456789abcdef/build-script-build",
        "release/build/rand-0123456789abcdef/build-script-build",
    ] {
        write(&target.join(rel), "x");
    }
    let selection = prune::cargo_target_with(&target, &["app"], Some(&["serde"])).unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let saved = kiln_cache::save(
        &store,
        &key("1"),
        &[Root::new("", &target, selection)],
        None,
    )
    .unwrap();
    let manifest = store.get_manifest(&saved.key).unwrap().unwrap();
    let mut files: Vec<&str> = manifest
        .entries
        .iter()
        .filter(|e| e.kind == kiln_cache::EntryKind::File)
        .map(|e| e.path.as_str())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "release/.fingerprint/serde-0123456789abcdef/build-script",
            "release/build/serde-0123456789abcdef/build-script-build",
            "wasm32-wasip1/release/.cargo-lock",
            "wasm32-wasip1/release/.fingerprint/serde-0123456789abcdef/lib-serde",
            "wasm32-wasip1/release/deps/libserde-0123456789abcdef.rlib",
        ]
    );
}

/// A cache someone else wrote (a pull request's pipeline, a fork) holding what kiln never
/// saves: cargo's `bin/cargo` (which kiln runs next), a `config.toml` with a
/// `rustc-wrapper`, and kiln's own componentize-py. A restore admits only cargo's
/// downloads, says what it left out, and restores no root it was not asked for.
#[test]
fn a_poisoned_cache_restores_only_what_a_save_would_take() {
    let tmp = tempfile::tempdir().unwrap();
    let (home, tools) = (tmp.path().join("home"), tmp.path().join("tools"));
    write(
        &home.join("registry/cache/index.crates.io-1/a-1.0.0.crate"),
        "crate",
    );
    write(&home.join("bin/cargo"), "#!/bin/sh\necho pwned\n");
    write(&home.join("git/db/dep-1/HEAD"), "ref: refs/heads/main\n");
    write(
        &home.join("git/db/dep-1/config"),
        "[core]\n\tsshCommand = /tmp/x\n",
    );
    write(&home.join("git/db/dep-1/hooks/post-checkout"), "pwned");
    write(
        &home.join("config.toml"),
        "[build]\nrustc-wrapper = \"/tmp/x\"\n",
    );
    write(
        &tools.join("componentize-py-0.25.1/bin/componentize-py"),
        "pwned",
    );
    let store = LocalStore::new(tmp.path().join("store"));
    // The attacker saves everything.
    let poisoned = [
        Root::new("cargo-home", &home, Selection::all()),
        Root::new("tools", &tools, Selection::all()),
    ];
    kiln_cache::save(&store, &key("1"), &poisoned, None).unwrap();

    // The trusted build restores cargo's home the way kiln does.
    let home2 = tmp.path().join("home2");
    let ours = [Root::new(
        "cargo-home",
        &home2,
        prune::cargo_home_for(&home2, &Default::default()).unwrap(),
    )
    .admitting(prune::cargo_home())];
    let report = kiln_cache::restore(&store, &key("1"), &ours, &RestoreOptions::default()).unwrap();
    assert_eq!(report.hit, Hit::Exact);
    assert!(
        home2
            .join("registry/cache/index.crates.io-1/a-1.0.0.crate")
            .is_file()
    );
    assert!(!home2.join("bin").exists());
    assert!(home2.join("git/db/dep-1/HEAD").is_file());
    assert!(!home2.join("git/db/dep-1/config").exists());
    assert!(!home2.join("git/db/dep-1/hooks").exists());
    assert!(!home2.join("config.toml").exists());
    assert!(!tmp.path().join("tools2").exists());
    let mut refused = report.refused.clone();
    refused.sort();
    assert_eq!(
        refused,
        [
            "cargo-home/bin",
            "cargo-home/bin/cargo",
            "cargo-home/config.toml",
            "cargo-home/git/db/dep-1/config",
            "cargo-home/git/db/dep-1/hooks",
            "cargo-home/git/db/dep-1/hooks/post-checkout",
        ]
    );
}

/// The save time of a cache is its writer's claim: one in the future does not win every
/// partial hit from then on.
#[test]
fn a_save_time_in_the_future_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::new(tmp.path().join("store"));
    let (honest, liar) = (tmp.path().join("honest"), tmp.path().join("liar"));
    write(&honest.join("f"), "honest");
    write(&liar.join("f"), "liar");
    kiln_cache::save(
        &store,
        &key("1"),
        &[Root::new("", &honest, Selection::all())],
        None,
    )
    .unwrap();
    kiln_cache::save(
        &store,
        &key("2"),
        &[Root::new("", &liar, Selection::all())],
        None,
    )
    .unwrap();
    // Key 2's ref claims to be saved in the year 2500.
    let reference = tmp.path().join(format!("store/refs/{}.json", key("2")));
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(&reference).unwrap()).unwrap();
    let field = json
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.contains("saved"))
        .cloned()
        .expect("the ref records when it was saved");
    json[&field] = serde_json::json!(16_725_225_600_000_000_000u64);
    fs::write(&reference, serde_json::to_vec(&json).unwrap()).unwrap();

    let dst = tmp.path().join("dst");
    let report = kiln_cache::restore(
        &store,
        &key("3"),
        &[Root::new("", &dst, Selection::all())],
        &RestoreOptions::default(),
    )
    .unwrap();
    assert_eq!(report.hit, Hit::Partial);
    assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "honest");
}
