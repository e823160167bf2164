//! Argument conversion at the JS boundary. TypeScript validates first and reports typed errors;
//! these checks are the backstop that keeps anything malformed from reaching the kernel.

use napi::bindgen_prelude::FromNapiValue;
use napi::{sys, Error, Status};

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
    // In range, an integer converts to u64 and back unchanged; NaN fails the range check. (The
    // round trip is two instructions; `fract` is a call into libm on baseline x86-64.)
    if (0.0..=9_007_199_254_740_991.0).contains(&value) && (value as u64) as f64 == value {
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

/// A 32-bit integer argument, taken exactly: N-API's own int32 and uint32 conversions wrap
/// (2^32 + 3 becomes 3, NaN becomes 0), which would turn a bad fd into another file's.
pub(crate) struct Int32(i32);
/// The unsigned twin of [`Int32`].
pub(crate) struct Uint32(u32);

/// The argument as an integer in `min..=max`.
///
/// # Safety
/// `env` and `value` must be a live env and a value of the current call.
unsafe fn integer(env: sys::napi_env, value: sys::napi_value, min: f64, max: f64) -> napi::Result<f64> {
    let mut number = 0.0;
    // SAFETY: per this function's contract; N-API reports a non-number as an error status.
    if unsafe { sys::napi_get_value_double(env, value, &mut number) } != sys::Status::napi_ok {
        return Err(invalid("expected a number"));
    }
    if number.fract() == 0.0 && number >= min && number <= max {
        Ok(number)
    } else {
        Err(invalid(format!("{number} is not an integer from {min} to {max}")))
    }
}

impl FromNapiValue for Int32 {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: called with the live env and value of this call.
        unsafe { integer(env, value, f64::from(i32::MIN), f64::from(i32::MAX)) }.map(|n| Int32(n as i32))
    }
}

impl FromNapiValue for Uint32 {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: called with the live env and value of this call.
        unsafe { integer(env, value, 0.0, f64::from(u32::MAX)) }.map(|n| Uint32(n as u32))
    }
}

impl From<Int32> for i32 {
    fn from(value: Int32) -> i32 {
        value.0
    }
}

impl From<Uint32> for u32 {
    fn from(value: Uint32) -> u32 {
        value.0
    }
}
