//! `kiln summary post`: a summary `kiln build` wrote, posted to the CI (failures are
//! warnings), through the same summary stage `kiln build` ends with.

use kiln_cli::SummaryPostArgs;

use super::Printer;
use crate::env::Env;
use std::path::Path;

use crate::error::Error;
use crate::platform::SummaryFileError;
use crate::reporter::{Reporter, Stage};
use crate::stages::summary::{self, SummaryRequest};

pub async fn post(args: SummaryPostArgs, env: Env, printer: &Printer) -> Result<u8, Error> {
    let summary = read(args.summary.as_deref())?;
    printer.info(&summary.to_string());
    let started = std::time::Instant::now();
    printer.stage_started(Stage::Summary);
    summary::run(
        SummaryRequest {
            summary: &summary,
            file: None,
            post: crate::platform::Posting {
                platform: args.post.platform,
                comments: true,
            },
            env: &env,
        },
        printer,
    )
    .await?;
    printer.stage_finished(Stage::Summary, started.elapsed());
    Ok(0)
}

/// The summary in `path`, or on stdin (`-`, or no path) when stdin is not a terminal.
fn read(path: Option<&Path>) -> Result<crate::summary::Summary, SummaryFileError> {
    let (text, shown) = match path {
        Some(path) if path != Path::new("-") => (
            std::fs::read_to_string(path).map_err(|source| SummaryFileError::Read {
                path: path.to_path_buf(),
                source,
            })?,
            path.display().to_string(),
        ),
        _ => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(SummaryFileError::NoInput);
            }
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|source| {
                SummaryFileError::Read {
                    path: "-".into(),
                    source,
                }
            })?;
            (text, "stdin".to_string())
        }
    };
    crate::platform::parse_summary(&text, &shown)
}
