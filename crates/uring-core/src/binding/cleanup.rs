//! The env cleanup hook that closes a ring whose worker (or process) ends while it is open, and
//! then the fds the ring handed to JavaScript that JavaScript did not close.
//! Registered through N-API itself: napi-rs's `add_env_cleanup_hook` leaks the hook's data, and so
//! its `Arc<Host>`, so a ring closed cleanly was never dropped (its fd, mappings and registered
//! files stayed until the process exited).

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use napi::{sys, Error, Result};

use super::native_ring::Host;

/// A registered hook and the count of the host it owns.
pub(crate) struct CleanupHook {
    data: *mut Arc<Host>,
}

impl CleanupHook {
    /// Registers the hook that closes `host`, waiting for the kernel, at the env's teardown.
    ///
    /// # Safety
    /// `env` must be the live env of the current call.
    pub(crate) unsafe fn add(env: sys::napi_env, host: Arc<Host>) -> Result<CleanupHook> {
        let data = Box::into_raw(Box::new(host));
        // SAFETY: a live env (contract); `data` stays valid until `run` or `remove` takes it back.
        let status = unsafe { sys::napi_add_env_cleanup_hook(env, Some(run), data.cast()) };
        if status != sys::Status::napi_ok {
            // SAFETY: not registered, so this is the only owner of the box.
            drop(unsafe { Box::from_raw(data) });
            return Err(Error::from_reason("could not register the ring's env cleanup hook"));
        }
        Ok(CleanupHook { data })
    }

    /// Unregisters the hook and drops its count of the host.
    ///
    /// # Safety
    /// `env` must be the live env the hook was added to, on its JS thread, before its teardown.
    pub(crate) unsafe fn remove(self, env: sys::napi_env) -> Result<()> {
        // SAFETY: per the contract; the function and data are those `add` registered.
        let status = unsafe { sys::napi_remove_env_cleanup_hook(env, Some(run), self.data.cast()) };
        if status != sys::Status::napi_ok {
            // Still registered: the box stays for the hook to take.
            return Err(Error::from_reason("could not remove the ring's env cleanup hook"));
        }
        // SAFETY: unregistered, so `run` will never take the box: this is its only owner.
        drop(unsafe { Box::from_raw(self.data) });
        Ok(())
    }
}

unsafe extern "C" fn run(data: *mut c_void) {
    // SAFETY: the box `add` registered; Node runs a hook once, and only if it was not removed.
    let host = unsafe { Box::from_raw(data.cast::<Arc<Host>>()) };
    // Nothing may unwind into Node; the close itself does not panic.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        host.shutdown(true);
        // Drained and shut: nothing hands out an fd any more. The fds JavaScript got and did not
        // close would stay open in the process for good, since its finalizers never run now
        // (Node closes a worker's FileHandles, and the fds it opened with `fs.open`, as it ends).
        host.ring.close_handed();
    }));
}
