//! The summary stage: what the build did, where the pipeline shows it.
//!
//! 1. Writes the summary JSON to `--summary-file`, when one is given.
//! 2. Posts the summary to the CI it runs in (`--platform`, else detected): GitHub's step
//!    summary, outputs and pull request comment; GitLab's dotenv report and merge request
//!    note; Tekton's results; Jenkins' files ([`crate::platform`]). Posting never fails
//!    a build: each failure is a warning.
//!
//! The stage never prints the summary itself: the command that ran the pipeline does.

use std::path::Path;

use crate::diagnose::{Blame, Diagnose};
use crate::env::Env;
use crate::platform::{self, Platform, Posting, SummaryFileError};
use crate::reporter::Reporter;
use crate::summary::Summary;

#[derive(Debug)]
pub struct SummaryRequest<'a> {
    pub summary: &'a Summary,
    /// `--summary-file`.
    pub file: Option<&'a Path>,
    /// Where to post, and whether to comment.
    pub post: Posting,
    pub env: &'a Env,
}

/// Where the summary went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// The platform posted to.
    pub platform: Platform,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    File(#[from] SummaryFileError),
}

impl Diagnose for SummaryError {
    fn hint(&self) -> Option<String> {
        match self {
            SummaryError::File(err) => err.hint(),
        }
    }

    fn blame(&self) -> Blame {
        match self {
            SummaryError::File(err) => err.blame(),
        }
    }
}

/// Writes and posts the summary.
pub async fn run(req: SummaryRequest<'_>, reporter: &dyn Reporter) -> Result<Posted, SummaryError> {
    if let Some(path) = req.file {
        platform::write_summary(path, req.summary)?;
    }
    let platform = platform::post(req.summary.into(), req.post, req.env, reporter).await;
    Ok(Posted { platform })
}
