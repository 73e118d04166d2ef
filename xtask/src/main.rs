//! `cargo run -p xtask -- generate [--check]`: see the library's documentation.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Repository chores")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write the CI wrappers' inputs from `kiln build`'s flags
    Generate {
        /// Change nothing; fail with a diff when a generated file is out of date
        #[arg(long)]
        check: bool,
    },
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> Result<ExitCode> {
    let Task::Generate { check } = Cli::parse().task;
    let root = xtask::repo_root();
    let generated = xtask::generate(&root)?;
    if check {
        let stale: Vec<_> = generated.iter().filter(|f| !f.is_current()).collect();
        for file in &stale {
            print!("{}", file.diff());
        }
        if stale.is_empty() {
            eprintln!("generated wrapper files are up to date");
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "error: {} generated file(s) are out of date\n\nhint: run `cargo run -p xtask -- generate`",
            stale.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    for path in xtask::write(&root, &generated)? {
        eprintln!("wrote {path}");
    }
    Ok(ExitCode::SUCCESS)
}
