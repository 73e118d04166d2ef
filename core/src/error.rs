//! What every user-facing error can add: a hint, and whether it was the user's input.
//!
//! Errors stay `thiserror` enums, one per stage. The binary walks an error's chain and
//! asks each cause it knows for a [`Diagnose::hint`] and for its [`Diagnose::blame`].

/// Who is at fault, which decides the exit code (README: "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The project, its configuration or the environment the user controls: exit 1.
    User,
    /// A defect or an unexpected condition inside kiln: exit 2.
    Internal,
}

/// Extra knowledge an error carries for the person reading it.
pub trait Diagnose: std::error::Error {
    /// The next thing to try, ideally an exact command.
    fn hint(&self) -> Option<String> {
        None
    }
    /// Whose input caused the error.
    fn blame(&self) -> Blame {
        Blame::User
    }
}

/// The [`Diagnose`] view of `err`, when it is one of kiln's error types.
pub fn diagnose_of<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Diagnose> {
    macro_rules! try_as {
        ($($ty:ty),* $(,)?) => {
            $(if let Some(e) = err.downcast_ref::<$ty>() { return Some(e); })*
        };
    }
    try_as!(
        crate::settings::SettingsError,
        crate::stages::detect::DetectError,
        crate::stages::build::rust::RustBuildError,
        crate::stages::build::python::PythonBuildError,
        crate::stages::package::PackageError,
        crate::oci::layout::LayoutError,
        crate::runner::RunError,
        crate::target::TargetError,
        crate::registry::RegistryError,
        crate::registry::credentials::CredentialError,
        crate::sbom::SbomError,
        crate::sign::KeyError,
        crate::sign::KeyringError,
        crate::sign::KeylessError,
        crate::sign::SignError,
        crate::sign::VerifyError,
        crate::verify::VerifyFailure,
        crate::platform::SummaryFileError,
    );
    None
}

/// The first hint and blame found walking `err`'s chain from the top.
pub fn explain(err: &anyhow::Error) -> (Option<String>, Blame) {
    let mut hint = None;
    let mut blame = None;
    for cause in err.chain() {
        if let Some(d) = diagnose_of(cause) {
            blame.get_or_insert(d.blame());
            if hint.is_none() {
                hint = d.hint();
            }
        }
    }
    (hint, blame.unwrap_or(Blame::Internal))
}

/// An error and its causes on one line, `a: b: c`, for warnings and logs; a cause whose
/// text the line already holds is not repeated.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
