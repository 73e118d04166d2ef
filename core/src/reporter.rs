//! How stages tell the user what they are doing without printing.
//!
//! A stage never writes to the terminal: it calls a [`Reporter`]. The binary's
//! implementation lives in [`crate::printer`] (indicatif spinners on a TTY, plain lines
//! in CI); tests use [`Silent`].

use std::time::Duration;

pub use kiln_cli::output::Stage;

/// Progress sink for stages.
pub trait Reporter: Send + Sync {
    /// A stage begins.
    fn stage_started(&self, stage: Stage);
    /// A stage ended successfully after `elapsed`.
    fn stage_finished(&self, stage: Stage, elapsed: Duration);
    /// A long step inside the current stage began ("Compiling std for wasm32-wasip1").
    fn step(&self, message: &str);
    /// Something the user should know that does not stop the pipeline.
    fn warn(&self, message: &str);
    /// One line of a subprocess's output: shown live only in verbose mode.
    fn output_line(&self, line: &str);
    /// A transfer of `total` bytes, named `label` (a blob digest), began.
    fn transfer_started(&self, label: &str, total: u64);
    /// `done` of the transfer's bytes have gone through.
    fn transfer_progress(&self, label: &str, done: u64);
    /// The transfer ended (`ok`: completely).
    fn transfer_finished(&self, label: &str, ok: bool);
}

/// A reporter that drops everything: for tests and library callers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn stage_started(&self, _: Stage) {}
    fn stage_finished(&self, _: Stage, _: Duration) {}
    fn step(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn output_line(&self, _: &str) {}
    fn transfer_started(&self, _: &str, _: u64) {}
    fn transfer_progress(&self, _: &str, _: u64) {}
    fn transfer_finished(&self, _: &str, _: bool) {}
}
