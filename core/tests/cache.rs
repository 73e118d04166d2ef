//! Persisted caches through the real `kiln` binary: real cargo and pip caches from real
//! builds, a local directory store and a real registry, and every way a cache can fail
//! (corrupt, unreachable) ending in a build that still succeeds.
//!
//! Each test has its own KILN_HOME, CARGO_HOME and target directory: what a second
//! build finds must come from the cache, not from the first build's leftovers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{Mode, Registry};
use common::{TestContext, assert_success, stderr};

/// A context whose kiln, cargo and pip state live in its own temp dir.
struct Isolated {
    ctx: TestContext,
}

impl Isolated {
    fn new() -> Isolated {
        Isolated {
            ctx: TestContext::new(),
        }
    }

    fn home(&self) -> PathBuf {
        self.ctx.path().join("kiln-home")
    }

    fn cargo_home(&self) -> PathBuf {
        self.ctx.path().join("cargo-home")
    }

    fn target(&self) -> PathBuf {
        self.ctx.path().join("target")
    }

    fn kiln(&self) -> Command {
        let mut cmd = self.ctx.kiln();
        cmd.env("KILN_HOME", self.home())
            .env("CARGO_HOME", self.cargo_home())
            .env("CARGO_TARGET_DIR", self.target())
            .env_remove("KILN_NO_CACHE")
            .env_remove("PIP_CACHE_DIR")
            .env_remove("CARGO_NET_OFFLINE");
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.kiln();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `kiln build PROJECT --output json ARGS`, which must succeed.
    fn build(
        &self,
        project: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (serde_json::Value, String) {
        let mut all = vec!["build", project.to_str().unwrap(), "--output", "json", "-v"];
        all.extend_from_slice(args);
        let out = self.run(&all, env);
        assert_success(&out);
        (
            serde_json::from_slice(&out.stdout).expect("summary JSON on stdout"),
            stderr(&out),
        )
    }

    /// Forgets everything a build left outside the cache store.
    fn wipe_outside_the_store(&self, project: &Path) {
        for dir in [self.cargo_home(), self.target(), project.join(".kiln")] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// A Rust project with no dependencies: builds in seconds.
    fn tiny_rust(&self) -> PathBuf {
        let dir = self.ctx.path().join("tiny");
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"tiny\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("src/main.rs"),
            "fn main() { println!(\"tiny\"); }\n",
        )
        .unwrap();
        dir
    }
}

fn cache_kind(summary: &serde_json::Value) -> &serde_json::Value {
    let kinds = summary["cache"]["kinds"]
        .as_array()
        .expect("a cache section");
    assert_eq!(kinds.len(), 1, "{summary:#}");
    &kinds[0]
}

/// The second build, from a wiped CARGO_HOME and target directory with the network
/// off, restores everything and compiles only the project itself.
#[test]
fn cargo_cache_in_a_directory_makes_the_second_build_offline() {
    let iso = Isolated::new();
    let project = iso.ctx.fixture("rust-bin");

    let (first, _) = iso.build(&project, &[], &[]);
    let kind = cache_kind(&first);
    assert_eq!(kind["kind"], "cargo");
    assert_eq!(kind["hit"], "miss");
    assert_eq!(kind["saved"], true, "{kind:#}");
    assert!(kind["chunks_uploaded"].as_u64().unwrap() > 10, "{kind:#}");
    assert_eq!(
        first["cache"]["store"],
        iso.home().join("cache").to_str().unwrap()
    );
    let key = kind["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("local.") && key.contains("-kiln-cargo-"),
        "{key}"
    );
    assert_eq!(first["cache"]["scope"], "local");

    iso.wipe_outside_the_store(&project);
    let (second, log) = iso.build(&project, &[], &[("CARGO_NET_OFFLINE", "true")]);
    let kind = cache_kind(&second);
    assert_eq!(kind["hit"], "exact", "{kind:#}");
    assert_eq!(kind["restored_key"], key.as_str());
    assert!(
        kind["bytes_restored"].as_u64().unwrap() > 1_000_000,
        "{kind:#}"
    );
    // Nothing downloaded, no dependency compiled again: only the project itself.
    for line in log.lines() {
        assert!(
            !line.contains("Downloaded") && !line.contains("Updating"),
            "the second build went to the network: {line}\n{log}"
        );
        if line.trim_start().starts_with("Compiling ") && !line.contains("`rust-bin`") {
            assert!(
                line.contains("rust-bin v"),
                "a dependency was rebuilt: {line}\n{log}"
            );
        }
    }
    // Nothing changed since the restore: nothing written.
    assert_eq!(kind["saved"], false);
    assert_eq!(kind["save_skipped"], "unchanged since the restore");
    assert!(second["cache"]["warnings"].as_array().unwrap().is_empty());
    let stages: Vec<&str> = second["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages.first(), Some(&"detect"));
    assert_eq!(stages.get(1), Some(&"restore"));
    assert_eq!(&stages[stages.len() - 2..], ["save", "summary"]);

    // A changed manifest is a new key: the old one is a partial hit.
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# changed\n")).unwrap();
    let (third, _) = iso.build(&project, &["--force"], &[("CARGO_NET_OFFLINE", "true")]);
    let kind = cache_kind(&third);
    assert_eq!(kind["hit"], "partial", "{kind:#}");
    assert_eq!(kind["restored_key"], key.as_str());
    assert_ne!(kind["key"], key.as_str());
    // Saved under the new key, and no chunk is new.
    assert_eq!(kind["saved"], true, "{kind:#}");
    assert_eq!(kind["chunks_uploaded"], 0, "{kind:#}");
}

/// The registry store: a round trip through a real registry, then a save after one
/// file changed uploads only that file's changed chunks.
#[test]
fn cargo_cache_in_a_registry_round_trips_and_uploads_only_changed_chunks() {
    let registry = Registry::start(Mode::Plain);
    let iso = Isolated::new();
    let project = iso.ctx.fixture("rust-bin");
    let cache = format!("{}/ci/cache", registry.host());
    let flags = ["--cache", &cache, "--insecure-registry", &registry.host()];

    let (first, _) = iso.build(&project, &flags, &[]);
    let kind = cache_kind(&first);
    assert_eq!(kind["saved"], true, "{kind:#}");
    let key = kind["key"].as_str().unwrap().to_owned();
    assert!(registry.tag_exists("ci/cache", &key), "no tag {key}");
    let uploaded = kind["chunks_uploaded"].as_u64().unwrap();
    assert!(uploaded > 10, "{kind:#}");

    // A fresh machine: no local chunks either.
    iso.wipe_outside_the_store(&project);
    let _ = std::fs::remove_dir_all(iso.home().join("cache"));
    let (second, log) = iso.build(&project, &flags, &[("CARGO_NET_OFFLINE", "true")]);
    let kind = cache_kind(&second);
    assert_eq!(kind["hit"], "exact", "{kind:#}\n{log}");
    assert!(!log.contains("Downloaded"), "{log}");
    assert_eq!(kind["saved"], false);
    // The chunks came down once and are kept locally.
    assert!(iso.home().join("cache/chunks").is_dir());

    // One file changes: a save uploads only its changed chunks.
    let rlib = largest_file(&iso.target().join("wasm32-wasip1/release/deps"), ".rlib");
    let mut bytes = std::fs::read(&rlib).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&rlib, &bytes).unwrap();
    let out = iso.run(
        &[
            "cache",
            "save",
            project.to_str().unwrap(),
            "--cache",
            &cache,
            "--insecure-registry",
            &registry.host(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_success(&out);
    let saved: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kind = &saved["kinds"][0];
    assert_eq!(kind["saved"], true, "{saved:#}");
    let chunks = kind["chunks_uploaded"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&chunks),
        "one changed file uploaded {chunks} chunks: {saved:#}"
    );
    assert!(
        kind["bytes_uploaded"].as_u64().unwrap() * 10 < kind["bytes_saved"].as_u64().unwrap(),
        "{saved:#}"
    );

    // Another lockfile: the registry's tags are listed and the newest cache sharing the
    // restore prefix comes back (a partial hit), on a machine with nothing.
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n# changed\n")).unwrap();
    iso.wipe_outside_the_store(&project);
    let _ = std::fs::remove_dir_all(iso.home().join("cache"));
    let out = iso.run(
        &[
            "cache",
            "restore",
            project.to_str().unwrap(),
            "--cache",
            &cache,
            "--insecure-registry",
            &registry.host(),
            "--output",
            "json",
        ],
        &[],
    );
    assert_success(&out);
    let restored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kind = &restored["kinds"][0];
    assert_eq!(kind["hit"], "partial", "{restored:#}");
    assert_eq!(kind["restored_key"], key.as_str());
    assert!(iso.cargo_home().join("registry/cache").is_dir());

    // A build in one process restores (partial hit) and then saves under the new key,
    // reusing the restored chunks that did not change.
    iso.wipe_outside_the_store(&project);
    let (built, log) = iso.build(&project, &flags, &[("CARGO_NET_OFFLINE", "true")]);
    let kind = cache_kind(&built);
    assert_eq!(kind["hit"], "partial", "{kind:#}\n{log}");
    assert_eq!(kind["saved"], true, "{kind:#}\n{log}");
    assert!(
        built["cache"]["warnings"].as_array().unwrap().is_empty(),
        "{:#}",
        built["cache"]
    );
    let new_key = kind["key"].as_str().unwrap();
    assert_ne!(new_key, key);
    assert!(registry.tag_exists("ci/cache", new_key), "no tag {new_key}");
}

fn largest_file(dir: &Path, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a file to change")
}

/// Every chunk of the saved cache is damaged: the restore warns, the build goes on
/// cold and succeeds, and the save writes a good cache again.
#[test]
fn corrupt_chunks_warn_and_the_build_goes_on_cold() {
    let iso = Isolated::new();
    let project = iso.tiny_rust();
    let (first, _) = iso.build(&project, &[], &[]);
    assert_eq!(cache_kind(&first)["saved"], true, "{first:#}");

    let mut damaged = 0;
    for file in walk_files(&iso.home().join("cache/chunks")) {
        // Valid zstd of other bytes: only the digest can tell.
        let other = zstd_of(b"not the chunk you are looking for");
        std::fs::write(&file, other).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0);
    iso.wipe_outside_the_store(&project);

    let (second, log) = iso.build(&project, &[], &[]);
    let kind = cache_kind(&second);
    assert_eq!(kind["hit"], "miss", "{kind:#}");
    let warnings = second["cache"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{second:#}");
    assert!(
        warnings[0].as_str().unwrap().contains("Chunk `sha256:"),
        "{warnings:?}"
    );
    assert!(
        log.contains("warning: cache: failed to restore the cargo cache"),
        "{log}"
    );
    assert_eq!(kind["saved"], true, "{kind:#}");

    // The next restore is clean again.
    iso.wipe_outside_the_store(&project);
    let (third, _) = iso.build(&project, &[], &[]);
    assert_eq!(cache_kind(&third)["hit"], "exact", "{third:#}");
    assert!(third["cache"]["warnings"].as_array().unwrap().is_empty());
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A zstd frame of `data` (from the `zstd` command, as another tool would write it).
fn zstd_of(data: &[u8]) -> Vec<u8> {
    let out = common::output_with_stdin(
        Command::new(common::require_tool("zstd")).args(["-q", "-c"]),
        std::str::from_utf8(data).unwrap(),
    );
    assert!(out.status.success());
    out.stdout
}

/// A registry on a closed port: both the restore and the save warn; the build
/// succeeds.
#[test]
fn unreachable_registry_warns_and_the_build_succeeds() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    let iso = Isolated::new();
    let project = iso.tiny_rust();
    let cache = format!("{host}/ci/cache");
    let (summary, log) = iso.build(
        &project,
        &[
            "--cache",
            &cache,
            "--insecure-registry",
            &host,
            "--registry-retries",
            "0",
        ],
        &[],
    );
    let kind = cache_kind(&summary);
    assert_eq!(kind["hit"], "miss");
    assert_eq!(kind["saved"], false);
    let warnings = summary["cache"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{summary:#}");
    assert!(log.contains("warning: cache:"), "{log}");
    assert!(log.contains(&host), "{log}");
}

/// `--no-cache` leaves no trace; `kiln cache key` prints what a wrapper needs.
#[test]
fn no_cache_and_cache_key() {
    let iso = Isolated::new();
    let project = iso.tiny_rust();
    let (summary, _) = iso.build(&project, &["--no-cache"], &[]);
    assert!(summary["cache"].is_null(), "{summary:#}");
    assert!(!iso.home().join("cache").exists());

    let out = iso.run(
        &["cache", "key", project.to_str().unwrap(), "--kind", "cargo"],
        &[],
    );
    assert_success(&out);
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(key.trim().contains("-kiln-cargo-"), "{key}");
    assert_eq!(key.lines().count(), 1);

    // The scope comes from the CI: a GitHub pull request's keys are its own.
    let scoped = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["cache", "key", project.to_str().unwrap(), "--kind", "cargo"];
        args.extend_from_slice(extra);
        let out = iso.run(&args, env);
        assert_success(&out);
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let pull = scoped(
        &[],
        &[
            ("KILN_PLATFORM", "github"),
            ("GITHUB_EVENT_NAME", "pull_request"),
            ("GITHUB_REF", "refs/pull/5/merge"),
        ],
    );
    assert!(pull.starts_with("pull-5."), "{pull}");
    let branch = scoped(
        &[],
        &[
            ("KILN_PLATFORM", "github"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_REF", "refs/heads/main"),
        ],
    );
    assert!(branch.starts_with("main."), "{branch}");
    // Only the scope differs.
    assert_eq!(
        pull.split_once('.').unwrap().1.split_once('-').unwrap().1,
        branch.split_once('.').unwrap().1.split_once('-').unwrap().1
    );
    assert!(scoped(&["--cache-scope", "nightly"], &[]).starts_with("nightly."));

    let out = iso.run(
        &[
            "cache",
            "key",
            project.to_str().unwrap(),
            "--output",
            "json",
            "--cache-prefix",
            "job-7",
        ],
        &[],
    );
    assert_success(&out);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys[0]["kind"], "cargo");
    let other = keys[0]["key"].as_str().unwrap();
    assert!(other.contains("-job-7-cargo-"), "{other}");
    // Same scope, toolchain and lockfiles: only the prefix differs.
    assert_eq!(other.replace("-job-7-", "-kiln-"), key.trim(), "{keys:#}");
    assert!(keys[0]["restore_prefix"].as_str().unwrap().ends_with('-'));
    // Outside CI one scope: the exact key, then its prefix.
    assert_eq!(
        keys[0]["restore_keys"],
        serde_json::json!([other, keys[0]["restore_prefix"]])
    );
    let paths = keys[0]["paths"].as_array().unwrap();
    assert!(
        paths.contains(&serde_json::json!(iso.cargo_home())),
        "{paths:?}"
    );
    assert!(
        paths.contains(&serde_json::json!(iso.target())),
        "{paths:?}"
    );

    let out = iso.run(
        &["cache", "key", project.to_str().unwrap(), "--kind", "pip"],
        &[],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has no `pip` cache"),
        "{}",
        stderr(&out)
    );
}

/// pip's cache, restored on a machine without it or kiln's tools: componentize-py is
/// never restored from a cache (anyone who can write one could plant it), but installed
/// again from its hash-pinned wheel.
#[test]
fn the_pip_cache_is_restored_and_the_tools_are_provisioned_again() {
    let iso = Isolated::new();
    let project = iso.ctx.fixture("python-requirements");
    let (first, _) = iso.build(&project, &[], &[]);
    let kind = cache_kind(&first);
    assert_eq!(kind["kind"], "pip");
    assert_eq!(kind["saved"], true, "{kind:#}");

    for dir in ["pip", "tools"] {
        let _ = std::fs::remove_dir_all(iso.home().join(dir));
    }
    let _ = std::fs::remove_dir_all(project.join(".kiln"));
    let (second, log) = iso.build(&project, &[], &[]);
    let kind = cache_kind(&second);
    assert_eq!(kind["hit"], "exact", "{kind:#}\n{log}");
    assert!(second["cache"]["warnings"].as_array().unwrap().is_empty());
    // The tools came back by installing, not by restoring. (Whether pip's cache saved
    // the wheel's download depends on the index's cache headers: a proxy that sends
    // `no-store` leaves pip nothing to cache, so that is not asserted.)
    assert!(log.contains("Installing componentize-py"), "{log}");
}

/// A build that fails after its downloads finished (here: a compile error in a project
/// with nothing to download) still saves the cargo cache; the failure is the build's.
#[test]
fn a_failed_build_past_its_downloads_still_saves_the_cargo_cache() {
    let iso = Isolated::new();
    let project = iso.ctx.fixture("rust-broken");
    let out = iso.run(&["build", project.to_str().unwrap()], &[]);
    common::assert_exit(&out, 1);
    let log = stderr(&out);
    assert!(log.contains("Saving the cargo cache"), "{log}");
    let refs: Vec<_> = std::fs::read_dir(iso.home().join("cache/refs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(refs.len(), 1, "{refs:?}");
    assert!(refs[0].contains("-kiln-cargo-"), "{refs:?}");
    assert!(!log.contains("warning: cache"), "{log}");

    // A CI post step after the failure applies the same rule: the cargo cache, whose
    // downloads finished, is saved (here: unchanged, so found and not rewritten).
    let out = iso.run(
        &[
            "cache",
            "save",
            "--after-failure",
            project.to_str().unwrap(),
        ],
        &[],
    );
    assert_success(&out);
    assert!(stderr(&out).contains("cargo"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("nothing is worth saving"));

    // A Python project's caches are never worth saving after a failure.
    let python = iso.ctx.fixture("python-requirements");
    let out = iso.run(
        &["cache", "save", "--after-failure", python.to_str().unwrap()],
        &[],
    );
    assert_success(&out);
    assert!(
        stderr(&out).contains("nothing is worth saving"),
        "{}",
        stderr(&out)
    );
}
