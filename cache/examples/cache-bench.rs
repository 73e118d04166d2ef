//! Saves and restores directories with kiln-cache's local store, for `scripts/bench-cache`.
//!
//! ```text
//! cache-bench save STORE KEY NAME=DIR...     # one cache of several named roots
//! cache-bench restore STORE KEY NAME=DIR...  # into other directories
//! ```
//!
//! Prints one JSON line with the report and the wall time.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::time::Instant;

use kiln_cache::{CacheKey, CacheKind, KeyInputs, LocalStore, RestoreOptions, Root, Selection};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, store, key, roots @ ..] = args.as_slice() else {
        eprintln!("usage: cache-bench save|restore STORE KEY NAME=DIR...");
        std::process::exit(2);
    };
    let roots: Vec<Root> = roots
        .iter()
        .map(|r| {
            let (name, dir) = r.split_once('=').expect("NAME=DIR");
            Root::new(name, dir, Selection::all())
        })
        .collect();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("Cargo.lock"), key).unwrap();
    let key = CacheKey::compute(&KeyInputs {
        prefix: "bench".into(),
        scope: kiln_cache::Scope::default(),
        kind: CacheKind::Cargo,
        toolchains: vec![],
        project: project.path().to_path_buf(),
    })
    .unwrap();
    let store = LocalStore::new(Path::new(store));
    let started = Instant::now();
    match command.as_str() {
        "save" => {
            let previous = kiln_cache::lookup(&store, &key)
                .ok()
                .flatten()
                .map(|(_, m)| m);
            let r = kiln_cache::save(&store, &key, &roots, previous.as_ref()).unwrap();
            println!(
                "{{\"op\":\"save\",\"seconds\":{:.3},\"files\":{},\"bytes_total\":{},\"chunks_written\":{},\"chunks_reused\":{},\"bytes_written\":{},\"unchanged\":{}}}",
                started.elapsed().as_secs_f64(),
                r.files,
                r.bytes_total,
                r.chunks_written,
                r.chunks_reused,
                r.bytes_written,
                r.unchanged
            );
        }
        "restore" => {
            let r = kiln_cache::restore(&store, &key, &roots, &RestoreOptions::default()).unwrap();
            println!(
                "{{\"op\":\"restore\",\"seconds\":{:.3},\"hit\":\"{:?}\",\"files_restored\":{},\"files_unchanged\":{},\"bytes_restored\":{}}}",
                started.elapsed().as_secs_f64(),
                r.hit,
                r.counts.files_restored,
                r.counts.files_unchanged,
                r.counts.bytes_restored
            );
        }
        other => panic!("unknown command {other}"),
    }
}
