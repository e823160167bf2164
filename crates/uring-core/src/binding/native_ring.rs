//! The `NativeRing` class.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::args::engine_error;
use super::cleanup::CleanupHook;
use super::delivery::{pairs_of, Direct, JsSink, Tsfn};
use super::ready_poll::ReadyPoll;
use crate::{CachedBatchReader, Completion, Ring, RingConfig};

static NEXT_RING_ID: AtomicU32 = AtomicU32::new(1);

/// Options from JS; unset fields take the engine's defaults.
#[napi(object)]
pub struct RingOptions {
    pub entries: Option<u32>,
    pub coop_taskrun: Option<bool>,
    pub iopoll: Option<bool>,
    pub sqpoll_idle_ms: Option<u32>,
    pub defer_taskrun: Option<bool>,
    pub registered_files: Option<u32>,
    pub shutdown_timeout_ms: Option<u32>,
    pub inline_submit: Option<bool>,
    pub caller_reaps: Option<bool>,
    pub batch_helper: Option<bool>,
}

/// The completion callback as a raw value: the threadsafe function takes it directly.
pub struct Callback(sys::napi_value);

impl TypeName for Callback {
    fn type_name() -> &'static str {
        "Function"
    }
    fn value_type() -> ValueType {
        ValueType::Function
    }
}

impl ValidateNapiValue for Callback {}

impl FromNapiValue for Callback {
    unsafe fn from_napi_value(_env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        Ok(Callback(value))
    }
}

/// What the env cleanup hook, the class and its hot functions share: closing either way closes once.
pub(crate) struct Host {
    pub(crate) ring: Ring,
    pub(crate) tsfn: Arc<Tsfn>,
    pub(crate) released: AtomicBool,
    /// The event loop's watch on the ring's eventfd while the JS thread reaps.
    pub(crate) poll: Mutex<Option<ReadyPoll>>,
    /// `readManyCached`'s reader and its helper thread, stopped when the ring closes.
    pub(crate) batches: Mutex<CachedBatchReader>,
    /// How the poll callback hands JS what it reaps, while the JS thread reaps.
    pub(crate) direct: Mutex<DirectSlot>,
}

/// The poll callback's direct delivery and the env it belongs to. A delivery under way keeps it:
/// a JS callback that shuts the ring down retires it, and the delivery destroys it on return.
pub(crate) struct DirectSlot {
    env: sys::napi_env,
    direct: Option<Direct>,
    delivering: bool,
    retired: bool,
}

// SAFETY: the env is used on its own JS thread only (every user of the slot runs there).
unsafe impl Send for DirectSlot {}

impl DirectSlot {
    /// Destroys the direct delivery, if there is one.
    ///
    /// # Safety
    /// On the live env's JS thread (not its teardown), with no delivery under way.
    unsafe fn end(&mut self) {
        if let Some(direct) = self.direct.take() {
            // SAFETY: per this function's contract.
            unsafe { direct.destroy(self.env) };
        }
    }
}

impl Host {
    fn direct_slot(&self) -> std::sync::MutexGuard<'_, DirectSlot> {
        self.direct.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands JS what the poll callback reaped: directly, else (no direct delivery, it is
    /// retired, or N-API refused the call) through the threadsafe function, so no completion is
    /// dropped while the env lives. On the JS thread, outside any JS frame.
    pub(crate) fn deliver_reaped(&self, batch: &[Completion]) {
        let pairs = pairs_of(batch);
        if !self.deliver_directly(&pairs) {
            self.tsfn.queue(pairs);
        }
    }

    /// Calls JS with `pairs` from here, if direct delivery is on; whether it did.
    fn deliver_directly(&self, pairs: &[i32]) -> bool {
        // Taken under the lock and called without it: the callback may shut the ring down.
        let taken = {
            let mut slot = self.direct_slot();
            match slot.direct {
                Some(direct) if !slot.delivering && !slot.retired => {
                    slot.delivering = true;
                    Some((slot.env, direct))
                }
                _ => None,
            }
        };
        let Some((env, direct)) = taken else { return false };
        // SAFETY: on the env's JS thread, in a libuv callback; `delivering` keeps the handles
        // from being destroyed until this returns.
        let called = unsafe { direct.deliver(env, pairs) };
        let mut slot = self.direct_slot();
        slot.delivering = false;
        if slot.retired {
            // SAFETY: on the live env's JS thread, with no delivery under way any more.
            unsafe { slot.end() };
        }
        called
    }

    /// Ends direct delivery: at once, or when the delivery under way returns. At the env's
    /// teardown (`teardown`) nothing is called on the env, which frees what it held itself.
    fn retire_direct(&self, teardown: bool) {
        let mut slot = self.direct_slot();
        slot.retired = true;
        if teardown {
            slot.direct = None;
        } else if !slot.delivering {
            // SAFETY: on the live env's JS thread (every caller but the teardown hook is), with
            // no delivery under way.
            unsafe { slot.end() };
        }
    }

    /// The JS thread stops reaping: the completion thread does from now on. On the JS thread;
    /// `teardown` at the env's.
    pub(crate) fn stop_reaping(&self, teardown: bool) {
        if let Some(poll) = self.poll.lock().unwrap_or_else(|p| p.into_inner()).take() {
            // SAFETY: on the JS thread (every caller is: the poll's callback, `shutdown`).
            unsafe { poll.close() };
        }
        self.retire_direct(teardown);
        // After the poll: this closes the fd it watched.
        self.ring.stop_caller_reaping();
    }

    /// Closes the ring (cancel, drain, join), then lets the threadsafe function finalize after
    /// delivering the last batches. Returns whether the close was clean. If it was not (ops
    /// still in the kernel past the deadline, or a thread not joined), the function is never
    /// released: it holds the JS callback, which holds the client's table of the buffers those
    /// ops were lent, so the garbage collector cannot free memory the kernel may still write.
    /// With `wait`, there is no deadline (the env's heap is about to go, buffers and all).
    pub(crate) fn shutdown(&self, wait: bool) -> bool {
        self.stop_reaping(wait);
        self.batches.lock().unwrap_or_else(|p| p.into_inner()).stop();
        let clean = if wait { self.ring.close_waiting() } else { self.ring.close() };
        if wait {
            // The env is going away and Node frees the function after this hook: a completion
            // thread still alive for ops an earlier close gave up on must not call it then.
            self.tsfn.close_calls();
        }
        if clean && !self.released.swap(true, Ordering::AcqRel) {
            self.tsfn.release();
        }
        clean
    }
}

#[napi]
pub struct NativeRing {
    host: Arc<Host>,
    cleanup: Option<CleanupHook>,
    ring_id: u32,
}

fn config(options: &RingOptions) -> RingConfig {
    let defaults = RingConfig::default();
    RingConfig {
        entries: options.entries.unwrap_or(defaults.entries),
        coop_taskrun: options.coop_taskrun.unwrap_or(defaults.coop_taskrun),
        iopoll: options.iopoll.unwrap_or(defaults.iopoll),
        sqpoll_idle_ms: options.sqpoll_idle_ms.or(defaults.sqpoll_idle_ms),
        defer_taskrun: options.defer_taskrun.unwrap_or(defaults.defer_taskrun),
        registered_files: options.registered_files.unwrap_or(defaults.registered_files),
        shutdown_timeout: options
            .shutdown_timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(defaults.shutdown_timeout),
        // The JS client flushes once per turn of the event loop (src/internal/RingClient.ts).
        deferred_wakeups: true,
        // On unless asked otherwise: JS calls `flush` once per turn, which is where it pays.
        inline_submit: options.inline_submit.unwrap_or(true),
        // On unless asked otherwise: the event loop reaps, a thread hand-off sooner.
        caller_reaps: options.caller_reaps.unwrap_or(true),
        caller_stall: defaults.caller_stall,
    }
}

/// Whether `value` is the env's global object.
///
/// # Safety
/// `env` and `value` must be the live env and a value of the current call.
unsafe fn is_global(env: sys::napi_env, value: sys::napi_value) -> Result<bool> {
    let mut global = std::ptr::null_mut();
    let mut same = false;
    // SAFETY: live env and value, as the caller guarantees; both out-pointers are valid locals.
    unsafe {
        napi::check_status!(sys::napi_get_global(env, &mut global))?;
        napi::check_status!(sys::napi_strict_equals(env, value, global, &mut same))?;
    }
    Ok(same)
}

/// Whether io_uring can be set up here: 0, or the negative errno of `io_uring_setup`.
// napi-derive registers free functions with Node only outside `cfg(test)`, so a test build of
// the library sees no caller.
#[cfg_attr(test, allow(dead_code))]
#[napi(catch_unwind)]
pub fn probe() -> i32 {
    match crate::probe() {
        Ok(()) => 0,
        Err(errno) => -errno,
    }
}

#[napi]
impl NativeRing {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, this: This, options: RingOptions, on_complete: Callback) -> Result<Self> {
        // Called without `new`, the receiver is the global object, which would get the ring's functions.
        // SAFETY: the env and receiver of this very call.
        if unsafe { is_global(env.raw(), this.object.raw()) }? {
            return Err(napi::Error::new(napi::Status::InvalidArg, "NativeRing must be called with `new`"));
        }
        // SAFETY: the env and callback of this very call.
        let tsfn = Arc::new(unsafe { Tsfn::new(env.raw(), on_complete.0) }?);
        let ring = match Ring::new(config(&options), JsSink(Arc::clone(&tsfn))) {
            Ok(ring) => ring,
            Err(e) => {
                tsfn.release();
                return Err(engine_error(e));
            }
        };
        let host = Arc::new(Host {
            ring,
            tsfn,
            released: AtomicBool::new(false),
            poll: Mutex::new(None),
            // On unless asked otherwise: a batch's cached ranges on two cores.
            batches: Mutex::new(if options.batch_helper.unwrap_or(true) { CachedBatchReader::new() } else { CachedBatchReader::without_helper() }),
            // SAFETY: the env and callback of this very call. Without it, the threadsafe function delivers.
            direct: Mutex::new(DirectSlot { env: env.raw(), direct: unsafe { Direct::new(env.raw(), on_complete.0) }.ok(), delivering: false, retired: false }),
        });
        // A worker (or the process) that ends with ops in flight: close, and wait for the kernel
        // however long it takes, before the env's heap, which holds the buffers, goes away.
        // Registered after the threadsafe function, so it runs before Node's own cleanup of it.
        // SAFETY: the env of this very call.
        let cleanup = unsafe { CleanupHook::add(env.raw(), Arc::clone(&host)) }?;
        // SAFETY: the env and the object under construction of this very call.
        unsafe { super::hot::define(env.raw(), this.object.raw(), Arc::clone(&host)) }?;
        // Last: the poll holds the host until it is closed, which a failed construction would not do.
        if let Some(fd) = host.ring.ready_fd() {
            // SAFETY: the env of this very call, on its JS thread.
            match unsafe { ReadyPoll::start(env.raw(), fd, Arc::clone(&host)) } {
                Some(poll) => *host.poll.lock().unwrap_or_else(|p| p.into_inner()) = Some(poll),
                None => host.ring.stop_caller_reaping(),
            }
        }
        Ok(NativeRing { host, cleanup: Some(cleanup), ring_id: NEXT_RING_ID.fetch_add(1, Ordering::Relaxed) })
    }

    #[napi(getter, catch_unwind)]
    pub fn entries(&self) -> u32 {
        self.host.ring.sq_entries()
    }

    #[napi(getter, catch_unwind)]
    pub fn cq_entries(&self) -> u32 {
        self.host.ring.cq_entries()
    }

    #[napi(getter, catch_unwind)]
    pub fn registered_capacity(&self) -> u32 {
        self.host.ring.registered_capacity()
    }

    #[napi(getter, catch_unwind)]
    pub fn ring_id(&self) -> u32 {
        self.ring_id
    }

    /// Whether the event loop reaps this ring's completions (its eventfd is polled); tests.
    #[napi(getter, catch_unwind)]
    pub fn caller_reaps(&self) -> bool {
        self.host.ring.ready_fd().is_some()
    }

    /// Operations submitted and not yet completed (diagnostics and leak tests).
    #[napi(getter, catch_unwind)]
    pub fn in_flight(&self) -> u32 {
        self.host.ring.in_flight() as u32
    }

    /// Registered-file slots in use.
    #[napi(getter, catch_unwind)]
    pub fn registered_in_use(&self) -> u32 {
        self.host.ring.registered_in_use() as u32
    }

    /// Refuses new work, cancels everything in flight, waits for every completion (bounded by
    /// the shutdown timeout), joins both threads; the completions reaped meanwhile still arrive
    /// through the callback. Returns whether every op completed; if so, the ring's fd, mappings
    /// and eventfd are gone when this returns, and every later call on this object finds it
    /// closed. If not, the ops left in the kernel complete through the callback when the kernel
    /// is done with them (as cancelled, or with their result); the callback (and what the client
    /// keeps for those ops) stays referenced for good, and the ring stops keeping the event loop
    /// alive.
    #[napi(catch_unwind)]
    pub fn shutdown(&mut self, env: Env) -> Result<bool> {
        let clean = self.host.shutdown(false);
        if !clean {
            // SAFETY: on the JS thread that created the function, which was not released (an
            // unclean close never releases it).
            unsafe { self.host.tsfn.set_ref(env.raw(), false) }?;
        }
        // After an unclean close the hook stays: at the env's teardown it waits for the ops left
        // in the kernel before the heap holding their buffers goes, and closes the fds handed to
        // JavaScript that are still open then. After a clean one the hook goes, and the record
        // of those fds with it: a scope may outlive the ring, and its finalizers close them.
        if clean {
            self.host.ring.forget_handed();
            if let Some(hook) = self.cleanup.take() {
                // SAFETY: the env the hook was added to, on its JS thread (this call), alive.
                unsafe { hook.remove(env.raw()) }?;
            }
        }
        Ok(clean)
    }

    /// Panics on purpose, so tests can check that a Rust panic becomes a JS exception instead of
    /// unwinding into Node.
    #[napi(js_name = "__panicForTests", catch_unwind)]
    pub fn panic_for_tests(&self, message: String) {
        panic!("{message}");
    }
}
