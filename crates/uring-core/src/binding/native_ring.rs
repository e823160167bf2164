//! The `NativeRing` class.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::{sys, CleanupEnvHook};
use napi_derive::napi;

use super::args::{engine_error, op_id, path, position, target};
use super::delivery::{JsSink, Tsfn};
use super::views::{Bytes, F64s, I32s};
use crate::{Op, Ring, RingConfig};

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
    tsfn: Arc<Tsfn>,
    released: AtomicBool,
}

impl Host {
    /// Closes the ring (cancel, drain, join), then lets the threadsafe function finalize after
    /// delivering the last batches.
    fn shutdown(&self) {
        self.ring.close();
        if !self.released.swap(true, Ordering::AcqRel) {
            self.tsfn.release();
        }
    }
}

#[napi]
pub struct NativeRing {
    host: Arc<Host>,
    cleanup: Option<CleanupEnvHook<Arc<Host>>>,
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
    }
}

/// Whether io_uring can be set up here: 0, or the negative errno of `io_uring_setup`.
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
        // SAFETY: the env and callback of this very call.
        let tsfn = Arc::new(unsafe { Tsfn::new(env.raw(), on_complete.0) }?);
        let ring = match Ring::new(config(&options), JsSink(Arc::clone(&tsfn))) {
            Ok(ring) => ring,
            Err(e) => {
                tsfn.release();
                return Err(engine_error(e));
            }
        };
        let host = Arc::new(Host { ring, tsfn, released: AtomicBool::new(false) });
        // A worker that ends with ops in flight: close (and wait for the kernel) before the env's
        // heap, which holds the buffers, goes away. Registered after the threadsafe function,
        // so it runs before Node's own cleanup of that function.
        let cleanup = env.add_env_cleanup_hook(Arc::clone(&host), |host| host.shutdown())?;
        // SAFETY: the env and the object under construction of this very call.
        unsafe { super::hot::define(env.raw(), this.object.raw(), Arc::clone(&host)) }?;
        Ok(NativeRing { host, cleanup: Some(cleanup), ring_id: NEXT_RING_ID.fetch_add(1, Ordering::Relaxed) })
    }

    #[napi(getter)]
    pub fn entries(&self) -> u32 {
        self.host.ring.sq_entries()
    }

    #[napi(getter)]
    pub fn cq_entries(&self) -> u32 {
        self.host.ring.cq_entries()
    }

    #[napi(getter)]
    pub fn registered_capacity(&self) -> u32 {
        self.host.ring.registered_capacity()
    }

    #[napi(getter)]
    pub fn ring_id(&self) -> u32 {
        self.ring_id
    }

    /// Operations submitted and not yet completed (diagnostics and leak tests).
    #[napi(getter)]
    pub fn in_flight(&self) -> u32 {
        self.host.ring.in_flight() as u32
    }

    /// Registered-file slots in use.
    #[napi(getter)]
    pub fn registered_in_use(&self) -> u32 {
        self.host.ring.registered_in_use() as u32
    }

    fn submit(&self, id: i32, op: Op) -> Result<f64> {
        let key = self.host.ring.submit(op_id(id)?, op).map_err(engine_error)?;
        Ok(key as f64)
    }

    /// Reads `ranges` (`[offset, length, offset, length, ...]`) into consecutive slices of `buf`
    /// as one op per range, all queued under one lock; op `i` has id `ids[i]`, and its cancel token
    /// is written to `tokens[i]`. All or none: a refused range queues nothing.
    #[napi(catch_unwind)]
    pub fn read_many(&self, ids: I32s, fd: i32, fixed: bool, buf: Bytes, ranges: F64s, tokens: F64s) -> Result<u32> {
        let ids = ids.as_slice();
        let ranges = ranges.as_slice();
        let tokens = tokens.as_mut_slice();
        if ranges.len() != ids.len() * 2 || tokens.len() < ids.len() {
            return Err(super::args::invalid("readMany needs two ranges entries and one token slot per id"));
        }
        let target = target(fd, fixed)?;
        let mut ops = Vec::with_capacity(ids.len());
        let mut at = 0usize;
        for (i, &id) in ids.iter().enumerate() {
            let offset = position("offset", ranges[2 * i])?;
            let len = position("length", ranges[2 * i + 1])? as usize;
            let end = at.checked_add(len).filter(|end| *end <= buf.len());
            let Some(end) = end else {
                return Err(super::args::invalid("readMany ranges are longer than the buffer"));
            };
            // SAFETY: `at..end` lies inside `buf`, which the JS client keeps referenced until every
            // op of the batch has completed.
            let memory = unsafe { buf.lend_range(at, len) };
            ops.push((op_id(id)?, Op::read(target, memory, offset)));
            at = end;
        }
        let keys = self.host.ring.submit_batch(ops).map_err(engine_error)?;
        for (token, key) in tokens.iter_mut().zip(&keys) {
            *token = *key as f64;
        }
        Ok(keys.len() as u32)
    }

    #[napi(catch_unwind)]
    pub fn fsync(&self, id: i32, fd: i32, fixed: bool, datasync: bool) -> Result<f64> {
        self.submit(id, Op::Fsync { target: target(fd, fixed)?, datasync })
    }

    #[napi(catch_unwind)]
    pub fn fallocate(&self, id: i32, fd: i32, fixed: bool, offset: f64, length: f64, mode: i32) -> Result<f64> {
        let op = Op::Fallocate {
            target: target(fd, fixed)?,
            offset: position("offset", offset)?,
            len: position("length", length)?,
            mode,
        };
        self.submit(id, op)
    }

    #[napi(catch_unwind)]
    pub fn fadvise(&self, id: i32, fd: i32, fixed: bool, offset: f64, length: f64, advice: i32) -> Result<f64> {
        let op = Op::Fadvise {
            target: target(fd, fixed)?,
            offset: position("offset", offset)?,
            len: position("length", length)? as i64,
            advice,
        };
        self.submit(id, op)
    }

    #[napi(catch_unwind)]
    pub fn ftruncate(&self, id: i32, fd: i32, fixed: bool, length: f64) -> Result<f64> {
        self.submit(id, Op::Ftruncate { target: target(fd, fixed)?, len: position("length", length)? })
    }

    /// Statx of an open file (`fixed`: a registered slot, looked up by its raw fd).
    #[napi(catch_unwind)]
    pub fn fstat(&self, id: i32, fd: i32, fixed: bool, mask: u32, out: Bytes) -> Result<f64> {
        // SAFETY: as for `read`.
        let out = unsafe { out.lend() };
        self.submit(id, Op::Fstat { target: target(fd, fixed)?, mask, out })
    }

    #[napi(catch_unwind)]
    pub fn statx(&self, id: i32, dirfd: i32, path_: String, flags: i32, mask: u32, out: Bytes) -> Result<f64> {
        // SAFETY: as for `read`.
        let out = unsafe { out.lend() };
        self.submit(id, Op::Statx { dirfd, path: path(path_)?, flags, mask, out })
    }

    #[napi(catch_unwind)]
    pub fn openat(&self, id: i32, dirfd: i32, path_: String, flags: i32, mode: u32) -> Result<f64> {
        self.submit(id, Op::OpenAt { dirfd, path: path(path_)?, flags, mode })
    }

    #[napi(catch_unwind)]
    pub fn openat2(&self, id: i32, dirfd: i32, path_: String, flags: i32, mode: u32, resolve: u32) -> Result<f64> {
        let how = io_uring::types::OpenHow::new()
            .flags(flags as u32 as u64)
            .mode(u64::from(mode))
            .resolve(u64::from(resolve));
        self.submit(id, Op::OpenAt2 { dirfd, path: path(path_)?, how: Box::new(how) })
    }

    /// Opens, reads from offset 0 into `buf` until it is full or end of file, and closes: one op.
    /// The result is the byte count.
    #[napi(catch_unwind)]
    pub fn read_file(&self, id: i32, dirfd: i32, path_: String, buf: Bytes) -> Result<f64> {
        // SAFETY: as for `read`.
        let memory = unsafe { buf.lend() };
        self.submit(id, Op::read_file(dirfd, path(path_)?, memory))
    }

    #[napi(catch_unwind)]
    pub fn close(&self, id: i32, fd: i32) -> Result<f64> {
        self.submit(id, Op::Close { fd })
    }

    #[napi(catch_unwind)]
    pub fn renameat(&self, id: i32, old_dirfd: i32, old_path: String, new_dirfd: i32, new_path: String, flags: u32) -> Result<f64> {
        let op = Op::RenameAt { old_dirfd, old_path: path(old_path)?, new_dirfd, new_path: path(new_path)?, flags };
        self.submit(id, op)
    }

    #[napi(catch_unwind)]
    pub fn unlinkat(&self, id: i32, dirfd: i32, path_: String, flags: i32) -> Result<f64> {
        self.submit(id, Op::UnlinkAt { dirfd, path: path(path_)?, flags })
    }

    #[napi(catch_unwind)]
    pub fn mkdirat(&self, id: i32, dirfd: i32, path_: String, mode: u32) -> Result<f64> {
        self.submit(id, Op::MkdirAt { dirfd, path: path(path_)?, mode })
    }

    #[napi(catch_unwind)]
    pub fn symlinkat(&self, id: i32, target_: String, new_dirfd: i32, link_path: String) -> Result<f64> {
        self.submit(id, Op::SymlinkAt { target: path(target_)?, new_dirfd, link_path: path(link_path)? })
    }

    #[napi(catch_unwind)]
    pub fn linkat(&self, id: i32, old_dirfd: i32, old_path: String, new_dirfd: i32, new_path: String, flags: i32) -> Result<f64> {
        let op = Op::LinkAt { old_dirfd, old_path: path(old_path)?, new_dirfd, new_path: path(new_path)?, flags };
        self.submit(id, op)
    }

    #[napi(catch_unwind)]
    pub fn register_file(&self, id: i32, fd: i32) -> Result<f64> {
        self.submit(id, Op::register_file(fd))
    }

    #[napi(catch_unwind)]
    pub fn unregister_file(&self, id: i32, slot: u32) -> Result<f64> {
        self.submit(id, Op::unregister_file(slot))
    }

    /// Asks the kernel to cancel the op behind `token`; harmless if it already completed.
    #[napi(catch_unwind)]
    pub fn cancel(&self, token: f64) {
        if token.is_finite() && token >= 0.0 {
            self.host.ring.cancel(token as u64);
        }
    }

    /// Keeps the process alive while ops are pending.
    #[napi(js_name = "ref", catch_unwind)]
    pub fn refer(&self, env: Env) -> Result<()> {
        self.set_ref(env, true)
    }

    #[napi(catch_unwind)]
    pub fn unref(&self, env: Env) -> Result<()> {
        self.set_ref(env, false)
    }

    fn set_ref(&self, env: Env, referenced: bool) -> Result<()> {
        if self.host.released.load(Ordering::Acquire) {
            return Ok(());
        }
        // SAFETY: a #[napi] method runs on the JS thread that created the function, and the
        // function is not released (checked above; release also happens on this thread).
        unsafe { self.host.tsfn.set_ref(env.raw(), referenced) }
    }

    /// Refuses new work, cancels everything in flight, waits for every completion (bounded by
    /// the shutdown timeout), joins both threads. Completions still arrive through the callback.
    #[napi(catch_unwind)]
    pub fn shutdown(&mut self, env: Env) -> Result<()> {
        self.host.shutdown();
        if let Some(hook) = self.cleanup.take() {
            env.remove_env_cleanup_hook(hook)?;
        }
        Ok(())
    }

    /// Panics on purpose, so tests can check that a Rust panic becomes a JS exception instead of
    /// unwinding into Node.
    #[napi(js_name = "__panicForTests", catch_unwind)]
    pub fn panic_for_tests(&self, message: String) {
        panic!("{message}");
    }

    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.host.ring.is_closed()
    }
}
