//! Completion delivery: the JS `onComplete(batch: Int32Array)` gets `[opId, result, ...]` pairs on
//! the JS thread, through a threadsafe function from the completion thread (`JsSink`, `Tsfn`), or
//! called straight from the event loop's poll of the ring (`Direct`).

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

/// A batch as JS receives it: `[opId, result, ...]`.
pub(crate) fn pairs_of(batch: &[Completion]) -> Vec<i32> {
    // Op ids come from JS as positive int32s.
    batch.iter().flat_map(|c| [c.user as i32, c.result]).collect()
}

impl Tsfn {
    /// Queues `pairs` for the JS callback, called on the JS thread in a later turn of its loop.
    pub(crate) fn queue(&self, pairs: Vec<i32>) {
        // Held through the call, so `close_calls` waits for it.
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !*open {
            // The env is going away: nobody is left to receive these completions.
            return;
        }
        let data = Box::into_raw(Box::new(pairs));
        // SAFETY: the function is alive until it is released (after a clean close joined the
        // ring's threads) or, at the env's teardown, until `close_calls`, which waits for this lock.
        let status = unsafe {
            sys::napi_call_threadsafe_function(self.raw, data.cast(), sys::ThreadsafeFunctionCallMode::nonblocking)
        };
        if status != sys::Status::napi_ok {
            // The env is going away: nobody is left to receive these completions.
            // SAFETY: the call did not take ownership of `data`.
            drop(unsafe { Box::from_raw(data) });
        }
    }
}

/// The engine's sink: flattens each batch to `[opId, result, ...]` and queues it for JS.
pub(crate) struct JsSink(pub(crate) std::sync::Arc<Tsfn>);

impl CompletionSink for JsSink {
    fn deliver(&self, batch: Vec<Completion>) {
        self.0.queue(pairs_of(&batch));
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
    let mut undefined = ptr::null_mut();
    // SAFETY (whole block): live env, per the contract.
    unsafe {
        let Some(array) = pairs_array(env, pairs) else { return };
        sys::napi_get_undefined(env, &mut undefined);
        if sys::napi_call_function(env, undefined, callback, 1, &array, ptr::null_mut()) == sys::Status::napi_pending_exception {
            uncaught(env);
        }
    }
}

/// Makes the exception a callback threw an uncaught exception, as it is from any callback the
/// event loop makes (Node would only warn of it when it ends a threadsafe function's call).
///
/// # Safety
/// `env` must be live and current on this (the JS) thread, with an exception pending.
unsafe fn uncaught(env: sys::napi_env) {
    let mut error = ptr::null_mut();
    // SAFETY: per the contract; at a worker's termination `napi_fatal_exception` does nothing.
    unsafe {
        if sys::napi_get_and_clear_last_exception(env, &mut error) == sys::Status::napi_ok {
            sys::napi_fatal_exception(env, error);
        }
    }
}

/// A fresh `Int32Array` holding a copy of `pairs`, in the current handle scope.
///
/// # Safety
/// `env` must be live and current on this (the JS) thread.
unsafe fn pairs_array(env: sys::napi_env, pairs: &[i32]) -> Option<sys::napi_value> {
    let bytes = std::mem::size_of_val(pairs);
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut array = ptr::null_mut();
    // SAFETY (whole block): live env; `data` points at `bytes` fresh bytes the ArrayBuffer owns.
    unsafe {
        if sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer) != sys::Status::napi_ok {
            return None;
        }
        ptr::copy_nonoverlapping(pairs.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
        if sys::napi_create_typedarray(env, sys::TypedarrayType::int32_array, pairs.len(), buffer, 0, &mut array)
            != sys::Status::napi_ok
        {
            return None;
        }
    }
    Some(array)
}

/// Delivery from the event loop's own poll callback (`ready_poll.rs`), for what the JS thread
/// reaps: the callback is called there, inside a callback scope of its own (so the microtasks it
/// queues, fibers resumed among them, run before the loop goes on), where the threadsafe function
/// would queue the batch for the loop's next iteration. A copy names the same handles: the one
/// its owner takes out to `destroy` ends them all.
#[derive(Clone, Copy)]
pub(crate) struct Direct {
    callback: sys::napi_ref,
    context: sys::napi_async_context,
}

impl Direct {
    /// # Safety
    /// `env` and `callback` must be the live env and a JS function of the current call.
    pub(crate) unsafe fn new(env: sys::napi_env, callback: sys::napi_value) -> napi::Result<Direct> {
        let mut name = ptr::null_mut();
        let label = "effect-uring completions";
        let mut reference = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY (whole block): valid env and function; the label outlives the call.
        unsafe {
            napi::check_status!(sys::napi_create_string_utf8(env, label.as_ptr().cast(), label.len() as isize, &mut name))?;
            napi::check_status!(sys::napi_create_reference(env, callback, 1, &mut reference))?;
            if let Err(e) = napi::check_status!(sys::napi_async_init(env, ptr::null_mut(), name, &mut context)) {
                sys::napi_delete_reference(env, reference);
                return Err(e);
            }
        }
        Ok(Direct { callback: reference, context })
    }

    /// Calls the callback with `pairs`; what it throws becomes an uncaught exception. Returns
    /// whether the callback was called: if not, the caller hands the batch on another way.
    ///
    /// # Safety
    /// On `env`'s JS thread, alive, outside any JS frame (a libuv callback), with `self` not destroyed.
    pub(crate) unsafe fn deliver(&self, env: sys::napi_env, pairs: &[i32]) -> bool {
        let mut scope = ptr::null_mut();
        let mut called = false;
        // SAFETY (whole block): a live env on its thread; every value lives in the scope opened here.
        unsafe {
            if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
                return false;
            }
            let mut callback = ptr::null_mut();
            let mut global = ptr::null_mut();
            if sys::napi_get_reference_value(env, self.callback, &mut callback) == sys::Status::napi_ok
                && sys::napi_get_global(env, &mut global) == sys::Status::napi_ok
            {
                if let Some(array) = pairs_array(env, pairs) {
                    match sys::napi_make_callback(env, self.context, global, callback, 1, &array, ptr::null_mut()) {
                        sys::Status::napi_ok => called = true,
                        sys::Status::napi_pending_exception => {
                            called = true;
                            uncaught(env);
                        }
                        _ => {}
                    }
                }
            }
            sys::napi_close_handle_scope(env, scope);
        }
        called
    }

    /// # Safety
    /// On `env`'s JS thread, alive (not its teardown), and not inside `deliver`.
    pub(crate) unsafe fn destroy(self, env: sys::napi_env) {
        // SAFETY: both were created on this env by `new` and are released once (this consumes `self`).
        unsafe {
            sys::napi_async_destroy(env, self.context);
            sys::napi_delete_reference(env, self.callback);
        }
    }
}

// SAFETY: used on the JS thread only; the host that holds it is shared with other threads only
// for its ring, and keeps this behind a mutex.
unsafe impl Send for Direct {}
