//! The one error a kiln command ends with.
//!
//! Each stage and module has its own `thiserror` enum implementing [`Diagnose`]. The one
//! top-level [`Error`] wraps each of them with `#[from]`, and its own [`Diagnose`] impl
//! matches every variant: a new error type cannot reach the user without the compiler
//! asking for its hint and blame.

pub use crate::diagnose::{Blame, Diagnose, one_line};

use crate::isolation::IsolationError;
use crate::oci::layout::LayoutError;
use crate::platform::SummaryFileError;
use crate::registry::RegistryError;
#[cfg(feature = "runtime")]
use crate::runner::RunError;
use crate::settings::SettingsError;
use crate::sign::{KeylessError, KeyringError};
use crate::stages::attest::AttestError;
use crate::stages::build::BuildError;
use crate::stages::detect::DetectError;
use crate::stages::package::PackageError;
use crate::stages::push::PushError;
use crate::stages::restore::RestoreError;
use crate::stages::save::SaveError;
use crate::stages::sign::SignError;
use crate::stages::store::StoreError;
use crate::stages::summary::SummaryError;
use crate::target::TargetError;
use crate::verify::VerifyFailure;

/// Every error a kiln command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Isolation(#[from] IsolationError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Attest(#[from] AttestError),
    #[error(transparent)]
    Save(#[from] SaveError),
    #[error(transparent)]
    Summary(#[from] SummaryError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[cfg(feature = "runtime")]
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Verify(#[from] VerifyFailure),
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Keyless(#[from] KeylessError),
    #[error(transparent)]
    SummaryFile(#[from] SummaryFileError),
    #[error("`{given}` is not a valid artifact reference")]
    Reference { given: String },
    #[error(
        "`{}` holds no artifact built from these sources (inputs {inputs}){}",
        layout.display(),
        match recorded {
            Some(recorded) => format!(": `{reference}` records inputs {recorded}"),
            None => String::new(),
        }
    )]
    NothingToPublish {
        layout: std::path::PathBuf,
        reference: String,
        inputs: String,
        recorded: Option<String>,
    },
    #[error(
        "The project's version would tag the artifact `{tag}`, a tag kiln does not let project files choose"
    )]
    ReservedTag { tag: String },
    #[error("Failed to {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A command used in a way that cannot work, with what to do instead.
    #[error("{message}")]
    Usage { message: String, hint: String },
}

impl Diagnose for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Settings(e) => e.hint(),
            Error::Detect(e) => e.hint(),
            Error::Restore(e) => e.hint(),
            Error::Isolation(e) => e.hint(),
            Error::Build(e) => e.hint(),
            Error::Package(e) => e.hint(),
            Error::Store(e) => e.hint(),
            Error::Push(e) => e.hint(),
            Error::Sign(e) => e.hint(),
            Error::Attest(e) => e.hint(),
            Error::Save(e) => e.hint(),
            Error::Summary(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Layout(e) => e.hint(),
            Error::Target(e) => e.hint(),
            #[cfg(feature = "runtime")]
            Error::Run(e) => e.hint(),
            Error::Verify(e) => e.hint(),
            Error::Keyring(e) => e.hint(),
            Error::Keyless(e) => e.hint(),
            Error::SummaryFile(e) => e.hint(),
            Error::Reference { .. } => Some("use `NAME[:TAG]`".into()),
            Error::NothingToPublish { recorded, .. } => Some(match recorded {
                Some(_) => "the artifact was built from other sources, another toolchain or \
                            other settings than this checkout: publish from the commit the \
                            build job built, with the same toolchain"
                    .into(),
                None => "run `kiln build --no-publish` first, and hand its layout to this job \
                         (`--layout`)"
                    .into(),
            }),
            Error::ReservedTag { tag } => Some(format!(
                "give the project a release version, or choose the tag on the command line: \
                 `kiln build --tag NAME:{tag}`"
            )),
            Error::Io { .. } => None,
            Error::Usage { hint, .. } => Some(hint.clone()),
        }
    }

    fn blame(&self) -> Blame {
        match self {
            Error::Settings(e) => e.blame(),
            Error::Detect(e) => e.blame(),
            Error::Restore(e) => e.blame(),
            Error::Isolation(e) => e.blame(),
            Error::Build(e) => e.blame(),
            Error::Package(e) => e.blame(),
            Error::Store(e) => e.blame(),
            Error::Push(e) => e.blame(),
            Error::Sign(e) => e.blame(),
            Error::Attest(e) => e.blame(),
            Error::Save(e) => e.blame(),
            Error::Summary(e) => e.blame(),
            Error::Registry(e) => e.blame(),
            Error::Layout(e) => e.blame(),
            Error::Target(e) => e.blame(),
            #[cfg(feature = "runtime")]
            Error::Run(e) => e.blame(),
            Error::Verify(e) => e.blame(),
            Error::Keyring(e) => e.blame(),
            Error::Keyless(e) => e.blame(),
            Error::SummaryFile(e) => e.blame(),
            Error::Reference { .. }
            | Error::ReservedTag { .. }
            | Error::Usage { .. }
            | Error::NothingToPublish { .. } => Blame::User,
            Error::Io { .. } => Blame::Internal,
        }
    }
}
