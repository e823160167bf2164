//! The per-op entry points, `read`, `write` and `flush`, as raw N-API functions.
//!
//! A `#[napi]` method of napi-rs 3 does borrow bookkeeping on every call: it allocates a scope,
//! records the receiver in a process-wide mutex-guarded map, and drops it all again. That costs
//! about 0.4 µs a call here, and a read that completes on the spot makes two calls (`read`, then
//! `flush`). These functions skip it: each ring defines them as own properties of its JS object,
//! and their data pointer is the ring's [`Hot`], so they never unwrap `this` and cannot be handed
//! another object's memory. Arguments are converted with napi-rs's own conversions, errors are
//! thrown as napi-rs throws them, and a panic becomes a JS exception here as it does there.

use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::{panic_to_error, FromNapiValue, JsError};
use napi::{sys, Result};

use super::args::{engine_error, op_id, position, target};
use super::native_ring::Host;
use super::views::{Bytes, I32s};
use crate::{Completion, Op};

/// What the hot functions of one ring share: the ring, and the buffer `flush` reaps into.
pub(crate) struct Hot {
    host: Arc<Host>,
    /// Completions reaped inline by `flush`; kept to reuse its capacity. Only the JS thread
    /// that owns the ring calls these functions, so a `RefCell` is enough.
    done: RefCell<Vec<Completion>>,
}

impl Hot {
    fn submit(&self, id: i32, op: Op) -> Result<f64> {
        let key = self.host.ring.submit(op_id(id)?, op).map_err(engine_error)?;
        Ok(key as f64)
    }

    fn read(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, offset: f64, exact: bool) -> Result<f64> {
        // SAFETY: the JS client keeps `buf` referenced in its pending table until this op's
        // completion has been delivered (see src/internal/RingClient.ts).
        let memory = unsafe { buf.lend() };
        let offset = position("offset", offset)?;
        let target = target(fd, fixed)?;
        self.submit(id, if exact { Op::read_exact(target, memory, offset) } else { Op::read(target, memory, offset) })
    }

    fn write(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, offset: f64, all: bool) -> Result<f64> {
        // SAFETY: as for `read`.
        let memory = unsafe { buf.lend() };
        let offset = position("offset", offset)?;
        let target = target(fd, fixed)?;
        self.submit(id, if all { Op::write_all(target, memory, offset) } else { Op::write(target, memory, offset) })
    }

    /// Submits everything queued; when the submission thread is idle, this thread submits and
    /// reaps itself and writes the completions already there to `out` as `[opId, result]` pairs.
    /// Returns their count. An `out` shorter than one pair only wakes the submission thread.
    fn flush(&self, out: I32s) -> Result<f64> {
        let out = out.as_mut_slice();
        if out.len() < 2 {
            self.host.ring.flush();
            return Ok(0.0);
        }
        let mut done = self.done.borrow_mut();
        self.host.ring.submit_and_reap(&mut done, out.len() / 2);
        let count = done.len();
        for (pair, c) in out.chunks_exact_mut(2).zip(done.drain(..)) {
            // Op ids come from JS as positive int32s.
            pair[0] = c.user as i32;
            pair[1] = c.result;
        }
        Ok(count as f64)
    }
}

/// Converts argument `$i` of `$argv` to `$ty` with napi-rs's conversion for it; a value of
/// another type is an invalid argument, with the code the TypeScript side matches on.
macro_rules! arg {
    ($env:expr, $argv:expr, $i:expr, $ty:ty) => {
        // SAFETY: the env and a value of the current call.
        unsafe { <$ty as FromNapiValue>::from_napi_value($env, $argv[$i]) }.map_err(|e| {
            if e.reason.starts_with("ERR_URING_") { e } else { super::args::invalid(format!("argument {}: {}", $i, e.reason)) }
        })?
    };
}

/// The body shared by the hot functions: fetch `N` arguments and the ring, run `f` with panics
/// caught, and return its number or throw its error.
///
/// # Safety
/// `env` and `info` must be those of a call to a function `define` created.
unsafe fn call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    f: impl FnOnce(&Hot, &[sys::napi_value; N]) -> Result<f64>,
) -> sys::napi_value {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    // SAFETY: per this function's contract; N-API fills missing arguments with `undefined`.
    let status = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) };
    let result = if status != sys::Status::napi_ok || data.is_null() {
        Err(super::args::invalid("could not read the call's arguments"))
    } else {
        // SAFETY: `define` set `data` to an `Arc<Hot>` that this function object keeps alive.
        let hot = unsafe { &*data.cast::<Hot>() };
        catch_unwind(AssertUnwindSafe(|| f(hot, &argv))).unwrap_or_else(|panic| Err(panic_to_error(panic)))
    };
    let mut value = ptr::null_mut();
    match result {
        // SAFETY: a live env; on failure `value` stays null, which N-API reads as `undefined`.
        Ok(number) => unsafe {
            sys::napi_create_double(env, number, &mut value);
        },
        // SAFETY: a live env on the JS thread.
        Err(error) => unsafe { JsError::from(error).throw_into(env) },
    }
    value
}

unsafe extern "C" fn read(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let body = |hot: &Hot, a: &[sys::napi_value; 6]| {
        hot.read(arg!(env, a, 0, i32), arg!(env, a, 1, i32), arg!(env, a, 2, bool), arg!(env, a, 3, Bytes), arg!(env, a, 4, f64), arg!(env, a, 5, bool))
    };
    // SAFETY: called by N-API as the function `define` created.
    unsafe { call(env, info, body) }
}

unsafe extern "C" fn write(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let body = |hot: &Hot, a: &[sys::napi_value; 6]| {
        hot.write(arg!(env, a, 0, i32), arg!(env, a, 1, i32), arg!(env, a, 2, bool), arg!(env, a, 3, Bytes), arg!(env, a, 4, f64), arg!(env, a, 5, bool))
    };
    // SAFETY: called by N-API as the function `define` created.
    unsafe { call(env, info, body) }
}

unsafe extern "C" fn flush(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    let body = |hot: &Hot, a: &[sys::napi_value; 1]| hot.flush(arg!(env, a, 0, I32s));
    // SAFETY: called by N-API as the function `define` created.
    unsafe { call(env, info, body) }
}

/// Drops the `Arc<Hot>` a hot function held, when that function is collected.
unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Arc::into_raw` that `define` gave this function, released once.
    drop(unsafe { Arc::from_raw(data.cast::<Hot>().cast_const()) });
}

/// Defines `read`, `write` and `flush` on `object` (the ring's JS object), over `host`.
///
/// # Safety
/// `env` and `object` must be the live env and an object of the current call.
pub(crate) unsafe fn define(env: sys::napi_env, object: sys::napi_value, host: Arc<Host>) -> Result<()> {
    type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;
    let hot = Arc::new(Hot { host, done: RefCell::new(Vec::new()) });
    let functions: [(&CStr, Callback); 3] = [(c"read", read), (c"write", write), (c"flush", flush)];
    for (name, callback) in functions {
        let data = Arc::into_raw(Arc::clone(&hot)).cast_mut().cast::<c_void>();
        let mut function = ptr::null_mut();
        // SAFETY (whole block): live env and object; `name` is NUL-terminated; `data` stays valid
        // until `release` runs for this very function, and is released by hand if it never will.
        unsafe {
            let created = sys::napi_create_function(env, name.as_ptr(), name.to_bytes().len() as isize, Some(callback), data, &mut function);
            if created != sys::Status::napi_ok {
                release(env, data, ptr::null_mut());
                return Err(napi::Error::from_reason("could not create the ring's functions"));
            }
            if sys::napi_add_finalizer(env, function, data, Some(release), ptr::null_mut(), ptr::null_mut()) != sys::Status::napi_ok {
                release(env, data, ptr::null_mut());
                return Err(napi::Error::from_reason("could not create the ring's functions"));
            }
            napi::check_status!(sys::napi_set_named_property(env, object, name.as_ptr(), function))?;
        }
    }
    Ok(())
}
