//! Runs a computed [`Plan`]: exactly its steps, in its order, timed in one place.
//!
//! 1. Decides how to sign before anything runs: a key is read (and its password checked)
//!    now, so a wrong password fails in a second, not after a long build.
//! 2. Loops over the plan's steps. A skipped step is recorded with the plan's reason; a
//!    step that runs is timed here and nowhere else, and what it produced is kept for the
//!    steps after it ([`Outcomes`]).
//! 3. A cache problem (restore or save) is a warning, never a failure. When a step fails,
//!    the cache is still saved if the plan saves it and the build got far enough to make
//!    that worth it, the failure is posted where the summary would have gone (so a pull
//!    request's comment says the build broke), then the error is returned.
//!
//! The summary stage runs last; the returned [`Summary`] lists every step with its time
//! or the reason it was skipped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cache::KindPlan;
use crate::diagnose::one_line;
use crate::error::Error;
use crate::isolation::{IsolationKind, Sandbox};
use crate::oci::layout::Layout;
use crate::plan::{Plan, Publishing, Reuse};
use crate::reporter::{Reporter, Stage};
use crate::sign::keyring::{Choice, KeylessMode, Keys};
use crate::sign::{KeyOrigin, Signing, Verifier};
use crate::stages::attest::{self, AttestRequest};
use crate::stages::build::{self, BuildRequest, Built, Context, SbomInputs};
use crate::stages::package::{self, Artifact, PackageRequest};
use crate::stages::push::{self, PushRequest};
use crate::stages::restore::{self, KindRestored, RestoreRequest};
use crate::stages::save::{self, SaveRequest};
use crate::stages::sign::{self, SignRequest};
use crate::stages::store::{self, StoreRequest, Stored, Storing};
use crate::stages::summary::{self, SummaryRequest};
use crate::summary::{
    ArtifactSummary, AttestationSummary, BuildSummary, CacheSummary, Fact, ProjectSummary,
    PushSummary, SCHEMA_VERSION, SignatureSummary, StageTiming, Summary,
};

/// What the steps produced so far, for the steps after them.
#[derive(Default)]
struct Outcomes {
    restored: Vec<KindRestored>,
    cache_warnings: Vec<String>,
    restore_time: Duration,
    built: Option<Built>,
    artifact: Option<Artifact>,
    version: Option<String>,
    stored: Option<Stored>,
    push: Option<PushSummary>,
    signature: Option<SignatureSummary>,
    attestation: Option<AttestationSummary>,
    cache: Option<CacheSummary>,
    isolation: Option<IsolationKind>,
    timings: Vec<StageTiming>,
    /// The document the summary stage wrote and posted.
    summary: Option<Summary>,
}

/// Runs every step of `plan`; returns the summary the summary stage posted.
pub async fn run(mut plan: Plan, reporter: &dyn Reporter) -> Result<Summary, Error> {
    let (env, signing_dir) = (plan.settings.env.clone(), plan.settings.home.signing());
    let keys = Keys {
        env: &env,
        local_dir: &signing_dir,
    };
    // `--no-publish` reads no signing secret at all.
    let choice = if plan.options.publishing == Publishing::BuildOnly {
        None
    } else {
        Some(crate::sign::keyring::choose(&plan.options.signing, &keys)?)
    };
    if let Some(Choice::Key(signer)) = &choice
        && let KeyOrigin::Local(path) = &signer.origin
        && (plan.settings.env.get(crate::env::CI).is_some()
            || crate::platform::detect(&plan.settings.env) != crate::platform::Platform::Local)
    {
        reporter.warn(&format!(
            "signing with kiln's local development key {}, which does not outlive this \
             machine: set {} (a cosign key pair from `kiln keygen`) so others can verify",
            path.display(),
            crate::env::KILN_SIGNING_KEY
        ));
    }
    // What `kiln publish` signs was stored unsigned by design; `--no-publish` signs nothing.
    let signer = match &choice {
        Some(Choice::Key(signer)) => Some(Verifier::Key(signer.public.clone())),
        _ => None,
    };
    if plan.options.publishing == Publishing::Both
        && let Some(why) = plan.require_vouched(signer.as_ref()).await
    {
        reporter.warn(&format!(
            "an artifact with these inputs exists, but no signature by this signer verifies \
             on it ({why}): building it again rather than signing what it cannot vouch for"
        ));
    }
    keep_out_of_git(&plan.project.root.join(".kiln"));
    let layout = Layout::create(&plan.layout)?;

    let mut outcomes = Outcomes {
        version: plan.project.version.clone(),
        ..Outcomes::default()
    };
    let mut choice = choice;
    let mut signer = None;
    for step in plan.steps.clone() {
        if let Some(why) = &step.skipped {
            outcomes.timings.push(StageTiming {
                stage: step.stage,
                seconds: 0.0,
                skipped: Some(why.clone()),
            });
            continue;
        }
        let started = Instant::now();
        if step.stage != Stage::Detect {
            reporter.stage_started(step.stage);
        }
        let ran = match step.stage {
            // Detection ran while the plan was computed.
            Stage::Detect => Ok(()),
            Stage::Restore => {
                restore_caches(&plan, &mut outcomes, reporter).await;
                Ok(())
            }
            Stage::Build => build_project(&plan, &mut outcomes, reporter).await,
            Stage::Package => package_artifact(&plan, &mut outcomes, reporter).await,
            Stage::Store => store_artifact(&plan, &mut outcomes, reporter).await,
            Stage::Push => push_artifact(&plan, &layout, &mut outcomes, reporter).await,
            Stage::Sign => match start_signing(&plan, choice.take(), &keys, reporter).await {
                Ok(signing) => {
                    let signed =
                        sign_artifact(&plan, &layout, &signing, &mut outcomes, reporter).await;
                    signer = Some(signing);
                    signed
                }
                Err(err) => Err(err),
            },
            Stage::Attest => match &signer {
                _ if plan.options.publishing == Publishing::BuildOnly => {
                    store_sbom(&plan, &layout, &mut outcomes, reporter).await
                }
                Some(signing) => {
                    attest_artifact(&plan, &layout, signing, &mut outcomes, reporter).await
                }
                None => unreachable_order(Stage::Attest, Stage::Sign),
            },
            Stage::Save => {
                save_caches(&plan, false, &mut outcomes, reporter).await;
                Ok(())
            }
            Stage::Summary => post_summary(&plan, started, &mut outcomes, reporter).await,
        };
        if let Err(err) = ran {
            // The caches of a build that got far enough are still worth saving.
            if plan.runs(Stage::Save) && outcomes.cache.is_none() {
                // A failure after the artifact was stored (push, sign) leaves a build whose
                // caches are as good as a green one's.
                let failed = outcomes.stored.is_none();
                let started = Instant::now();
                reporter.stage_started(Stage::Save);
                save_caches(&plan, failed, &mut outcomes, reporter).await;
                reporter.stage_finished(Stage::Save, started.elapsed());
            }
            if step.stage != Stage::Summary {
                post_failure(&plan, step.stage, &err, &outcomes, reporter).await;
            }
            return Err(err);
        }
        let elapsed = match step.stage {
            Stage::Detect => plan.detect_time,
            _ => started.elapsed(),
        };
        if step.stage != Stage::Detect {
            reporter.stage_finished(step.stage, elapsed);
        }
        outcomes.timings.push(StageTiming {
            stage: step.stage,
            seconds: elapsed.as_secs_f64(),
            skipped: None,
        });
    }
    match outcomes.summary {
        Some(summary) => Ok(summary),
        None => Err(Error::Io {
            what: "finish the build".into(),
            source: std::io::Error::other("the plan has no summary step"),
        }),
    }
}

/// The plan orders stages; a stage that needs an earlier one's result and does not find
/// it is a defect in [`crate::plan`], reported as an internal error.
fn unreachable_order<T>(stage: Stage, needs: Stage) -> Result<T, Error> {
    Err(Error::Io {
        what: format!("run the {stage} stage: the {needs} stage did not run before it"),
        source: std::io::Error::other("the plan's steps are out of order"),
    })
}

async fn restore_caches(plan: &Plan, outcomes: &mut Outcomes, reporter: &dyn Reporter) {
    let started = Instant::now();
    let Some(cache) = &plan.cache else {
        return;
    };
    outcomes
        .cache_warnings
        .extend(cache.warnings.iter().cloned());
    if cache.kinds.is_empty() {
        return;
    }
    let request = RestoreRequest {
        location: cache.location.clone(),
        kinds: cache.kinds.clone(),
        registry: plan.options.registry.clone(),
        local: plan.settings.home.cache(),
    };
    match restore::run(request, reporter).await {
        Ok(restored) => {
            outcomes
                .cache_warnings
                .extend(restored.kinds.iter().filter_map(|k| k.warning.clone()));
            outcomes.restored = restored.kinds;
        }
        Err(err) => {
            let warning = format!("cache: {}; building without it", one_line(&err));
            reporter.warn(&warning);
            outcomes.cache_warnings.push(warning);
        }
    }
    outcomes.restore_time = started.elapsed();
}

async fn build_project(
    plan: &Plan,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let sandbox = Sandbox::detect(secrets(plan), plan.options.require_isolation)?;
    if let Some(reason) = sandbox.unavailable() {
        reporter.warn(&format!(
            "the build steps run without isolation ({reason}): project code can see what \
             this user sees; --require-isolation makes this an error"
        ));
    }
    outcomes.isolation = Some(sandbox.kind());
    let built = build::run(
        BuildRequest {
            project: &plan.project,
            language: &plan.language,
            work_dir: &plan.work_dir,
            context: Context {
                env: &plan.settings.env,
                home: &plan.settings.home,
                sandbox: &sandbox,
            },
        },
        reporter,
    )
    .await?;
    if outcomes.version.is_none() {
        outcomes.version = built.version.clone();
    }
    outcomes.built = Some(built);
    Ok(())
}

async fn package_artifact(
    plan: &Plan,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(built) = &outcomes.built else {
        return unreachable_order(Stage::Package, Stage::Build);
    };
    let artifact = package::run(
        PackageRequest {
            built: built.clone(),
            name: plan.project.name.clone(),
            version: outcomes.version.clone(),
            created: plan.source.created.clone(),
            revision: plan.source.revision.clone(),
            source: plan.source.url.clone(),
            inputs_digest: Some(plan.inputs.clone()),
        },
        reporter,
    )
    .await?;
    outcomes.artifact = Some(artifact);
    Ok(())
}

async fn store_artifact(
    plan: &Plan,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let artifact = match (&outcomes.artifact, &plan.reuse) {
        (Some(artifact), _) => Storing::New(artifact),
        (None, Some(reuse)) => {
            reporter.step("An artifact with the same inputs exists: nothing to build");
            // Its version, when it recorded one, names it.
            let recorded =
                serde_json::from_slice::<oci_client::manifest::OciImageManifest>(reuse.manifest())
                    .ok()
                    .and_then(|m| m.annotations?.remove(crate::oci::annotations::VERSION));
            if recorded.is_some() {
                outcomes.version = recorded;
            }
            Storing::Existing {
                manifest: reuse.manifest(),
                registry: match reuse {
                    Reuse::Registry { .. } => plan.registry.as_ref(),
                    Reuse::Layout { .. } => None,
                },
            }
        }
        (None, None) => return unreachable_order(Stage::Store, Stage::Package),
    };
    let reference = plan.reference_for(&outcomes.version)?;
    let stored = store::run(
        StoreRequest {
            artifact,
            layout: &plan.layout,
            reference: &reference,
        },
        reporter,
    )
    .await?;
    if let Some(Reuse::Registry { digest, .. }) = &plan.reuse
        && let Some(registry) = &plan.registry
    {
        outcomes.push = Some(PushSummary {
            reference: format!("{}@{digest}", registry.reference().whole()),
            digest: digest.clone(),
            bytes_sent: 0,
            bytes_skipped: 0,
            up_to_date: true,
        });
    }
    // The project's own artifact, as `kiln run PROJECT` finds it: not one built under
    // another name with `--tag`.
    if plan.tag.is_none() {
        crate::target::LastBuild {
            layout: stored.layout.clone(),
            reference: stored.reference.clone(),
        }
        .record(&plan.work_dir);
    }
    outcomes.stored = Some(stored);
    Ok(())
}

async fn push_artifact(
    plan: &Plan,
    layout: &Layout,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let (Some(registry), Some(stored)) = (&plan.registry, &outcomes.stored) else {
        return unreachable_order(Stage::Push, Stage::Store);
    };
    let pushed = push::run(
        PushRequest {
            layout,
            registry,
            digest: &stored.manifest_digest,
            attached: false,
        },
        reporter,
    )
    .await?;
    outcomes.push = Some(PushSummary {
        reference: pushed.reference,
        digest: pushed.digest,
        bytes_sent: pushed.bytes_sent,
        bytes_skipped: pushed.bytes_skipped,
        up_to_date: false,
    });
    Ok(())
}

/// Turns the signing choice made before the build into a signer: a keyless certificate,
/// which lives minutes, is requested now.
async fn start_signing(
    plan: &Plan,
    choice: Option<Choice>,
    keys: &Keys<'_>,
    reporter: &dyn Reporter,
) -> Result<Signing, Error> {
    let Some(choice) = choice else {
        return unreachable_order(Stage::Sign, Stage::Detect);
    };
    Ok(match choice {
        Choice::Key(signer) => Signing::Key(signer),
        Choice::Keyless(keyless) => {
            reporter.step(&format!(
                "Signing keylessly: {} exchanged at {}",
                keyless.token.describe(),
                keyless.fulcio_url
            ));
            match keyless.start().await {
                Ok(keyless) => Signing::Keyless(keyless),
                // Offered a token but not asked for keyless (a GitLab component always
                // requests one; a self-managed instance's tokens are not Fulcio's): sign
                // with the key kiln would otherwise use, and say why.
                Err(err) if plan.options.signing.keyless == KeylessMode::Auto => {
                    reporter.warn(&format!(
                        "keyless signing failed ({}); signing with a key instead (pass \
                         `--keyless` to make this an error, `--no-keyless` to skip it)",
                        one_line(&err)
                    ));
                    Signing::Key(crate::sign::keyring::signer(
                        plan.options.signing.key.as_deref(),
                        keys,
                    )?)
                }
                Err(err) => return Err(Error::Keyless(err)),
            }
        }
    })
}

/// What the signature and the SBOM name: the registry repository when pushing, else the
/// artifact's name in the layout.
fn repository(plan: &Plan, stored: &Stored) -> String {
    match &plan.registry {
        Some(registry) => format!(
            "{}/{}",
            registry.reference().resolve_registry(),
            registry.reference().repository()
        ),
        None => stored
            .reference
            .rsplit_once(':')
            .map_or(stored.reference.clone(), |(name, _)| name.to_string()),
    }
}

async fn sign_artifact(
    plan: &Plan,
    layout: &Layout,
    signer: &Signing,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let Some(stored) = &outcomes.stored else {
        return unreachable_order(Stage::Sign, Stage::Store);
    };
    let signed = sign::run(
        SignRequest {
            layout,
            registry: plan.registry.as_ref(),
            digest: &stored.manifest_digest,
            repository: &repository(plan, stored),
            signer,
        },
        reporter,
    )
    .await?;
    outcomes.signature = Some(SignatureSummary {
        tag: signed.tag,
        digest: signed.digest,
        key: signer.describe(),
        reused: signed.reused,
    });
    Ok(())
}

async fn attest_artifact(
    plan: &Plan,
    layout: &Layout,
    signer: &Signing,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let sbom = SbomPlan::of(plan, layout, outcomes)?;
    let attested = attest::run(
        AttestRequest {
            layout,
            registry: plan.registry.as_ref(),
            sbom: sbom.input(plan, outcomes),
            source: &sbom.source,
            sbom_path: plan.work_dir.join("sbom.cdx.json"),
            signer,
        },
        reporter,
    )
    .await?;
    outcomes.attestation = Some(AttestationSummary {
        tag: attested.attached.tag,
        digest: attested.attached.digest,
        predicate_type: attest::CYCLONEDX_PREDICATE_TYPE.to_string(),
        sbom_path: attested.sbom_path,
        sbom_digest: attested.sbom_digest,
        components: attested.components,
        reused: attested.attached.reused,
    });
    Ok(())
}

/// What the SBOM of the stored artifact is listed from, and what it names.
struct SbomPlan<'a> {
    stored: &'a Stored,
    source: std::borrow::Cow<'a, SbomInputs>,
    toolchain: &'a str,
    repository: String,
}

impl<'a> SbomPlan<'a> {
    fn of(plan: &Plan, layout: &Layout, outcomes: &'a Outcomes) -> Result<SbomPlan<'a>, Error> {
        let Some(stored) = &outcomes.stored else {
            return unreachable_order(Stage::Attest, Stage::Store);
        };
        let (source, toolchain) = match &outcomes.built {
            Some(built) => (
                std::borrow::Cow::Borrowed(&built.sbom),
                built.toolchain.as_str(),
            ),
            None => (
                std::borrow::Cow::Owned(previous_sbom(plan, layout, &stored.manifest_digest)?),
                REUSED_TOOLCHAIN,
            ),
        };
        Ok(SbomPlan {
            stored,
            source,
            toolchain,
            repository: repository(plan, stored),
        })
    }

    fn input(&'a self, plan: &'a Plan, outcomes: &'a Outcomes) -> crate::sbom::SbomInput<'a> {
        crate::sbom::SbomInput {
            artifact_name: &self.repository,
            artifact_version: outcomes.version.as_deref(),
            artifact_digest: &self.stored.manifest_digest,
            toolchain: self.toolchain,
            env: &plan.settings.env,
        }
    }
}

/// What the SBOM of an artifact built by an earlier run lists: for `kiln publish`, the
/// document `kiln build --no-publish` stored beside it (no project code is run to list
/// it again); otherwise what that build left in the work directory.
fn previous_sbom(plan: &Plan, layout: &Layout, digest: &str) -> Result<SbomInputs, Error> {
    if plan.options.publishing == Publishing::PublishOnly {
        return match attest::stored(layout, digest)? {
            Some(document) => Ok(SbomInputs::Stored(document)),
            None => Err(Error::Usage {
                message: format!("The artifact {digest} has no SBOM stored beside it"),
                hint: "build it with `kiln build --no-publish`, which stores its SBOM, and \
                       hand that layout to `kiln publish`"
                    .into(),
            }),
        };
    }
    Ok(plan.language.previous_sbom_inputs(&plan.work_dir))
}

/// `kiln build --no-publish`: the SBOM stored unsigned beside the artifact.
async fn store_sbom(
    plan: &Plan,
    layout: &Layout,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let sbom = SbomPlan::of(plan, layout, outcomes)?;
    let unsigned = attest::store_unsigned(
        attest::UnsignedRequest {
            layout,
            sbom: sbom.input(plan, outcomes),
            source: &sbom.source,
            sbom_path: plan.work_dir.join("sbom.cdx.json"),
        },
        reporter,
    )
    .await?;
    reporter.step(&format!(
        "Stored the SBOM unsigned as {} ({} components)",
        unsigned.tag, unsigned.components
    ));
    Ok(())
}

/// What the summary says built a reused artifact.
const REUSED_TOOLCHAIN: &str = "none: inputs unchanged, artifact reused";
/// What `kiln publish`'s summary says built the artifact it signed.
const PUBLISHED_TOOLCHAIN: &str = "none here: built by `kiln build --no-publish`";

/// Saves the caches (`failed`: the build itself did not succeed, so only what is still
/// worth it). Never fails: problems become warnings.
async fn save_caches(plan: &Plan, failed: bool, outcomes: &mut Outcomes, reporter: &dyn Reporter) {
    let Some(cache) = &plan.cache else {
        return;
    };
    // Selections depend on what the build left on disk: computed again now.
    let kinds = plan
        .language
        .cache_kinds(&plan.project, &plan.options.cache, &plan.settings.home)
        .unwrap_or_else(|_| cache.kinds.clone());
    let to_save: Vec<KindPlan> = kinds
        .iter()
        .filter(|_| {
            !failed
                || plan
                    .language
                    .worth_saving_after_failure(&plan.settings.home)
        })
        .cloned()
        .collect();
    let started = Instant::now();
    let mut saved = Vec::new();
    if !to_save.is_empty() {
        let previous = to_save
            .iter()
            .map(|k| {
                outcomes
                    .restored
                    .iter()
                    .find(|r| r.kind == k.kind)
                    .and_then(|r| r.manifest.clone())
            })
            .collect();
        let request = SaveRequest {
            location: cache.location.clone(),
            kinds: to_save,
            previous,
            registry: plan.options.registry.clone(),
            local: plan.settings.home.cache(),
        };
        match save::run(request, reporter).await {
            Ok(outcome) => {
                outcomes
                    .cache_warnings
                    .extend(outcome.kinds.iter().filter_map(|k| k.warning.clone()));
                saved = outcome.kinds;
            }
            Err(err) => {
                let warning = format!("cache: {}; not saved", one_line(&err));
                reporter.warn(&warning);
                outcomes.cache_warnings.push(warning);
            }
        }
    }
    outcomes.cache = Some(CacheSummary {
        store: cache.location.to_string(),
        scope: plan.options.cache.scope.name.clone(),
        read_scopes: plan.options.cache.scope.reads.clone(),
        kinds: kinds
            .iter()
            .map(|kind| {
                let restored = outcomes.restored.iter().find(|r| r.kind == kind.kind);
                let saved = saved.iter().find(|s| s.kind == kind.kind);
                crate::stages::save::kind_summary(kind, restored, saved, failed)
            })
            .collect(),
        restore_seconds: outcomes.restore_time.as_secs_f64(),
        save_seconds: started.elapsed().as_secs_f64(),
        warnings: outcomes.cache_warnings.clone(),
    });
}

/// Writes and posts the summary. The document lists the summary step itself with the
/// time it had taken when the document was made, so that what is posted, written to
/// `--summary-file` and printed is one and the same.
async fn post_summary(
    plan: &Plan,
    started: Instant,
    outcomes: &mut Outcomes,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let mut summary = document(plan, outcomes)?;
    summary.stages.push(StageTiming {
        stage: Stage::Summary,
        seconds: started.elapsed().as_secs_f64(),
        skipped: None,
    });
    summary::run(
        SummaryRequest {
            summary: &summary,
            file: plan.options.summary_file.as_deref(),
            post: plan.options.post,
            env: &plan.settings.env,
        },
        reporter,
    )
    .await?;
    outcomes.summary = Some(summary);
    Ok(())
}

/// Posts why `stage` failed where the summary would have gone, if the plan posts one.
async fn post_failure(
    plan: &Plan,
    stage: Stage,
    err: &Error,
    outcomes: &Outcomes,
    reporter: &dyn Reporter,
) {
    if !plan.runs(Stage::Summary) {
        return;
    }
    let failure = crate::platform::Failure {
        reference: plan
            .reference_for(&outcomes.version)
            .unwrap_or_else(|_| plan.reference.clone()),
        project: plan.project.name.clone(),
        version: outcomes.version.clone(),
        stage,
        causes: crate::diagnose::causes(err),
        hint: crate::diagnose::Diagnose::hint(err),
        stages: outcomes.timings.clone(),
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::platform::post(
        (&failure).into(),
        plan.options.post,
        &plan.settings.env,
        reporter,
    )
    .await;
}

/// The summary document of what the steps did so far.
fn document(plan: &Plan, outcomes: &Outcomes) -> Result<Summary, Error> {
    let Some(stored) = &outcomes.stored else {
        return unreachable_order(Stage::Summary, Stage::Store);
    };
    if plan.options.publishing != Publishing::BuildOnly
        && (outcomes.signature.is_none() || outcomes.attestation.is_none())
    {
        return unreachable_order(Stage::Summary, Stage::Attest);
    }
    let layer = stored.manifest.layers.first().ok_or_else(|| Error::Io {
        what: format!("read the artifact `{}`", stored.manifest_digest),
        source: std::io::Error::other("it has no layer"),
    })?;
    let (toolchain, facts) = match &outcomes.built {
        Some(built) => (built.toolchain.clone(), built.facts.clone()),
        None if plan.options.publishing == Publishing::PublishOnly => {
            (PUBLISHED_TOOLCHAIN.to_string(), Vec::new())
        }
        None => (REUSED_TOOLCHAIN.to_string(), Vec::new()),
    };
    Ok(Summary {
        schema_version: SCHEMA_VERSION,
        kiln_version: env!("CARGO_PKG_VERSION").to_string(),
        project: ProjectSummary {
            name: plan.project.name.clone(),
            version: outcomes.version.clone(),
            language: plan.language.name().to_string(),
            path: plan.project.root.clone(),
            entry: plan.entry(),
        },
        build: BuildSummary {
            toolchain,
            wasm_kind: if stored.config.os == build::WasmKind::Component.os() {
                "component".into()
            } else {
                "module".into()
            },
            facts: facts
                .into_iter()
                .map(|(name, value)| Fact { name, value })
                .collect(),
            isolation: outcomes.isolation.map(|kind| kind.to_string()),
        },
        artifact: ArtifactSummary {
            digest: stored.manifest_digest.clone(),
            layer_digest: layer.digest.clone(),
            size: u64::try_from(layer.size).unwrap_or_default(),
            os: stored.config.os.clone(),
            oci_reference: format!("oci:{}:{}", stored.layout.display(), stored.reference),
            layout: stored.layout.clone(),
            reference: stored.reference.clone(),
            created: Some(stored.config.created.clone()),
        },
        inputs_digest: plan.inputs.clone(),
        skipped: plan.reuse.is_some(),
        push: outcomes.push.clone(),
        signature: outcomes.signature.clone(),
        attestation: outcomes.attestation.clone(),
        cache: outcomes.cache.clone(),
        stages: outcomes.timings.clone(),
    })
}

/// kiln's scratch and output directory is never source: like cargo's `target/`, it
/// ignores itself, so nobody commits a layout by accident.
fn keep_out_of_git(kiln_dir: &std::path::Path) {
    let ignore = kiln_dir.join(".gitignore");
    if !ignore.exists() {
        let written = std::fs::create_dir_all(kiln_dir).and_then(|()| {
            std::fs::write(&ignore, "# Written by kiln: build output, not source.\n*\n")
        });
        if let Err(err) = written {
            tracing::debug!(path = %ignore.display(), %err, "could not write .gitignore");
        }
    }
}

/// What the steps that run project code must not see: kiln's signing keys, the key given
/// to sign with, registry and git credentials, and the CI's files that reach later steps.
fn secrets(plan: &Plan) -> Vec<PathBuf> {
    let env = &plan.settings.env;
    // kiln's keys, and the compiled code `kiln run` maps as native code.
    let mut paths = vec![plan.settings.home.signing(), plan.settings.home.compiled()];
    paths.extend(plan.options.signing.key.clone());
    // `KILN_SIGNING_KEY` is a path or the PEM itself.
    paths.extend(
        env.path(crate::env::KILN_SIGNING_KEY)
            .filter(|path| path.is_absolute() || path.exists()),
    );
    let home = env.path("HOME");
    paths.extend(
        env.path("DOCKER_CONFIG")
            .or_else(|| home.as_ref().map(|home| home.join(".docker"))),
    );
    paths.extend(env.path("REGISTRY_AUTH_FILE"));
    paths.extend(
        env.path("XDG_RUNTIME_DIR")
            .map(|dir| dir.join("containers")),
    );
    if let Some(home) = &home {
        paths.push(home.join(".config/containers/auth.json"));
        paths.push(home.join(".git-credentials"));
        paths.push(home.join(".config/git/credentials"));
        paths.push(home.join(".pypirc"));
    }
    for file in ["credentials.toml", "credentials"] {
        paths.push(plan.settings.home.cargo_home().join(file));
    }
    // GitHub's step files: appending to them reaches every later step.
    for name in [
        "GITHUB_ENV",
        "GITHUB_PATH",
        "GITHUB_OUTPUT",
        "GITHUB_STATE",
        "GITHUB_STEP_SUMMARY",
    ] {
        paths.extend(env.path(name));
    }
    paths.extend(plan.options.summary_file.clone());
    // actions/checkout and GitLab's runner keep the job's token in the repository's
    // config (an `extraheader`, a remote URL).
    if let Some(git_dir) = plan
        .project
        .root
        .ancestors()
        .map(|dir| dir.join(".git"))
        .find(|git| git.is_dir())
    {
        paths.push(git_dir.join("config"));
    }
    paths
}
