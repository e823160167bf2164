//! Argument conversion at the JS boundary. TypeScript validates first and reports typed errors;
//! these checks are the backstop that keeps anything malformed from reaching the kernel.

use napi::{Error, Status};

use crate::{EngineError, Target};

/// A JS exception whose message starts with a stable code the TypeScript side matches on.
pub(crate) fn coded(code: &str, message: impl std::fmt::Display) -> Error {
    Error::new(Status::GenericFailure, format!("{code}: {message}"))
}

pub(crate) fn invalid(message: impl std::fmt::Display) -> Error {
    coded("ERR_URING_INVALID_ARGUMENT", message)
}

pub(crate) fn engine_error(e: EngineError) -> Error {
    let code = match e {
        EngineError::Unavailable { .. } => "ERR_URING_UNAVAILABLE",
        EngineError::InvalidConfig(_) => "ERR_URING_INVALID_CONFIG",
        EngineError::Closed => "ERR_URING_CLOSED",
        EngineError::InvalidArgument(_) => "ERR_URING_INVALID_ARGUMENT",
        EngineError::TableFull => "ERR_URING_TABLE_FULL",
    };
    coded(code, e)
}

/// A byte offset or length from JS: a non-negative integer a double holds exactly.
pub(crate) fn position(name: &str, value: f64) -> napi::Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0 {
        Ok(value as u64)
    } else {
        Err(invalid(format!("{name} must be a non-negative safe integer, got {value}")))
    }
}

/// An fd (or a registered slot's index) from JS: never negative.
pub(crate) fn descriptor(fd: i32) -> napi::Result<i32> {
    if fd < 0 {
        Err(invalid(format!("fd {fd} is negative")))
    } else {
        Ok(fd)
    }
}

pub(crate) fn target(fd: i32, fixed: bool) -> napi::Result<Target> {
    let fd = descriptor(fd)?;
    Ok(if fixed { Target::Fixed(fd as u32) } else { Target::Fd(fd) })
}

pub(crate) fn op_id(id: i32) -> napi::Result<u64> {
    if id > 0 {
        Ok(id as u64)
    } else {
        Err(invalid(format!("op id {id} must be positive")))
    }
}
