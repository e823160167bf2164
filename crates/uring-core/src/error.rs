use std::fmt;

/// Failures the engine reports synchronously, before anything reaches the kernel.
/// Kernel failures of an operation come back as a negative errno in its [`crate::Completion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// A ring could not be made: `io_uring_setup` blocked by seccomp or
    /// `kernel.io_uring_disabled`, too old a kernel, out of locked memory, or no threads to be
    /// had. Holds the positive errno and the step that failed.
    Unavailable { errno: i32, step: &'static str },
    /// A setting that cannot work; says which and why.
    InvalidConfig(String),
    /// The ring is closing or closed.
    Closed,
    /// An argument the kernel must never see.
    InvalidArgument(String),
    /// Every slot of the registered-file table is in use.
    TableFull,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Unavailable { errno, step } => write!(
                f,
                "io_uring is unavailable here: {step} failed with errno {errno} ({})",
                std::io::Error::from_raw_os_error(*errno)
            ),
            EngineError::InvalidConfig(why) => write!(f, "invalid ring configuration: {why}"),
            EngineError::Closed => f.write_str("the ring is closed"),
            EngineError::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            EngineError::TableFull => f.write_str("the registered-file table is full"),
        }
    }
}

impl std::error::Error for EngineError {}
