//! Tekton: result files, so Tekton Chains can sign what was built.
//!
//! 1. Finds the results directory: `KILN_TEKTON_RESULTS`, else `/tekton/results` when it
//!    exists.
//! 2. Writes `IMAGE_URL` (the pushed reference without its digest) and `IMAGE_DIGEST`
//!    (`sha256:<hex>`), which Chains reads (both empty when nothing was pushed), plus `SBOM_DIGEST` and `CACHE_HIT` (empty when
//!    the summary has none), each without a trailing newline.
//! 3. Warns when they add up to more than Tekton's 4 KB of results per container.

use std::path::PathBuf;

use super::{Outputs, Posts};
use crate::env::Env;
use crate::summary::Summary;

/// Where a Task's results are written, unless `KILN_TEKTON_RESULTS` says otherwise.
pub const DEFAULT_RESULTS_DIR: &str = "/tekton/results";
/// Tekton's limit on the results of one container.
pub const RESULTS_LIMIT: usize = 4096;

/// The results directory, when kiln runs in a Tekton step.
pub fn results_dir(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = env.path(crate::env::KILN_TEKTON_RESULTS) {
        return Some(dir);
    }
    let dir = PathBuf::from(DEFAULT_RESULTS_DIR);
    dir.is_dir().then_some(dir)
}

/// `(result name, value)`, in the order they are written.
///
/// `IMAGE_URL` and `IMAGE_DIGEST` are empty when nothing was pushed: Chains signs
/// registry images, and a layout on the step's disk is not one.
pub fn results(summary: &Summary) -> Vec<(&'static str, String)> {
    let outputs = Outputs::of(summary);
    let (image_url, image_digest) = match summary.push {
        Some(_) => (outputs.image_url().to_string(), outputs.digest.clone()),
        None => (String::new(), String::new()),
    };
    vec![
        ("IMAGE_URL", image_url),
        ("IMAGE_DIGEST", image_digest),
        ("SBOM_DIGEST", outputs.sbom_digest.clone()),
        ("CACHE_HIT", outputs.cache_hit.clone()),
    ]
}

pub(crate) fn post(report: super::Report<'_>, env: &Env, posts: &Posts<'_>) {
    // A failed TaskRun's results are not read.
    let Some(summary) = report.summary() else {
        return;
    };
    let Some(dir) = results_dir(env) else {
        posts.failed(&super::PostError::Missing {
            name: crate::env::KILN_TEKTON_RESULTS,
            what: "write Tekton results",
        });
        return;
    };
    let results = results(summary);
    let total: usize = results.iter().map(|(_, value)| value.len()).sum();
    if total > RESULTS_LIMIT {
        posts.reporter.warn(&format!(
            "The Tekton results add up to {total} bytes, over Tekton's {RESULTS_LIMIT} per \
             container: the TaskRun may not record them"
        ));
    }
    for (name, value) in &results {
        posts.outcome(
            super::write_file(&dir.join(name), value.as_bytes())
                .map(|()| format!("wrote the Tekton result {name}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tests::summary;

    #[test]
    fn results_name_what_chains_signs() {
        let mut s = summary();
        s.push = Some(crate::summary::PushSummary {
            reference: format!("registry.local/acme/hello:1.2.3@{}", s.artifact.digest),
            digest: s.artifact.digest.clone(),
            bytes_sent: 0,
            bytes_skipped: 0,
            up_to_date: true,
        });
        let results = results(&s);
        assert_eq!(
            results[0],
            ("IMAGE_URL", "registry.local/acme/hello:1.2.3".into())
        );
        assert_eq!(results[1], ("IMAGE_DIGEST", s.artifact.digest.clone()));
        assert_eq!(results[2].0, "SBOM_DIGEST");
        assert_eq!(results[3].0, "CACHE_HIT");

        // Not pushed: nothing for Chains to sign.
        s.push = None;
        let local = super::results(&s);
        assert_eq!(local[0], ("IMAGE_URL", String::new()));
        assert_eq!(local[1], ("IMAGE_DIGEST", String::new()));
    }
}
