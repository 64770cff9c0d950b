//! One error type for the whole engine. Messages are written for the person who has to act on
//! them (a visitor, a workshop attendee, a test), not for the programmer.

/// Everything that can go wrong in bitsmooth, with a message that says what and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file is corrupt, truncated, or not a bitsmooth dataset.
    #[error("dataset file: {0}")]
    Data(String),
    /// A model file is corrupt, truncated, has wrong shapes or is not a bitsmooth model.
    #[error("model file: {0}")]
    Model(String),
    /// An argument is outside its documented range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// File-system problems (CLI only).
    #[error("{0}")]
    Io(String),
    /// The GPU executor: no adapter, a refused device, a lost device or a shader error.
    #[error("GPU: {0}")]
    Gpu(String),
    /// Tensor library failures (shape mismatches inside the engine).
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
