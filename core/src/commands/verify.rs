//! `kiln verify TARGET`: signature, attestation and policy; exit 1 on any failure.

use kiln_cli::output::{VerifiedSbom, VerifyOutput};
use kiln_cli::{OutputFormat, PolicyArgs, VerifyArgs};

use super::{Printer, registry_options};
use crate::env::Env;
use crate::reporter::Reporter as _;
use crate::error::Error;
use crate::settings::KilnHome;
use crate::sign::Verifier;
use crate::sign::keyring::Keys;
use crate::verify::{self, Policy, Source};

pub async fn run(
    args: VerifyArgs,
    env: Env,
    output: OutputFormat,
    printer: &Printer,
) -> Result<u8, Error> {
    let (key, origin) = verifier(&args.policy, &env, printer)?;
    let verified = verify::verify(
        Source::of(&args.target),
        args.layout.as_deref(),
        &key,
        &policy(&args.policy),
        registry_options(&args.registry, &env),
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
        let local_dir = KilnHome::from_env(env).signing();
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
        printer.warn(
            "no `--rekor-public-key`: the signatures' Rekor entries are checked against the \
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
