//! The run summary: kiln's one machine interface for wrappers and scripts. Its types are
//! part of the printed interface and live in [`kiln_cli::output`]; this module names them
//! for the library.

pub use kiln_cli::output::{
    ArtifactSummary, AttestationSummary, BuildSummary, CacheHit, CacheKindSummary, CacheSummary,
    Fact, ProjectSummary, PushSummary, SCHEMA_VERSION, SignatureSummary, StageTiming, Summary,
    human_size,
};
