//! The pipeline's stages, one module each, listed in the order they run. Each has the
//! same shape: a request type, `async fn run(req, &dyn Reporter) -> Result<Outcome,
//! <Stage>Error>` with its own `thiserror` enum, and a numbered `//!` doc. A stage never
//! prints: it reports through the [`crate::reporter::Reporter`]. [`crate::plan`] lists
//! the steps and [`crate::pipeline`] runs them.

// 1.
pub mod detect;

// 2.
pub mod restore;

// 3.
pub mod build;

// 4.
pub mod package;

// 5.
pub mod store;

// 6.
pub mod push;

// 7.
pub mod sign;

// 8.
pub mod attest;

// 9.
pub mod save;

// 10.
pub mod summary;
