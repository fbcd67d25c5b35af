//! How a binary ends, as one typed reason (DESIGN §3): done or stopped on a signal (0), a
//! fatal error (1), bad settings or arguments (2), failed validation (3), timed out (124).

use std::process::ExitCode;

/// Why a run ended other than as asked.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Settings or arguments that cannot work; nothing was started.
    #[error("{0}")]
    Usage(String),
    /// `validate` (or the checks before a run) found a problem.
    #[error("{0}")]
    Validation(String),
    /// The job ran past its deadline.
    #[error("{0}")]
    TimedOut(String),
    #[error("{0:#}")]
    Fatal(#[from] anyhow::Error),
}

impl Failure {
    pub fn usage(message: impl std::fmt::Display) -> Self {
        Self::Usage(message.to_string())
    }

    /// The failure an error stands for: a [`Failure`] it carries, with the context added to
    /// it on the way up, or else a fatal one.
    pub fn from_error(e: anyhow::Error) -> Self {
        let text = format!("{e:#}");
        match e.downcast_ref::<Failure>() {
            Some(Self::Usage(_)) => Self::Usage(text),
            Some(Self::Validation(_)) => Self::Validation(text),
            Some(Self::TimedOut(_)) => Self::TimedOut(text),
            _ => Self::Fatal(e),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Validation(_) => ExitCode::from(3),
            Self::TimedOut(_) => ExitCode::from(124),
            Self::Fatal(_) => ExitCode::FAILURE,
        }
    }
}

/// The exit code of `outcome`; a failure is said on stderr in one line first.
pub fn exit(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}
