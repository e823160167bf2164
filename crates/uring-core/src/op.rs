//! Operations: what each one owns while the kernel works, how it becomes a submission entry,
//! and what its completion means.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;

use io_uring::{opcode, squeue, types};

/// Builds an entry for either a raw or a registered fd.
macro_rules! with_target {
    ($target:expr, |$fd:ident| $build:expr) => {
        match $target {
            Target::Fd(raw) => {
                let $fd = types::Fd(raw);
                $build
            }
            Target::Fixed(slot) => {
                let $fd = types::Fixed(slot);
                $build
            }
        }
    };
}

use crate::memory::Memory;

/// The kernel's per-call limit on a read or write (`MAX_RW_COUNT`: 2 GiB minus 4 KiB).
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

/// The page cache holds whole pages, and no page is smaller than this: the kernel's copy of a
/// buffered read stops, when it stops early, at a multiple of it.
pub(crate) const PAGE: u64 = 4096;

/// Size of `struct statx` as the kernel writes it.
pub const STATX_SIZE: usize = 256;

/// The file an fd-based operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Fd(RawFd),
    /// A slot of the ring's registered-file table.
    Fixed(u32),
}

/// One operation and everything the kernel may touch while it runs. Heap resources (buffers,
/// paths, output structs) never move while the operation sits in the slab, so the pointers an
/// entry carries stay valid until the operation's completion.
#[derive(Debug)]
pub enum Op {
    /// `exact`: resubmit the rest after short reads; stops early only at end of file. Without it,
    /// the rest is resubmitted only after a regular file's count that ends at a page boundary
    /// (`reap::cut_read_goes_on`).
    /// `stream`: the file took the first step at offset 0 but refuses any other (a socket): the
    /// rest goes at offset 0 too (`stream_step`).
    Read { target: Target, buf: Memory, offset: u64, exact: bool, done: usize, stream: bool },
    /// `all`: resubmit the rest after short writes; stops early when the kernel writes 0, or with
    /// the count written so far when a later step fails (as write(2) does: the error comes again
    /// on the next write) or is cancelled, in the kernel or before it is submitted (the op
    /// abandoned, or its ring closing), so the caller knows how much landed.
    Write { target: Target, buf: Memory, offset: u64, all: bool, done: usize, stream: bool },
    Fsync { target: Target, datasync: bool },
    Fallocate { target: Target, offset: u64, len: u64, mode: i32 },
    Fadvise { target: Target, offset: u64, len: i64, advice: i32 },
    Ftruncate { target: Target, len: u64 },
    /// Statx of an open file. Statx has no fixed-file form: a registered file's slot gives way to
    /// the raw fd behind it when the ring accepts the op (`resolve_slot`), and the op does not
    /// hold the slot. The kernel looks the number up when the statx runs, on one of its workers:
    /// its owner must keep it open until the op completes.
    Fstat { target: Target, mask: u32, out: Memory },
    Statx { dirfd: RawFd, path: CString, flags: i32, mask: u32, out: Memory },
    OpenAt { dirfd: RawFd, path: CString, flags: i32, mode: u32 },
    OpenAt2 { dirfd: RawFd, path: CString, how: Box<types::OpenHow> },
    Close { fd: RawFd },
    RenameAt { old_dirfd: RawFd, old_path: CString, new_dirfd: RawFd, new_path: CString, flags: u32 },
    UnlinkAt { dirfd: RawFd, path: CString, flags: i32 },
    MkdirAt { dirfd: RawFd, path: CString, mode: u32 },
    SymlinkAt { target: CString, new_dirfd: RawFd, link_path: CString },
    LinkAt { old_dirfd: RawFd, old_path: CString, new_dirfd: RawFd, new_path: CString, flags: i32 },
    /// Put `fd` into registered slot `slot`; the completion's result is the slot index.
    RegisterFile { slot: u32, fds: Box<[RawFd; 1]> },
    /// Empty registered slot `slot`; the slot is reused only after this completion.
    UnregisterFile { slot: u32, fds: Box<[RawFd; 1]> },
    /// Open `path`, read it from offset 0 until `buf` is full or end of file (or write all of
    /// `buf` from offset 0 until the kernel writes 0), close it: one op for the caller, three or
    /// more steps for the kernel (two for an empty `buf`), resubmitted by the completion thread.
    /// The result is the byte count or the first error (for a write, close's too); the fd is
    /// always closed, except by a read with `kept` that fills `buf` (see `read_file_keeping`).
    WholeFile { dirfd: RawFd, path: CString, flags: i32, mode: u32, buf: Memory, kept: Option<Memory>, write: bool, phase: WholeFilePhase },
}

/// The step a `WholeFile` op is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WholeFilePhase {
    Open,
    Transfer { fd: RawFd, done: usize },
    /// Closing, with the result to report once closed.
    Close { fd: RawFd, result: i32 },
    /// A read filled its buffer and left the file open for the caller (`read_file_keeping`).
    Kept { fd: RawFd },
    /// The file is closed.
    Done,
}

/// What the completion thread does with a completion.
pub(crate) enum Next {
    /// Deliver this result.
    Complete(i32),
    /// Submit the rest of the operation again.
    Resubmit,
}

const EMPTY_PATH: &std::ffi::CStr = c"";
/// Reads from this size on may go to a kernel worker when several are submitted together.
pub const LARGE_READ: usize = 256 * 1024;

/// The bytes of a kept fd (`read_file_keeping`).
pub const FD_BYTES: usize = std::mem::size_of::<i32>();

impl Op {
    /// Bytes the next entry of this op may copy between the page cache and its buffer: what a
    /// thread that submits it inline may spend copying.
    pub(crate) fn bytes_to_copy(&self) -> usize {
        match self {
            Op::Read { buf, done, .. } | Op::Write { buf, done, .. } => buf.len().saturating_sub(*done),
            Op::WholeFile { buf, phase: WholeFilePhase::Transfer { done, .. }, .. } => buf.len().saturating_sub(*done),
            _ => 0,
        }
    }

    /// A read large enough that a kernel worker copying it beside the submitting thread pays for
    /// the hand-off.
    pub(crate) fn large_read(&self) -> bool {
        matches!(self, Op::Read { .. }) && self.bytes_to_copy() >= LARGE_READ
    }

    /// Whether the kernel always hands this op to one of its workers (it forces these async), so
    /// whoever submits it only queues it. The kernel then frees the request through task work on
    /// the submitting thread, an interrupt for a busy JS thread: a thread submitting inline leaves
    /// these ops to the submission thread.
    pub(crate) fn runs_on_worker(&self) -> bool {
        match self {
            Op::Fsync { .. }
            | Op::Fallocate { .. }
            | Op::Ftruncate { .. }
            | Op::Fstat { .. }
            | Op::Statx { .. }
            | Op::RenameAt { .. }
            | Op::UnlinkAt { .. }
            | Op::MkdirAt { .. }
            | Op::SymlinkAt { .. }
            | Op::LinkAt { .. } => true,
            // Only these three just set the file's readahead mode; the others may block.
            Op::Fadvise { advice, .. } => {
                !matches!(*advice, libc::POSIX_FADV_NORMAL | libc::POSIX_FADV_RANDOM | libc::POSIX_FADV_SEQUENTIAL)
            }
            _ => false,
        }
    }

    pub fn read(target: Target, buf: Memory, offset: u64) -> Op {
        Op::Read { target, buf, offset, exact: false, done: 0, stream: false }
    }

    pub fn read_exact(target: Target, buf: Memory, offset: u64) -> Op {
        Op::Read { target, buf, offset, exact: true, done: 0, stream: false }
    }

    pub fn write(target: Target, buf: Memory, offset: u64) -> Op {
        Op::Write { target, buf, offset, all: false, done: 0, stream: false }
    }

    pub fn write_all(target: Target, buf: Memory, offset: u64) -> Op {
        Op::Write { target, buf, offset, all: true, done: 0, stream: false }
    }

    pub fn fstat(target: Target, mask: u32) -> Op {
        Op::Fstat { target, mask, out: Memory::zeroed(STATX_SIZE) }
    }

    pub fn statx(dirfd: RawFd, path: CString, flags: i32, mask: u32) -> Op {
        Op::Statx { dirfd, path, flags, mask, out: Memory::zeroed(STATX_SIZE) }
    }

    pub fn read_file(dirfd: RawFd, path: CString, buf: Memory) -> Op {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC;
        Op::WholeFile { dirfd, path, flags, mode: 0, buf, kept: None, write: false, phase: WholeFilePhase::Open }
    }

    /// `read_file`, but a read that fills `buf` leaves the file open: the op then completes with
    /// `buf.len()` and the fd, written to `kept` (4 bytes, a little-endian i32), is the caller's,
    /// to read the rest from and close. A pipe's or a device's data cannot be read again, so
    /// closing it to reopen it with a larger buffer would lose what was read. If the caller gave
    /// up on the op (cancelled it), or the ring is closing, the engine closes the fd and the
    /// result is `-ECANCELED`. `kept` must be lent memory.
    pub fn read_file_keeping(dirfd: RawFd, path: CString, buf: Memory, kept: Memory) -> Op {
        let flags = libc::O_RDONLY | libc::O_CLOEXEC;
        Op::WholeFile { dirfd, path, flags, mode: 0, buf, kept: Some(kept), write: false, phase: WholeFilePhase::Open }
    }

    /// Opens `path` with O_PATH and closes it: whether it exists and can be reached (access(2)
    /// with F_OK, but with the effective ids), without opening the file itself. statx would answer
    /// too, but io_uring always runs statx on a kernel worker, where an open of a path in the
    /// dentry cache completes inline.
    pub fn open_path(dirfd: RawFd, path: CString) -> Op {
        let flags = libc::O_PATH | libc::O_CLOEXEC;
        Op::WholeFile { dirfd, path, flags, mode: 0, buf: Memory::zeroed(0), kept: None, write: false, phase: WholeFilePhase::Open }
    }

    /// `flags` are open(2)'s (write access, and O_CREAT / O_TRUNC / O_APPEND / O_EXCL as the
    /// caller wants); `mode` is for a file it creates.
    pub fn write_file(dirfd: RawFd, path: CString, flags: i32, mode: u32, buf: Memory) -> Op {
        Op::WholeFile { dirfd, path, flags: flags | libc::O_CLOEXEC, mode, buf, kept: None, write: true, phase: WholeFilePhase::Open }
    }

    pub fn register_file(fd: RawFd) -> Op {
        // The slot is chosen by the ring's file table when the op is submitted.
        Op::RegisterFile { slot: u32::MAX, fds: Box::new([fd]) }
    }

    pub fn unregister_file(slot: u32) -> Op {
        Op::UnregisterFile { slot, fds: Box::new([-1]) }
    }

    /// The file an fd-based op acts on.
    pub(crate) fn target(&self) -> Option<Target> {
        match self {
            Op::Read { target, .. }
            | Op::Write { target, .. }
            | Op::Fsync { target, .. }
            | Op::Fallocate { target, .. }
            | Op::Fadvise { target, .. }
            | Op::Ftruncate { target, .. }
            | Op::Fstat { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// The registered slot this op uses, if any (checked against the file table on submit).
    pub(crate) fn fixed_slot(&self) -> Option<u32> {
        match self.target() {
            Some(Target::Fixed(slot)) => Some(slot),
            _ => None,
        }
    }

    /// Puts `raw`, the fd registered in this op's slot, in the slot's place if the kernel takes
    /// this op by raw fd only (statx).
    pub(crate) fn resolve_slot(&mut self, raw: RawFd) {
        if let Op::Fstat { target, .. } = self {
            *target = Target::Fd(raw);
        }
    }

    /// Checks what the kernel must never see; runs on the caller's thread before queueing.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let check_out = |out: &Memory| {
            if out.len() < STATX_SIZE {
                Err(format!("statx output needs {STATX_SIZE} bytes, got {}", out.len()))
            } else {
                Ok(())
            }
        };
        let check_offset = |offset: u64| {
            if offset > i64::MAX as u64 {
                Err(format!("offset {offset} is beyond 2^63 - 1"))
            } else {
                Ok(())
            }
        };
        let check_fd = |fd: RawFd| if fd < 0 { Err(format!("fd {fd} is negative")) } else { Ok(()) };
        let check_dirfd = |fd: RawFd| {
            if fd < 0 && fd != libc::AT_FDCWD {
                Err(format!("directory fd {fd} is neither an fd nor AT_FDCWD"))
            } else {
                Ok(())
            }
        };
        if let Some(Target::Fd(fd)) = self.target() {
            check_fd(fd)?;
        }
        match self {
            Op::Statx { dirfd, .. }
            | Op::OpenAt { dirfd, .. }
            | Op::OpenAt2 { dirfd, .. }
            | Op::UnlinkAt { dirfd, .. }
            | Op::WholeFile { dirfd, .. }
            | Op::MkdirAt { dirfd, .. }
            | Op::SymlinkAt { new_dirfd: dirfd, .. } => check_dirfd(*dirfd)?,
            Op::RenameAt { old_dirfd, new_dirfd, .. } | Op::LinkAt { old_dirfd, new_dirfd, .. } => {
                check_dirfd(*old_dirfd)?;
                check_dirfd(*new_dirfd)?;
            }
            Op::Close { fd } => check_fd(*fd)?,
            Op::RegisterFile { fds, .. } => check_fd(fds[0])?,
            _ => {}
        }
        match self {
            Op::Read { buf, offset, exact: whole, .. } | Op::Write { buf, offset, all: whole, .. } => {
                if *whole && buf.len() > i32::MAX as usize {
                    // The completion reports the total moved as an i32; larger whole transfers are
                    // split by the caller.
                    return Err(format!("a whole read/write is limited to {} bytes, got {}", i32::MAX, buf.len()));
                }
                check_offset(*offset)?;
                check_offset(*offset + buf.len() as u64)
            }
            Op::Fallocate { offset, len, .. } => {
                check_offset(*offset)?;
                check_offset(offset.saturating_add(*len))
            }
            Op::Fadvise { offset, len, .. } => {
                check_offset(*offset)?;
                if *len < 0 {
                    Err(format!("fadvise length {len} is negative"))
                } else if *len > i64::from(u32::MAX) {
                    // The entry's length field holds 32 bits: more would be cut, silently.
                    Err(format!("fadvise length {len} is more than an io_uring entry holds ({})", u32::MAX))
                } else {
                    Ok(())
                }
            }
            Op::Ftruncate { len, .. } => check_offset(*len),
            Op::Fstat { out, .. } | Op::Statx { out, .. } => check_out(out),
            Op::WholeFile { buf, .. } if buf.len() > i32::MAX as usize => {
                Err(format!("a whole-file read or write is limited to {} bytes, got {}", i32::MAX, buf.len()))
            }
            // Owned memory is not handed back: the fd written there would be lost.
            Op::WholeFile { kept: Some(kept), .. } if kept.len() != FD_BYTES || kept.is_owned() => {
                Err(format!("a kept fd takes {FD_BYTES} bytes of the caller's memory, got {} {}", kept.len(), if kept.is_owned() { "owned" } else { "lent" }))
            }
            _ => Ok(()),
        }
    }

    /// The copy this op's next step makes, if it is a read or a write (a whole-file op's too).
    pub(crate) fn transfer(&mut self) -> Option<Transfer> {
        let (target, buf, offset, done, write) = match self {
            Op::Read { target, buf, offset, done, stream, .. } => (*target, buf, step_offset(*offset, *done, *stream), *done, false),
            Op::Write { target, buf, offset, done, stream, .. } => (*target, buf, step_offset(*offset, *done, *stream), *done, true),
            Op::WholeFile { buf, write, phase: WholeFilePhase::Transfer { fd, done }, .. } => {
                (Target::Fd(*fd), buf, *done as u64, *done, *write)
            }
            _ => return None,
        };
        // `done < buf.len()` in a whole-file op's transfer, and `<=` for reads and writes.
        let len = (buf.len() - done).min(MAX_RW_COUNT);
        // SAFETY: `done <= buf.len()`, so the pointer stays inside the buffer.
        let ptr = unsafe { buf.as_mut_ptr().add(done) };
        Some(Transfer { target, ptr, len, offset, write })
    }

    /// The submission entry for this op's next step.
    pub(crate) fn entry(&mut self) -> squeue::Entry {
        if let Some(transfer) = self.transfer() {
            return transfer.entry();
        }
        match self {
            // Built above.
            Op::Read { .. } | Op::Write { .. } => opcode::Nop::new().build(),
            Op::Fsync { target, datasync } => {
                let flags = if *datasync { types::FsyncFlags::DATASYNC } else { types::FsyncFlags::empty() };
                with_target!(*target, |fd| opcode::Fsync::new(fd).flags(flags).build())
            }
            Op::Fallocate { target, offset, len, mode } => {
                with_target!(*target, |fd| opcode::Fallocate::new(fd, *len).offset(*offset).mode(*mode).build())
            }
            Op::Fadvise { target, offset, len, advice } => {
                with_target!(*target, |fd| opcode::Fadvise::new(fd, *len, *advice).offset(*offset).build())
            }
            Op::Ftruncate { target, len } => with_target!(*target, |fd| opcode::Ftruncate::new(fd, *len).build()),
            Op::Fstat { target, mask, out } => {
                let fd = match *target {
                    Target::Fd(fd) => fd,
                    // Never here: the ring put the slot's raw fd in its place when it accepted the
                    // op (`resolve_slot`). -1 would fail as EBADF, never stat another file.
                    Target::Fixed(_) => -1,
                };
                opcode::Statx::new(types::Fd(fd), EMPTY_PATH.as_ptr(), out.as_mut_ptr().cast())
                    .flags(libc::AT_EMPTY_PATH)
                    .mask(*mask)
                    .build()
            }
            Op::Statx { dirfd, path, flags, mask, out } => {
                opcode::Statx::new(types::Fd(*dirfd), path.as_ptr(), out.as_mut_ptr().cast())
                    .flags(*flags)
                    .mask(*mask)
                    .build()
            }
            Op::OpenAt { dirfd, path, flags, mode } => {
                opcode::OpenAt::new(types::Fd(*dirfd), path.as_ptr()).flags(*flags).mode(*mode).build()
            }
            Op::OpenAt2 { dirfd, path, how } => {
                opcode::OpenAt2::new(types::Fd(*dirfd), path.as_ptr(), &**how).build()
            }
            Op::Close { fd } => opcode::Close::new(types::Fd(*fd)).build(),
            Op::RenameAt { old_dirfd, old_path, new_dirfd, new_path, flags } => opcode::RenameAt::new(
                types::Fd(*old_dirfd),
                old_path.as_ptr(),
                types::Fd(*new_dirfd),
                new_path.as_ptr(),
            )
            .flags(*flags)
            .build(),
            Op::UnlinkAt { dirfd, path, flags } => {
                opcode::UnlinkAt::new(types::Fd(*dirfd), path.as_ptr()).flags(*flags).build()
            }
            Op::MkdirAt { dirfd, path, mode } => {
                opcode::MkDirAt::new(types::Fd(*dirfd), path.as_ptr()).mode(*mode).build()
            }
            Op::SymlinkAt { target, new_dirfd, link_path } => {
                opcode::SymlinkAt::new(types::Fd(*new_dirfd), target.as_ptr(), link_path.as_ptr()).build()
            }
            Op::LinkAt { old_dirfd, old_path, new_dirfd, new_path, flags } => opcode::LinkAt::new(
                types::Fd(*old_dirfd),
                old_path.as_ptr(),
                types::Fd(*new_dirfd),
                new_path.as_ptr(),
            )
            .flags(*flags)
            .build(),
            Op::RegisterFile { slot, fds } | Op::UnregisterFile { slot, fds } => {
                opcode::FilesUpdate::new(fds.as_ptr(), 1).offset(*slot as i32).build()
            }
            Op::WholeFile { dirfd, path, flags, mode, phase, .. } => match *phase {
                WholeFilePhase::Open => {
                    opcode::OpenAt::new(types::Fd(*dirfd), path.as_ptr()).flags(*flags).mode(*mode).build()
                }
                WholeFilePhase::Close { fd, .. } => opcode::Close::new(types::Fd(fd)).build(),
                // Never queued: these have completed (and a transfer is built above).
                WholeFilePhase::Transfer { .. } | WholeFilePhase::Kept { .. } | WholeFilePhase::Done => {
                    opcode::Nop::new().build()
                }
            },
        }
    }

    /// Interprets this op's completion: finished, or more to submit.
    pub(crate) fn on_result(&mut self, res: i32) -> Next {
        match self {
            Op::Read { done, stream, .. } | Op::Write { done, stream, .. } if stream_step(res, *done, *stream) => {
                *stream = true;
                Next::Resubmit
            }
            Op::Read { buf, exact, done, .. } => progress(res, buf.len(), *exact, done),
            // A read's error stands even after progress: a short exact read means end of file. A
            // write cancelled after progress (its caller interrupted) reports the count too, as
            // does one stopped between steps (`stopped`).
            Op::Write { done, .. } if res < 0 && *done > 0 => Next::Complete(*done as i32),
            Op::Write { buf, all, done, .. } => progress(res, buf.len(), *all, done),
            // FILES_UPDATE reports how many slots it changed; callers want the slot it filled.
            Op::RegisterFile { slot, .. } if res >= 0 => Next::Complete(*slot as i32),
            Op::UnregisterFile { .. } if res >= 0 => Next::Complete(0),
            Op::WholeFile { buf, kept, write, phase, .. } => whole_file_step(phase, res, buf.len(), *write, kept.as_mut()),
            _ => Next::Complete(res),
        }
    }

    /// The file of a read that ends with a count, `result` (see `reap::stopped_read_is_cancelled`);
    /// `None` for anything else.
    pub(crate) fn counted_read_target(&self, result: i32) -> Option<Target> {
        match self {
            Op::Read { target, .. } if result >= 0 => Some(*target),
            _ => None,
        }
    }

    /// The file of a read whose step, `step` bytes, left it short of its buffer at a page boundary
    /// (see `reap::cut_read_goes_on`); `None` for anything else, a step that moved nothing (end
    /// of file) or failed, a count ending inside a page (end of file for the kernel's copy), and a
    /// buffer larger than a completion can count (each step stops at `MAX_RW_COUNT`, a page
    /// boundary: such a read reports the first step's count).
    pub(crate) fn read_cut_at_page(&self, step: i32) -> Option<Target> {
        match self {
            Op::Read { target, buf, offset, exact: false, done, stream: false }
                if step > 0
                    && *done < buf.len()
                    && buf.len() <= i32::MAX as usize
                    && (*offset + *done as u64).is_multiple_of(PAGE) =>
            {
                Some(*target)
            }
            _ => None,
        }
    }

    /// What this op reports when it ends before its next step runs (abandoned, or its ring
    /// closing): what that step would give had the kernel cancelled it, so a write that made
    /// progress reports its count and a close (which the engine then does itself) success. A
    /// whole-file op reports the cancel whatever step it reached; its fd is closed (`held_fd`).
    pub(crate) fn stopped(&mut self) -> i32 {
        let cancelled = -libc::ECANCELED;
        match self {
            Op::WholeFile { .. } => return cancelled,
            Op::Close { .. } => return 0,
            _ => {}
        }
        match self.on_result(cancelled) {
            Next::Complete(result) => result,
            // No other op goes on after an error.
            Next::Resubmit => cancelled,
        }
    }

    /// Whether this op (its next step) opens a file by path.
    pub(crate) fn opens(&self) -> bool {
        matches!(self, Op::OpenAt { .. } | Op::OpenAt2 { .. } | Op::WholeFile { phase: WholeFilePhase::Open, .. })
    }

    /// Makes a plain open (no `O_CREAT`, `O_TRUNC` or `O_TMPFILE`, which io_uring sends to a
    /// kernel worker anyway) whose path `outside_remote` vouches for an openat2 that follows no
    /// symlink (`remote_mounts::outside_remote` says why). Returns whether it did.
    pub(crate) fn refuse_symlinks(&mut self, outside_remote: impl FnOnce(RawFd, &CStr) -> bool) -> bool {
        let Op::OpenAt { dirfd, path, flags, .. } = self else { return false };
        let (dirfd, flags) = (*dirfd, *flags);
        if flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_TMPFILE) != 0 || !outside_remote(dirfd, path) {
            return false;
        }
        let how = types::OpenHow::new().flags(flags as u64).resolve(libc::RESOLVE_NO_SYMLINKS);
        *self = Op::OpenAt2 { dirfd, path: std::mem::take(path), how: Box::new(how) };
        true
    }

    /// Undoes `refuse_symlinks`: the plain open again (its mode unused, as it creates nothing).
    pub(crate) fn follow_symlinks(&mut self) {
        if let Op::OpenAt2 { dirfd, path, how } = self {
            *self = Op::OpenAt { dirfd: *dirfd, path: std::mem::take(path), flags: how_flags(how) as i32, mode: 0 };
        }
    }

    /// Whether this op is an open that open(2) would let block for a FIFO's reader: write-only,
    /// without O_NONBLOCK. (Read-write never waits; read-only does not wait in io_uring's first,
    /// non-blocking try, and its reads then wait for data.)
    pub(crate) fn open_waits_for_reader(&self) -> bool {
        let flags = match self {
            Op::OpenAt { flags, .. } | Op::WholeFile { flags, phase: WholeFilePhase::Open, .. } => *flags as u64,
            Op::OpenAt2 { how, .. } => how_flags(how),
            _ => return false,
        };
        flags & libc::O_ACCMODE as u64 == libc::O_WRONLY as u64 && flags & libc::O_NONBLOCK as u64 == 0
    }

    /// An fd whoever drops this op unrun must close: one it opened and has not closed yet, or
    /// the one a close was asked for (the caller already counts it as closed).
    pub(crate) fn held_fd(&self) -> Option<RawFd> {
        match self {
            Op::WholeFile { phase: WholeFilePhase::Transfer { fd, .. } | WholeFilePhase::Close { fd, .. }, .. }
            | Op::Close { fd } => Some(*fd),
            _ => None,
        }
    }

    /// Whether the step the kernel has (or would get next) is a close: the kernel takes the fd
    /// out of the table before it flushes the file, so once one is under way the fd is gone,
    /// whatever it reports (an interrupted flush's EINTR, a FUSE daemon's own ECANCELED). The
    /// engine never cancels one in the kernel: a cancel's ECANCELED could not be told from the
    /// close's own, and closing the number again could close a file opened meanwhile.
    pub(crate) fn closes(&self) -> bool {
        matches!(self, Op::Close { .. } | Op::WholeFile { phase: WholeFilePhase::Close { .. }, .. })
    }

    /// The fd this op, completing with `res`, hands its caller: a successful open's, or the one a
    /// whole-file read left open (`Kept`). Its caller's to close, or the engine's if the caller
    /// gave up (`reap`).
    pub(crate) fn handed_fd(&self, res: i32) -> Option<RawFd> {
        match self {
            Op::OpenAt { .. } | Op::OpenAt2 { .. } if res >= 0 => Some(res),
            Op::WholeFile { phase: WholeFilePhase::Kept { fd }, .. } if res >= 0 => Some(*fd),
            _ => None,
        }
    }

    /// Whether this op hands owned memory back with its completion (see `into_output`).
    pub(crate) fn returns_output(&self) -> bool {
        match self {
            Op::Read { buf, .. } | Op::WholeFile { buf, write: false, .. } => buf.is_owned(),
            Op::Fstat { out, .. } | Op::Statx { out, .. } => out.is_owned(),
            _ => false,
        }
    }

    /// The memory to hand back with the completion: owned read buffers cut to what was read,
    /// owned statx output. Borrowed memory gives nothing back.
    pub(crate) fn into_output(self, res: i32) -> Option<Vec<u8>> {
        match self {
            Op::Read { buf, .. } | Op::WholeFile { buf, write: false, .. } if res >= 0 => buf.into_filled(res as usize),
            Op::Fstat { out, .. } | Op::Statx { out, .. } if res >= 0 => out.into_filled(STATX_SIZE),
            _ => None,
        }
    }
}

/// One step of a read or write: `len` bytes between the op's memory at `ptr` and the file at
/// `offset`. The pointer stays valid while the op is in the slab, until this step's result is
/// applied to it.
pub(crate) struct Transfer {
    pub target: Target,
    pub ptr: *mut u8,
    pub len: usize,
    pub offset: u64,
    pub write: bool,
}

impl Transfer {
    fn entry(&self) -> squeue::Entry {
        // Fits: at most MAX_RW_COUNT.
        let (ptr, len) = (self.ptr, self.len as u32);
        if self.write {
            with_target!(self.target, |fd| opcode::Write::new(fd, ptr, len).offset(self.offset).build())
        } else {
            with_target!(self.target, |fd| opcode::Read::new(fd, ptr, len).offset(self.offset).build())
        }
    }
}

/// Moves a `WholeFile` op one step on. A transfer of 0 bytes ends it: end of file for a read, a
/// stuck device for a write (the caller sees the short count). A read that fills its buffer
/// leaves the file open for the caller if it has somewhere to tell it the fd (`kept`).
fn whole_file_step(phase: &mut WholeFilePhase, res: i32, len: usize, write: bool, kept: Option<&mut Memory>) -> Next {
    let (next, outcome) = match *phase {
        WholeFilePhase::Open if res < 0 => (WholeFilePhase::Done, Next::Complete(res)),
        // Nothing to read (an O_PATH open); a write of nothing still writes once, as write(2)
        // of nothing does, which fails on a file not open for writing.
        WholeFilePhase::Open if len == 0 && !write => (WholeFilePhase::Close { fd: res, result: 0 }, Next::Resubmit),
        WholeFilePhase::Open => (WholeFilePhase::Transfer { fd: res, done: 0 }, Next::Resubmit),
        WholeFilePhase::Transfer { fd, .. } if res < 0 => (WholeFilePhase::Close { fd, result: res }, Next::Resubmit),
        WholeFilePhase::Transfer { fd, done } => {
            let done = done + res as usize;
            if res > 0 && done < len {
                (WholeFilePhase::Transfer { fd, done }, Next::Resubmit)
            } else if let Some(kept) = kept.filter(|_| res > 0 && !write) {
                // SAFETY: `kept` is FD_BYTES long (checked in `validate`) and lent until this
                // op's completion, which this is.
                unsafe { std::ptr::copy_nonoverlapping(fd.to_le_bytes().as_ptr(), kept.as_mut_ptr(), FD_BYTES) };
                // Fits: the buffer is at most i32::MAX bytes (checked in `validate`).
                (WholeFilePhase::Kept { fd }, Next::Complete(done as i32))
            } else {
                // Fits: the buffer is at most i32::MAX bytes (checked in `validate`).
                (WholeFilePhase::Close { fd, result: done as i32 }, Next::Resubmit)
            }
        }
        // Data read is in the buffer whatever close reports; a write's data may not be safe when
        // close fails (NFS reports a failed flush there), so that error is the write's result.
        WholeFilePhase::Close { result, .. } if write && res < 0 && result >= 0 => {
            (WholeFilePhase::Done, Next::Complete(res))
        }
        WholeFilePhase::Close { result, .. } => (WholeFilePhase::Done, Next::Complete(result)),
        WholeFilePhase::Kept { fd } => (WholeFilePhase::Kept { fd }, Next::Complete(res)),
        WholeFilePhase::Done => (WholeFilePhase::Done, Next::Complete(res)),
    };
    *phase = next;
    outcome
}

/// The file offset of a read's or write's next step: where the caller asked, plus what moved so
/// far; for a stream that refuses offsets (`stream_step`), 0.
fn step_offset(offset: u64, done: usize, stream: bool) -> u64 {
    if stream {
        0
    } else {
        offset + done as u64
    }
}

/// Whether a later step of a read or write failed only for its offset: a socket takes a read or
/// write at offset 0 and refuses any other with ESPIPE before it moves a byte (pipes ignore the
/// offset, seekable files never give ESPIPE). The first step, at the caller's offset 0, took the
/// bytes the op counts, so the rest must follow at offset 0, not fail and lose what was read.
fn stream_step(res: i32, done: usize, stream: bool) -> bool {
    res == -libc::ESPIPE && done > 0 && !stream
}

/// Advances a read or write by `res` bytes; with `whole`, asks for resubmission until `len` bytes
/// moved. A zero-byte step ends it: end of file for reads, a stuck device for writes; the caller
/// sees the short count and decides (UnexpectedEof / WriteZero).
fn progress(res: i32, len: usize, whole: bool, done: &mut usize) -> Next {
    if res < 0 {
        return Next::Complete(res);
    }
    *done += res as usize;
    if whole && res > 0 && *done < len {
        Next::Resubmit
    } else {
        // Fits: a single step moves at most MAX_RW_COUNT, and whole ops are refused above i32::MAX.
        Next::Complete(*done as i32)
    }
}

/// The open flags of an openat2.
fn how_flags(how: &types::OpenHow) -> u64 {
    // SAFETY: `OpenHow` is `repr(transparent)` over the kernel's `struct open_how`, whose first
    // field is the `__u64` flags (the openat2 ABI); a reference keeps it aligned.
    unsafe { *std::ptr::from_ref::<types::OpenHow>(how).cast::<u64>() }
}
