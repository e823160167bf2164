//! The JS thread's side of `caller_reaps`: a libuv poll handle on the ring's eventfd, so the
//! event loop that waits for I/O also wakes for completions, reaps them where it runs
//! (`Ring::reap_ready_into`) and calls JS with them from this very callback (`Host::deliver_reaped`),
//! a loop iteration sooner than the threadsafe function would. N-API has no poll handles, so this
//! calls libuv, which Node exports to addons.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use napi::sys;

use super::native_ring::Host;

/// `uv_handle_type::UV_POLL` and `uv_poll_event::UV_READABLE` (uv.h).
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;

type PollCallback = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
type CloseCallback = unsafe extern "C" fn(handle: *mut c_void);

extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_poll_init(event_loop: *mut sys::uv_loop_s, handle: *mut c_void, fd: c_int) -> c_int;
    fn uv_poll_start(handle: *mut c_void, events: c_int, callback: PollCallback) -> c_int;
    fn uv_close(handle: *mut c_void, callback: CloseCallback);
    fn uv_unref(handle: *mut c_void);
}

/// A started poll handle. Its `data` (a handle's first field, `void* data`, which libuv leaves to
/// its user) holds a boxed count of the host, dropped with the handle's memory once libuv has
/// closed it.
pub(crate) struct ReadyPoll {
    handle: *mut c_void,
}

// SAFETY: created, closed and called back on the env's JS thread only; the host keeps it behind
// a mutex just so the host stays shareable with the env cleanup hook.
unsafe impl Send for ReadyPoll {}

fn layout() -> Option<Layout> {
    // SAFETY: a pure size query.
    let size = unsafe { uv_handle_size(UV_POLL) };
    Layout::from_size_align(size, 16).ok().filter(|_| size > 0)
}

impl ReadyPoll {
    /// Starts polling `fd` on `env`'s event loop, reaping `host`'s ring on each readiness. The
    /// handle does not keep the loop alive (the threadsafe function does while ops are pending).
    ///
    /// # Safety
    /// `env` must be the live env of the current call, on its JS thread.
    pub(crate) unsafe fn start(env: sys::napi_env, fd: c_int, host: Arc<Host>) -> Option<ReadyPoll> {
        let mut event_loop = std::ptr::null_mut();
        // SAFETY: a live env (contract); the out-pointer is a valid local.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut event_loop) } != sys::Status::napi_ok || event_loop.is_null() {
            return None;
        }
        let layout = layout()?;
        // SAFETY: a non-zero size (`layout`).
        let handle = unsafe { alloc_zeroed(layout) }.cast::<c_void>();
        if handle.is_null() {
            return None;
        }
        // SAFETY: `handle` is zeroed memory of the size libuv asked for, on the loop's thread.
        if unsafe { uv_poll_init(event_loop, handle, fd) } != 0 {
            // Not initialised, so not known to the loop: the memory is still ours alone.
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(handle.cast(), layout) };
            return None;
        }
        // SAFETY (whole block): an initialised handle on its loop's thread; `data` is its first
        // field, and the box stays until `closed` takes it back.
        unsafe {
            *handle.cast::<*mut Arc<Host>>() = Box::into_raw(Box::new(host));
            uv_unref(handle);
            if uv_poll_start(handle, UV_READABLE, on_ready) != 0 {
                uv_close(handle, closed);
                return None;
            }
        }
        Some(ReadyPoll { handle })
    }

    /// Stops polling; libuv frees the handle (and its count of the host) in a later turn.
    ///
    /// # Safety
    /// On the JS thread of the env that started it.
    pub(crate) unsafe fn close(self) {
        // SAFETY: a started handle, closed once (this consumes it), on its loop's thread.
        unsafe { uv_close(self.handle, closed) };
    }
}

unsafe extern "C" fn on_ready(handle: *mut c_void, status: c_int, _events: c_int) {
    // SAFETY: the handle's `data` is the box `start` stored; it lives until `closed`, which
    // libuv calls only after the last callback.
    let host = unsafe { &**handle.cast::<*mut Arc<Host>>() };
    // Nothing may unwind into libuv.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if status < 0 {
            // The loop cannot watch the eventfd any more: the completion thread reaps from now on.
            host.stop_reaping(false);
        } else {
            let mut batch = Vec::new();
            host.ring.reap_ready_into(&mut batch);
            if !batch.is_empty() {
                host.deliver_reaped(&batch);
            }
        }
    }));
}

unsafe extern "C" fn closed(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; `data` is the box `start` stored, taken back once.
    drop(unsafe { Box::from_raw(*handle.cast::<*mut Arc<Host>>()) });
    if let Some(layout) = layout() {
        // SAFETY: allocated by `start` with this same layout.
        unsafe { dealloc(handle.cast(), layout) };
    }
}
