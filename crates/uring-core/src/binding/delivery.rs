//! Completion delivery: the completion thread hands each batch to a threadsafe function, which
//! calls the JS `onComplete(batch: Int32Array)` with `[opId, result, ...]` pairs on the JS thread.

use std::ffi::c_void;
use std::ptr;
use std::sync::Mutex;

use napi::sys;

use crate::{Completion, CompletionSink};

/// A threadsafe function handle. Raw N-API is used for a non-blocking, unbounded queue and for
/// explicit ref/unref/release, which the JS side toggles as ops become pending.
pub(crate) struct Tsfn {
    raw: sys::napi_threadsafe_function,
    /// Whether calls may be made. Node frees the function at the env's teardown whoever still
    /// holds it; `close_calls` shuts this (under the lock, so no call is under way) before then.
    open: Mutex<bool>,
}

// SAFETY: N-API documents threadsafe functions as callable from any thread.
unsafe impl Send for Tsfn {}
// SAFETY: as above; `napi_call_threadsafe_function` is thread-safe.
unsafe impl Sync for Tsfn {}

impl Tsfn {
    /// # Safety
    /// `env` and `callback` must be the live env and a JS function of the current call.
    pub(crate) unsafe fn new(env: sys::napi_env, callback: sys::napi_value) -> napi::Result<Tsfn> {
        let mut name = ptr::null_mut();
        let label = "effect-uring completions";
        // SAFETY: valid env; the label outlives the call.
        napi::check_status!(unsafe {
            sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name)
        })?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid env and function; queue size 0 means unbounded, so calls never block.
        napi::check_status!(unsafe {
            sys::napi_create_threadsafe_function(
                env,
                callback,
                ptr::null_mut(),
                name,
                0,
                1,
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                Some(call_js),
                &mut raw,
            )
        })?;
        // Idle rings must not keep the process alive; the JS side refs while ops are pending.
        // SAFETY: `raw` was just created on this thread.
        napi::check_status!(unsafe { sys::napi_unref_threadsafe_function(env, raw) })?;
        Ok(Tsfn { raw, open: Mutex::new(true) })
    }

    /// # Safety
    /// Must run on the JS thread that created the function, before `release`.
    pub(crate) unsafe fn set_ref(&self, env: sys::napi_env, referenced: bool) -> napi::Result<()> {
        // SAFETY: per this function's contract.
        napi::check_status!(unsafe {
            if referenced {
                sys::napi_ref_threadsafe_function(env, self.raw)
            } else {
                sys::napi_unref_threadsafe_function(env, self.raw)
            }
        })
    }

    /// Lets the function finalize once its queued batches have been delivered.
    pub(crate) fn release(&self) {
        // SAFETY: called once (`Host::released`), and only after a clean close joined the ring's
        // threads, the only other users.
        unsafe { sys::napi_release_threadsafe_function(self.raw, sys::ThreadsafeFunctionReleaseMode::release) };
    }

    /// Makes every later `deliver` drop its batch, once any call under way has returned: for the
    /// env's teardown, after which Node frees the function even if a thread still holds it (the
    /// completion thread of a ring whose close gave up on ops may deliver them meanwhile).
    pub(crate) fn close_calls(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }
}

/// The engine's sink: flattens each batch to `[opId, result, ...]` and queues it for JS.
pub(crate) struct JsSink(pub(crate) std::sync::Arc<Tsfn>);

impl CompletionSink for JsSink {
    fn deliver(&self, batch: Vec<Completion>) {
        let mut pairs: Vec<i32> = Vec::with_capacity(batch.len() * 2);
        for c in batch {
            // Op ids come from JS as positive int32s.
            pairs.push(c.user as i32);
            pairs.push(c.result);
        }
        // Held through the call, so `close_calls` waits for it.
        let open = self.0.open.lock().unwrap_or_else(|p| p.into_inner());
        if !*open {
            // The env is going away: nobody is left to receive these completions.
            return;
        }
        let data = Box::into_raw(Box::new(pairs));
        // SAFETY: the function is alive until it is released (after a clean close joined the
        // ring's threads) or, at the env's teardown, until `close_calls`, which waits for this lock.
        let status = unsafe {
            sys::napi_call_threadsafe_function(
                self.0.raw,
                data.cast(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if status != sys::Status::napi_ok {
            // The env is going away: nobody is left to receive these completions.
            // SAFETY: the call did not take ownership of `data`.
            drop(unsafe { Box::from_raw(data) });
        }
    }
}

unsafe extern "C" fn call_js(env: sys::napi_env, callback: sys::napi_value, _ctx: *mut c_void, data: *mut c_void) {
    // SAFETY: `data` is the box queued by `deliver`, handed over exactly once.
    let pairs = unsafe { Box::from_raw(data.cast::<Vec<i32>>()) };
    if env.is_null() || callback.is_null() {
        return;
    }
    // Nothing below may unwind into Node.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: a live env on the JS thread, inside a threadsafe-function callback.
        unsafe { deliver_pairs(env, callback, &pairs) };
    });
}

/// Calls `callback` with a fresh `Int32Array` copy of `pairs`.
///
/// # Safety
/// `env` must be live and current on this (the JS) thread, and `callback` a function value of it.
unsafe fn deliver_pairs(env: sys::napi_env, callback: sys::napi_value, pairs: &[i32]) {
    let bytes = std::mem::size_of_val(pairs);
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut array = ptr::null_mut();
    let mut undefined = ptr::null_mut();
    // SAFETY (whole block): live env; `data` points at `bytes` fresh bytes the ArrayBuffer owns.
    unsafe {
        if sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer) != sys::Status::napi_ok {
            return;
        }
        ptr::copy_nonoverlapping(pairs.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
        if sys::napi_create_typedarray(env, sys::TypedarrayType::int32_array, pairs.len(), buffer, 0, &mut array)
            != sys::Status::napi_ok
        {
            return;
        }
        sys::napi_get_undefined(env, &mut undefined);
        // A throwing callback surfaces as an uncaught exception in Node, as any callback would.
        sys::napi_call_function(env, undefined, callback, 1, &array, ptr::null_mut());
    }
}
