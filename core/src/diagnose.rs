//! What every user-facing error can add: a hint, and whether it was the user's input.
//!
//! Each stage and module has its own `thiserror` enum implementing [`Diagnose`]; the
//! top-level [`crate::error::Error`] wraps them all. This module depends on nothing in
//! kiln, so every module can implement the trait without importing the errors of others.

/// Who is at fault, which decides the exit code (README: "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The project, its configuration or the environment the user controls: exit 1.
    User,
    /// A defect or an unexpected condition inside kiln: exit 2.
    Internal,
}

impl Blame {
    /// The process exit code for a failure with this blame.
    pub fn exit_code(self) -> u8 {
        match self {
            Blame::User => 1,
            Blame::Internal => 2,
        }
    }
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

/// An error's message, then each of its causes, outermost first; a cause that repeats the
/// one before it (an `#[error(transparent)]` wrapper's) is listed once.
pub fn causes(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if out.last() != Some(&text) {
            out.push(text);
        }
        source = cause.source();
    }
    out
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
