//! The pipeline's stages, one module each, run in this order by [`crate::pipeline`]:
//! detect, build, package, store, sign, attest (then the summary is printed).

pub mod attest;
pub mod build;
pub mod detect;
pub mod package;
pub mod restore;
pub mod save;
pub mod sign;
pub mod store;
