//! Every call JS makes per op, per flush or per change of the pending count, as raw N-API
//! functions: each op's submit, `flush`, `cancel`, `ref` and `unref`, `isClosed`, asked per
//! read the turn's budget refuses, and `forgetFd`, per fd JS closes off the ring.
//!
//! A `#[napi]` method of napi-rs 3 does borrow bookkeeping on every call: it allocates a scope,
//! records the receiver in a process-wide mutex-guarded map, and drops it all again. That costs
//! about 0.4 µs a call here, where one of these functions takes 0.07 µs (an empty `flush`), and a
//! read that completes on the spot makes two calls. Each ring defines these functions as own
//! properties of its JS object, and their data pointer is the ring's [`Hot`], so they never unwrap
//! `this` and cannot be handed another object's memory. Arguments are converted with napi-rs's
//! own conversions (paths straight into a `CString`), errors are thrown as napi-rs throws them,
//! and a panic becomes a JS exception here as it does there.

use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::Ordering;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::{panic_to_error, FromNapiValue, JsError};
use napi::{sys, Result};

use super::args::{descriptor, engine_error, invalid, op_id, position, target, Int32, Uint32};
use super::native_ring::Host;
use super::views::{Bytes, Fixed, F64s, I32s, Path};
use crate::{read_cached, read_file_cached, stat_cached, Completion, EngineError, Memory, Op, Target, FD_BYTES};

/// Marks a group's cancel token: keys stay below 2^52 (`slab.rs`), so a token with this bit is a
/// group's and is still an exact JS number.
const GROUP_TOKEN: u64 = 1 << 52;

/// What `readManyCached` leaves in the result slot of a range the ring must read: no count or
/// `-errno` is this.
const UNREAD: i32 = i32::MIN;

/// What the hot functions of one ring share: the ring, and the buffer `flush` reaps into.
pub(crate) struct Hot {
    host: Arc<Host>,
    /// Completions reaped inline by `flush`; kept to reuse its capacity. Only the JS thread
    /// that owns the ring calls these functions, so a `RefCell` is enough.
    done: RefCell<Vec<Completion>>,
    /// `readMany`'s ops on their way into a group, and their result slots when not every range
    /// is read; kept, like `done`, to reuse their capacity.
    group: RefCell<(Vec<Op>, Vec<u32>)>,
}

/// The most ops `Hot::group` keeps room for between calls: a rare huge batch keeps no memory.
const GROUP_KEEP: usize = 1024;

/// Each op's submit function: validates, builds the op (which owns or borrows its memory until
/// its completion) and queues it; the result is the op's cancel token.
impl Hot {
    fn submit(&self, id: i32, op: Op) -> Result<f64> {
        let key = self.host.ring.submit(op_id(id)?, op).map_err(engine_error)?;
        Ok(key as f64)
    }

    /// A read or write of `buf` at `offset`, built by `make`.
    fn transfer(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, offset: f64, make: fn(Target, Memory, u64) -> Op) -> Result<f64> {
        // SAFETY: the JS client keeps `buf` referenced in its pending table until this op's
        // completion has been delivered (see src/internal/RingClient.ts).
        let memory = unsafe { buf.lend() };
        let offset = position("offset", offset)?;
        self.submit(id, make(target(fd, fixed)?, memory, offset))
    }

    fn read(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, offset: f64, exact: bool) -> Result<f64> {
        self.transfer(id, fd, fixed, buf, offset, if exact { Op::read_exact } else { Op::read })
    }

    /// A read on this thread of what the page cache holds (`read_cached`): no op, no id, done
    /// when this returns; the count or `-errno`. Refused like a submit once the ring is closed.
    fn read_cached(&self, fd: i32, mut buf: Bytes, offset: f64) -> Result<f64> {
        if self.host.ring.is_closed() {
            return Err(engine_error(EngineError::Closed));
        }
        let fd = descriptor(fd)?;
        let offset = position("offset", offset)?;
        Ok(f64::from(read_cached(fd, buf.as_mut_slice(), offset)))
    }

    /// A whole file opened and read on this thread as far as the caches hold it
    /// (`read_file_cached`), into all of `buf` but its last 4 bytes, where the fd it leaves open
    /// goes (-1 if none): no op, no id, done when this returns; the count or `-errno`, `-EAGAIN`
    /// when the ring must do it all. Refused like a submit once the ring is closed.
    fn read_file_cached(&self, dirfd: i32, path: Path, mut buf: Bytes) -> Result<f64> {
        if self.host.ring.is_closed() {
            return Err(engine_error(EngineError::Closed));
        }
        let Some((data, kept)) = buf.as_mut_slice().split_last_chunk_mut::<FD_BYTES>() else {
            return Err(invalid("readFileCached needs a buffer of at least 4 bytes, for the fd it may leave open"));
        };
        let read = read_file_cached(dirfd, &path.0, data, kept);
        let fd = i32::from_le_bytes(*kept);
        if read >= 0 && fd >= 0 {
            // JavaScript's from here, as an fd the ring's own whole-file read leaves open.
            self.host.ring.hand_over(fd);
        }
        Ok(f64::from(read))
    }

    /// JavaScript is about to close `fd` itself, not through a ring (`Ring::forget_fd`): the
    /// env's teardown must not close that number again.
    fn forget_fd(&self, fd: i32) -> Result<f64> {
        self.host.ring.forget_fd(fd);
        Ok(0.0)
    }

    /// A `statx` of `path` on this thread from the caches (`stat_cached`) into `out`: no op, no
    /// id, done when this returns; 0, the lookup's `-errno`, or `-EAGAIN` when the ring must do it.
    /// Refused like a submit once the ring is closed.
    fn stat_cached(&self, dirfd: i32, path: Path, flags: i32, mask: u32, mut out: Bytes) -> Result<f64> {
        if self.host.ring.is_closed() {
            return Err(engine_error(EngineError::Closed));
        }
        Ok(f64::from(stat_cached(dirfd, &path.0, flags, mask, out.as_mut_slice())))
    }

    /// Reads on this thread, and beside it the ring's batch helper thread, what the page cache
    /// holds of each of `ranges` (`[offset, length, ...]`, into consecutive slices of `buf`, as
    /// `readMany` reads them; `CachedBatchReader`): range `i`'s answer goes to `results[i]`, or
    /// `UNREAD` where the ring must read it. Returns how many are left to the ring: `readMany`
    /// with `unread_only` then reads just those. Refused like a submit once the ring is closed,
    /// and before any read if a range is.
    fn read_many_cached(&self, fd: i32, mut buf: Bytes, ranges: F64s, mut results: I32s) -> Result<f64> {
        if self.host.ring.is_closed() {
            return Err(engine_error(EngineError::Closed));
        }
        let fd = descriptor(fd)?;
        let results = results.as_mut_slice();
        let slices = slices_of(buf.len(), ranges.as_slice(), results.len())?.map(|(offset, _, len)| (offset, len));
        let mut reader = self.host.batches.lock().unwrap_or_else(|p| p.into_inner());
        let unread = reader.read(fd, buf.as_mut_slice(), slices, results, UNREAD).map_err(engine_error)?;
        Ok(f64::from(unread))
    }

    /// Reads `ranges` (`[offset, length, offset, length, ...]`) into consecutive slices of `buf`
    /// as one group of ops, queued under one lock: range `i`'s result goes to `results[i]`, and op
    /// `id` completes once, after the last range. With `unread_only`, only the ranges whose slot
    /// holds `UNREAD` (left by `readManyCached`) are read; the other slots keep their results.
    /// Returns the group's cancel token. All or none: a refused range queues nothing.
    #[allow(clippy::too_many_arguments, reason = "the arguments of its JS call, converted")]
    fn read_many(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, ranges: F64s, results: I32s, unread_only: bool) -> Result<f64> {
        let (id, target) = (op_id(id)?, target(fd, fixed)?);
        let mut group = self.group.borrow_mut();
        let (ops, wanted) = &mut *group;
        let slots = results.as_slice();
        let built = slices_of(buf.len(), ranges.as_slice(), slots.len()).map(|slices| {
            for (index, (offset, at, len)) in slices.enumerate() {
                if unread_only {
                    if slots[index] != UNREAD {
                        continue;
                    }
                    wanted.push(index as u32);
                }
                // SAFETY: `at..at + len` lies inside `buf` (`slices_of`), which the JS client
                // keeps referenced until the group's completion.
                ops.push(Op::read(target, unsafe { buf.lend_range(at, len) }, offset));
            }
        });
        let queued = built.and_then(|()| {
            // SAFETY: the JS client keeps `results` referenced and unread until the group's completion.
            let results = unsafe { results.lend() };
            let queued = if unread_only {
                self.host.ring.submit_group_in_slots(id, ops, wanted, results)
            } else {
                self.host.ring.submit_group(id, ops, results)
            };
            queued.map_err(engine_error)
        });
        // A refused batch leaves no pointers into its buffer behind.
        ops.clear();
        ops.shrink_to(GROUP_KEEP);
        wanted.clear();
        wanted.shrink_to(GROUP_KEEP);
        Ok((queued? | GROUP_TOKEN) as f64)
    }

    fn write(&self, id: i32, fd: i32, fixed: bool, buf: Bytes, offset: f64, all: bool) -> Result<f64> {
        self.transfer(id, fd, fixed, buf, offset, if all { Op::write_all } else { Op::write })
    }

    fn fsync(&self, id: i32, fd: i32, fixed: bool, datasync: bool) -> Result<f64> {
        self.submit(id, Op::Fsync { target: target(fd, fixed)?, datasync })
    }

    fn fallocate(&self, id: i32, fd: i32, fixed: bool, offset: f64, length: f64, mode: i32) -> Result<f64> {
        let op = Op::Fallocate {
            target: target(fd, fixed)?,
            offset: position("offset", offset)?,
            len: position("length", length)?,
            mode,
        };
        self.submit(id, op)
    }

    fn fadvise(&self, id: i32, fd: i32, fixed: bool, offset: f64, length: f64, advice: i32) -> Result<f64> {
        let op = Op::Fadvise {
            target: target(fd, fixed)?,
            offset: position("offset", offset)?,
            len: position("length", length)? as i64,
            advice,
        };
        self.submit(id, op)
    }

    fn ftruncate(&self, id: i32, fd: i32, fixed: bool, length: f64) -> Result<f64> {
        self.submit(id, Op::Ftruncate { target: target(fd, fixed)?, len: position("length", length)? })
    }

    /// Statx of an open file (`fixed`: a registered slot, looked up by its raw fd).
    fn fstat(&self, id: i32, fd: i32, fixed: bool, mask: u32, out: Bytes) -> Result<f64> {
        // SAFETY: as for `transfer`.
        let out = unsafe { out.lend() };
        self.submit(id, Op::Fstat { target: target(fd, fixed)?, mask, out })
    }

    fn statx(&self, id: i32, dirfd: i32, path: Path, flags: i32, mask: u32, out: Bytes) -> Result<f64> {
        // SAFETY: as for `transfer`.
        let out = unsafe { out.lend() };
        self.submit(id, Op::Statx { dirfd, path: path.0, flags, mask, out })
    }

    fn openat(&self, id: i32, dirfd: i32, path: Path, flags: i32, mode: u32) -> Result<f64> {
        self.submit(id, Op::OpenAt { dirfd, path: path.0, flags, mode })
    }

    fn openat2(&self, id: i32, dirfd: i32, path: Path, flags: i32, mode: u32, resolve: u32) -> Result<f64> {
        let how = io_uring::types::OpenHow::new()
            .flags(flags as u32 as u64)
            .mode(u64::from(mode))
            .resolve(u64::from(resolve));
        self.submit(id, Op::OpenAt2 { dirfd, path: path.0, how: Box::new(how) })
    }

    /// Opens, reads from offset 0 into all of `buf` but its last 4 bytes until they are full or
    /// end of file, and closes: one op. The result is the byte count. If the data part fills, the
    /// file stays open and its fd goes into those last 4 bytes (little-endian): the caller reads
    /// the rest from it and closes it (`Op::read_file_keeping`).
    fn read_file(&self, id: i32, dirfd: i32, path: Path, buf: Bytes) -> Result<f64> {
        let Some(len) = buf.len().checked_sub(FD_BYTES) else {
            return Err(invalid("readFile needs a buffer of at least 4 bytes, for the fd it may leave open"));
        };
        // SAFETY: both ranges lie inside `buf`, apart; as for `transfer`, the JS client keeps it
        // referenced until the op's completion.
        let (data, kept) = unsafe { (buf.lend_range(0, len), buf.lend_range(len, FD_BYTES)) };
        self.submit(id, Op::read_file_keeping(dirfd, path.0, data, kept))
    }

    /// Opens with `flags` and `mode`, writes all of `buf` from offset 0, and closes: one op. The
    /// result is the byte count (short only if the kernel wrote 0), or the first error, close's included.
    fn write_file(&self, id: i32, dirfd: i32, path: Path, flags: i32, mode: u32, buf: Bytes) -> Result<f64> {
        // SAFETY: as for `transfer`.
        let memory = unsafe { buf.lend() };
        self.submit(id, Op::write_file(dirfd, path.0, flags, mode, memory))
    }

    /// Whether `path` exists and can be reached: opened with O_PATH and closed, one op; 0 or `-errno`.
    fn access(&self, id: i32, dirfd: i32, path: Path) -> Result<f64> {
        self.submit(id, Op::open_path(dirfd, path.0))
    }

    fn close(&self, id: i32, fd: i32) -> Result<f64> {
        self.submit(id, Op::Close { fd })
    }

    fn renameat(&self, id: i32, old_dirfd: i32, old_path: Path, new_dirfd: i32, new_path: Path, flags: u32) -> Result<f64> {
        self.submit(id, Op::RenameAt { old_dirfd, old_path: old_path.0, new_dirfd, new_path: new_path.0, flags })
    }

    fn unlinkat(&self, id: i32, dirfd: i32, path: Path, flags: i32) -> Result<f64> {
        self.submit(id, Op::UnlinkAt { dirfd, path: path.0, flags })
    }

    fn mkdirat(&self, id: i32, dirfd: i32, path: Path, mode: u32) -> Result<f64> {
        self.submit(id, Op::MkdirAt { dirfd, path: path.0, mode })
    }

    fn symlinkat(&self, id: i32, target: Path, new_dirfd: i32, link_path: Path) -> Result<f64> {
        self.submit(id, Op::SymlinkAt { target: target.0, new_dirfd, link_path: link_path.0 })
    }

    fn linkat(&self, id: i32, old_dirfd: i32, old_path: Path, new_dirfd: i32, new_path: Path, flags: i32) -> Result<f64> {
        self.submit(id, Op::LinkAt { old_dirfd, old_path: old_path.0, new_dirfd, new_path: new_path.0, flags })
    }

    fn register_file(&self, id: i32, fd: i32) -> Result<f64> {
        self.submit(id, Op::register_file(fd))
    }

    fn unregister_file(&self, id: i32, slot: u32) -> Result<f64> {
        self.submit(id, Op::unregister_file(slot))
    }
}

/// `ranges` (`[offset, length, ...]`) as `(offset, at, len)`: consecutive slices of a buffer of
/// `buf_len` bytes, one per result slot of `slots` there are. All checked before the first is
/// yielded, so a refused batch reads and queues nothing.
fn slices_of(buf_len: usize, ranges: &[f64], slots: usize) -> Result<impl ExactSizeIterator<Item = (u64, usize, usize)> + '_> {
    if !ranges.len().is_multiple_of(2) || ranges.len() / 2 != slots {
        return Err(invalid("readMany needs an offset and a length per range, and a result slot per range"));
    }
    let mut at = 0usize;
    for range in ranges.chunks_exact(2) {
        position("offset", range[0])?;
        let len = position("length", range[1])? as usize;
        at = at.checked_add(len).filter(|end| *end <= buf_len).ok_or_else(|| invalid("readMany ranges are longer than the buffer"))?;
    }
    // Checked above: every offset and length converts, and the slices fit the buffer.
    let mut at = 0usize;
    Ok(ranges.chunks_exact(2).map(move |range| {
        let (offset, len) = (range[0] as u64, range[1] as usize);
        at += len;
        (offset, at - len, len)
    }))
}

/// The calls that are not submits: made per flush, per cancel, per change of the pending count.
impl Hot {
    /// Submits everything queued; when the submission thread is idle, this thread submits and
    /// reaps itself and writes the completions already there to `out` as `[opId, result]` pairs.
    /// Returns their count. An `out` shorter than one pair only wakes the submission thread.
    /// `settle`: the turn's last flush (`Ring::submit_and_reap_settled`).
    fn flush(&self, mut out: I32s, settle: bool) -> Result<f64> {
        let out = out.as_mut_slice();
        if out.len() < 2 {
            self.host.ring.flush();
            return Ok(0.0);
        }
        let mut done = self.done.borrow_mut();
        if settle {
            self.host.ring.submit_and_reap_settled(&mut done, out.len() / 2);
        } else {
            self.host.ring.submit_and_reap(&mut done, out.len() / 2);
        }
        let count = done.len();
        for (pair, c) in out.chunks_exact_mut(2).zip(done.drain(..)) {
            // Op ids come from JS as positive int32s.
            pair[0] = c.user as i32;
            pair[1] = c.result;
        }
        Ok(count as f64)
    }

    /// Asks the kernel to cancel the op (or the group's unfinished ops) behind `token`;
    /// harmless if it already completed.
    fn cancel(&self, token: f64) -> Result<f64> {
        if token.is_finite() && token >= 0.0 {
            let token = token as u64;
            if token & GROUP_TOKEN != 0 {
                self.host.ring.cancel_group(token & !GROUP_TOKEN);
            } else {
                self.host.ring.cancel(token);
            }
        }
        Ok(0.0)
    }

    /// Keeps the process alive while ops are pending.
    fn refer(&self, env: sys::napi_env) -> Result<f64> {
        self.set_ref(env, true)
    }

    /// Lets the process exit once no op is pending.
    fn unref(&self, env: sys::napi_env) -> Result<f64> {
        self.set_ref(env, false)
    }

    /// 1 once the ring is closed (`shutdown` ran, or the env's teardown), else 0: asked by a read
    /// the turn's budget refused, before it waits a turn.
    fn is_closed(&self) -> Result<f64> {
        Ok(if self.host.ring.is_closed() { 1.0 } else { 0.0 })
    }

    fn set_ref(&self, env: sys::napi_env, referenced: bool) -> Result<f64> {
        if self.host.released.load(Ordering::Acquire) {
            return Ok(0.0);
        }
        // SAFETY: these functions run on the JS thread that created the ring's threadsafe
        // function, and it is not released (checked above; release also happens on this thread).
        unsafe { self.host.tsfn.set_ref(env, referenced) }?;
        Ok(0.0)
    }
}

/// Converts argument `$i` of `$argv` to `$ty` with napi-rs's conversion for it; a value of
/// another type is an invalid argument, with the code the TypeScript side matches on.
macro_rules! arg {
    ($env:expr, $argv:expr, $i:expr, $ty:ty) => {
        // SAFETY: the env and a value of the current call.
        unsafe { <$ty as FromNapiValue>::from_napi_value($env, $argv[$i]) }.map_err(|e| {
            if e.reason.starts_with("ERR_URING_") { e } else { invalid(format!("argument {}: {}", $i, e.reason)) }
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
        Err(invalid("could not read the call's arguments"))
    } else {
        // SAFETY: `define` set `data` to an `Rc<Hot>` that this function object keeps alive.
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

/// Counts its arguments, for the array of N-API values a function reads.
macro_rules! count {
    () => { 0usize };
    ($head:ident $($tail:ident)*) => { 1usize + count!($($tail)*) };
}

/// Its second argument: lets an optional marker expand to a value named by the macro itself.
macro_rules! second {
    ($marker:ident, $value:expr) => {
        $value
    };
}

/// Declares each hot function: its JS name, and the `Hot` method its converted arguments go to.
/// `@env` in place of arguments passes the call's env instead.
macro_rules! hot_functions {
    ($($js:literal => $method:ident($(@$env:ident)? $($arg:ident: $ty:ty),*);)*) => {
        /// Every hot function, by JS name.
        const FUNCTIONS: &[(&CStr, Callback)] = &[$(($js, {
            unsafe extern "C" fn $method(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
                let body = |hot: &Hot, _argv: &[sys::napi_value; count!($($arg)*)]| {
                    let mut _next = 0;
                    $(
                        let $arg = Into::into(arg!(env, _argv, _next, $ty));
                        _next += 1;
                    )*
                    hot.$method($(second!($env, env),)? $($arg),*)
                };
                // SAFETY: called by N-API as the function `define` created.
                unsafe { call(env, info, body) }
            }
            $method
        })),*];
    };
}

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

hot_functions! {
    c"read" => read(id: Int32, fd: Int32, fixed: bool, buf: Bytes, offset: f64, exact: bool);
    c"readCached" => read_cached(fd: Int32, buf: Bytes, offset: f64);
    c"readMany" => read_many(id: Int32, fd: Int32, fixed: bool, buf: Bytes, ranges: F64s, results: Fixed<I32s>, unread_only: bool);
    c"readManyCached" => read_many_cached(fd: Int32, buf: Bytes, ranges: F64s, results: Fixed<I32s>);
    c"write" => write(id: Int32, fd: Int32, fixed: bool, buf: Bytes, offset: f64, all: bool);
    c"fsync" => fsync(id: Int32, fd: Int32, fixed: bool, datasync: bool);
    c"fallocate" => fallocate(id: Int32, fd: Int32, fixed: bool, offset: f64, length: f64, mode: Int32);
    c"fadvise" => fadvise(id: Int32, fd: Int32, fixed: bool, offset: f64, length: f64, advice: Int32);
    c"ftruncate" => ftruncate(id: Int32, fd: Int32, fixed: bool, length: f64);
    c"fstat" => fstat(id: Int32, fd: Int32, fixed: bool, mask: Uint32, out: Bytes);
    c"statx" => statx(id: Int32, dirfd: Int32, path: Path, flags: Int32, mask: Uint32, out: Bytes);
    c"statCached" => stat_cached(dirfd: Int32, path: Path, flags: Int32, mask: Uint32, out: Bytes);
    c"openat" => openat(id: Int32, dirfd: Int32, path: Path, flags: Int32, mode: Uint32);
    c"openat2" => openat2(id: Int32, dirfd: Int32, path: Path, flags: Int32, mode: Uint32, resolve: Uint32);
    c"readFile" => read_file(id: Int32, dirfd: Int32, path: Path, buf: Fixed<Bytes>);
    c"readFileCached" => read_file_cached(dirfd: Int32, path: Path, buf: Bytes);
    c"writeFile" => write_file(id: Int32, dirfd: Int32, path: Path, flags: Int32, mode: Uint32, buf: Bytes);
    c"access" => access(id: Int32, dirfd: Int32, path: Path);
    c"close" => close(id: Int32, fd: Int32);
    c"forgetFd" => forget_fd(fd: Int32);
    c"renameat" => renameat(id: Int32, old_dirfd: Int32, old_path: Path, new_dirfd: Int32, new_path: Path, flags: Uint32);
    c"unlinkat" => unlinkat(id: Int32, dirfd: Int32, path: Path, flags: Int32);
    c"mkdirat" => mkdirat(id: Int32, dirfd: Int32, path: Path, mode: Uint32);
    c"symlinkat" => symlinkat(id: Int32, target: Path, new_dirfd: Int32, link_path: Path);
    c"linkat" => linkat(id: Int32, old_dirfd: Int32, old_path: Path, new_dirfd: Int32, new_path: Path, flags: Int32);
    c"registerFile" => register_file(id: Int32, fd: Int32);
    c"unregisterFile" => unregister_file(id: Int32, slot: Uint32);
    c"flush" => flush(out: I32s, settle: bool);
    c"cancel" => cancel(token: f64);
    c"ref" => refer(@env);
    c"unref" => unref(@env);
    c"isClosed" => is_closed();
}

/// Drops the `Rc<Hot>` a hot function held, when that function is collected (on the JS thread).
unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Rc::into_raw` that `define` gave this function, released once, on
    // the JS thread that owns every other count of it.
    drop(unsafe { Rc::from_raw(data.cast::<Hot>().cast_const()) });
}

/// Defines every hot function on `object` (the ring's JS object), over `host`.
///
/// # Safety
/// `env` and `object` must be the live env and an object of the current call.
pub(crate) unsafe fn define(env: sys::napi_env, object: sys::napi_value, host: Arc<Host>) -> Result<()> {
    let hot = Rc::new(Hot { host, done: RefCell::new(Vec::new()), group: RefCell::new((Vec::new(), Vec::new())) });
    for &(name, callback) in FUNCTIONS {
        let data = Rc::into_raw(Rc::clone(&hot)).cast_mut().cast::<c_void>();
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
