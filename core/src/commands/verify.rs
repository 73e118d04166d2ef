//! `kiln verify TARGET`: signature, attestation and policy; exit 1 on any failure.

use kiln_cli::output::{VerifiedSbom, VerifyOutput};
use kiln_cli::{OutputFormat, PolicyArgs, VerifyArgs};

use super::{Printer, registry_options};
use crate::env::Env;
use crate::error::Error;
use crate::registry::{Registry, RegistryError, RegistryOptions};
use crate::reporter::Reporter as _;
use crate::settings::KilnHome;
use crate::sign::Verifier;
use crate::sign::attached;
use crate::sign::keyring::Keys;
use crate::verify::{self, Policy, Verified};
use oci_client::RegistryOperation;

pub async fn run(
    args: VerifyArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let (key, origin) = verifier(&args.policy, &env, printer)?;
    let verified = verify(
        Source::of(&args.target),
        args.layout.as_deref(),
        &key,
        &policy(&args.policy),
        registry_options(&args.registry, &env, Some(&args.target)),
    )
    .await?;
    printer.info(&format!(
        "verified   {} signed by {origin} ({})",
        verified.digest, verified.signature_tag
    ));
    match &verified.sbom {
        Some(sbom) => printer.info(&format!(
            "verified   CycloneDX SBOM attestation: {} components, licenses {} ({})",
            sbom.components,
            sbom.licenses.iter().cloned().collect::<Vec<_>>().join(", "),
            sbom.tag
        )),
        None => printer.warn("no CycloneDX SBOM attestation (pass `--require-sbom` to refuse)"),
    }
    super::data(
        output,
        printer,
        &VerifyOutput {
            digest: verified.digest,
            signature_tag: verified.signature_tag,
            signer: origin,
            sbom: verified.sbom.map(|sbom| VerifiedSbom {
                tag: sbom.tag,
                components: sbom.components,
                licenses: sbom.licenses,
            }),
        },
    );
    Ok(0)
}

/// The public key, or the keyless policy, that `--key` or `--certificate-*` describe; and
/// how to name who signed.
pub fn verifier(
    args: &PolicyArgs,
    env: &Env,
    printer: &Printer,
) -> Result<(Verifier, String), Error> {
    let Some(identity) = &args.certificate_identity else {
        let local_dir = KilnHome::from_env(env)?.signing();
        let keys = Keys {
            env,
            local_dir: &local_dir,
        };
        let (key, origin) = crate::sign::keyring::verifier(args.key.as_deref(), &keys)?;
        return Ok((Verifier::Key(key), origin.to_string()));
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|source| Error::Io {
            what: format!("read `{}`", path.display()),
            source,
        })
    };
    // clap requires the issuer and the chain with an identity.
    let usage = |flag: &str| Error::Usage {
        message: format!("`--certificate-identity` needs `{flag}`"),
        hint: format!("pass `{flag}`"),
    };
    let issuer = args
        .certificate_oidc_issuer
        .as_deref()
        .ok_or_else(|| usage("--certificate-oidc-issuer"))?;
    let chain = read(
        args.certificate_chain
            .as_deref()
            .ok_or_else(|| usage("--certificate-chain"))?,
    )?;
    let rekor = args.rekor_public_key.as_deref().map(read).transpose()?;
    if rekor.is_none() {
        // As cosign: the log's signed entry timestamp is what proves when the short-lived
        // certificate signed; without it the time is the signer's own claim.
        if !args.insecure_ignore_tlog {
            return Err(Error::Usage {
                message: "Keyless verification needs the transparency log's public key".into(),
                hint: "pass `--rekor-public-key REKOR.pem` (the log's key), or \
                       `--insecure-ignore-tlog` to accept signatures whose log entries are \
                       not authenticated"
                    .into(),
            });
        }
        printer.warn(
            "--insecure-ignore-tlog: the signatures' Rekor entries are checked against the \
             signatures but their signed entry timestamps are not verified",
        );
    }
    let policy = crate::sign::keyless::Policy::new(identity, issuer, &chain, rekor.as_deref())
        .map_err(Error::Keyless)?;
    Ok((
        Verifier::Keyless(policy),
        format!("keyless: {identity} from {issuer}"),
    ))
}

/// What `--deny-license` and `--require-sbom` ask of the artifact.
pub fn policy(args: &PolicyArgs) -> Policy {
    Policy {
        deny_licenses: args.deny_licenses.clone(),
        require_sbom: args.require_sbom,
    }
}

/// Where the artifact to verify is.
#[derive(Debug)]
enum Source {
    /// `REGISTRY/REPOSITORY[:TAG|@DIGEST]`.
    Registry(oci_client::Reference),
    /// Anything [`crate::target::locate`] finds.
    Local(String),
}

impl Source {
    /// A registry reference when `target` names a registry host the way Docker tells
    /// one (a first component with a `.` or a `:`, or `localhost`) and is not a path.
    fn of(target: &str) -> Source {
        if crate::registry::looks_like_reference(target)
            && !target.starts_with("oci:")
            && !std::path::Path::new(target).exists()
            && let Ok(reference) = target.parse()
        {
            return Source::Registry(reference);
        }
        Source::Local(target.to_string())
    }
}

/// Verifies `source` with `key` (a public key or a keyless policy) and `policy`.
async fn verify(
    source: Source,
    layout: Option<&std::path::Path>,
    key: &Verifier,
    policy: &Policy,
    registry_options: RegistryOptions,
) -> Result<Verified, Error> {
    match source {
        Source::Local(target) => {
            let located = crate::target::locate(&target, layout, &registry_options.env).await?;
            Ok(verify::verify_in_layout(
                &located.layout,
                &located.manifest_digest,
                key,
                policy,
            )?)
        }
        Source::Registry(reference) => {
            let scratch = tempfile::tempdir().map_err(|source| Error::Io {
                what: "create a scratch directory".into(),
                source,
            })?;
            let layout = crate::oci::layout::Layout::create(scratch.path())?;
            let registry =
                Registry::connect(reference, RegistryOperation::Pull, registry_options).await?;
            let silent = crate::reporter::Silent;
            // As cosign: the signature on the manifest digest first, the layers only
            // once it verifies, so an unsigned or forged artifact costs one manifest.
            let manifest =
                registry
                    .fetch_image_manifest()
                    .await?
                    .ok_or_else(|| RegistryError::NotFound {
                        reference: registry.reference().whole(),
                    })?;
            let digest = manifest.digest.clone();
            attached::pull_these(&layout, &registry, &digest, &["sig"], &silent).await?;
            verify::check_signature(&layout, &digest, key)?;
            registry.pull_blobs(&layout, &manifest, &silent).await?;
            manifest.store(&layout, "artifact")?;
            attached::pull_these(&layout, &registry, &digest, &["att"], &silent).await?;
            Ok(verify::verify_in_layout(&layout, &digest, key, policy)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_signature_is_checked_before_any_layer_is_fetched() {
        use crate::registry::fake::{fake, manifest_with, serve_manifest};
        let (server, host) = fake().await;
        let layer = format!("sha256:{}", "a".repeat(64));
        serve_manifest(
            &server,
            &manifest_with(vec![serde_json::json!({
                "mediaType": "application/wasm",
                "digest": layer,
                "size": 1 << 30
            })]),
        )
        .await;
        // No `.sig` (the fake answers 404 to the rest).
        let (_, public) = crate::sign::tests::key_pair();
        let reference = crate::registry::parse_reference(&format!("{host}/acme/app"), "1").unwrap();
        let options = RegistryOptions {
            insecure: vec![host.clone()],
            retries: 0,
            ..RegistryOptions::default()
        };
        let err = verify(
            Source::Registry(reference),
            None,
            &Verifier::Key(public.clone()),
            &Policy::default(),
            options,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, Error::Verify(verify::VerifyFailure::Unsigned { .. })),
            "{err}"
        );
        let requested: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| r.url.path().to_string())
            .collect();
        assert!(
            requested.iter().any(|p| p.contains(".sig")),
            "{requested:?}"
        );
        assert!(
            !requested.iter().any(|p| p.contains("/blobs/")),
            "{requested:?}"
        );
    }

    #[test]
    fn registry_references_are_told_from_local_targets() {
        assert!(matches!(
            Source::of("localhost:5000/app:1.0"),
            Source::Registry(_)
        ));
        assert!(matches!(
            Source::of("ghcr.io/acme/app"),
            Source::Registry(_)
        ));
        assert!(matches!(Source::of("app:1.0"), Source::Local(_)));
        assert!(matches!(Source::of("oci:/tmp/x:app"), Source::Local(_)));
        assert!(matches!(Source::of("."), Source::Local(_)));
    }
}
