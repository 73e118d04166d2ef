//! `cargo run -p xtask -- generate [--check]` and `checksums DIR --version V [--append]`:
//! see the library's documentation.

use std::path::PathBuf;
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
    /// Print the sha256 lines of the release archives in DIR (`dist build`'s output)
    Checksums {
        /// Where `dist build` left the archives and their `.sha256` files
        dir: PathBuf,
        /// The version they are released as
        #[arg(long)]
        version: String,
        /// Append them to action/checksums.txt and regenerate the wrappers (the release
        /// does) instead of printing them
        #[arg(long)]
        append: bool,
    },
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> Result<ExitCode> {
    let root = xtask::repo_root();
    let check = match Cli::parse().task {
        Task::Generate { check } => check,
        Task::Checksums {
            dir,
            version,
            append,
        } => {
            let lines = xtask::checksums::lines(&dir, &version)?;
            if !append {
                print!("{lines}");
                return Ok(ExitCode::SUCCESS);
            }
            let path = root.join(xtask::CHECKSUMS);
            let mut text = std::fs::read_to_string(&path)?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&lines);
            std::fs::write(&path, text)?;
            eprintln!(
                "appended {} line(s) to {}",
                lines.lines().count(),
                xtask::CHECKSUMS
            );
            false
        }
    };
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
