//! The ring handle: setup, submit, cancel and a bounded shutdown.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use io_uring::IoUring;

use crate::config::RingConfig;
use crate::error::EngineError;
use crate::files::FileTable;
use crate::remote_mounts;
use crate::group::{GroupKey, Member, Results};
use crate::handed;
use crate::off_ring;
use crate::op::Op;
use crate::ready::ReadyFd;
use crate::rescue::OpRescue;
use crate::slab::OpKey;
use crate::state::{InFlight, State};
use crate::threads;

/// One finished operation. `result` is the syscall's value or `-errno`; `output` returns owned
/// memory (an owned read buffer cut to the bytes read, an owned statx buffer).
#[derive(Debug)]
pub struct Completion {
    pub user: u64,
    pub result: i32,
    pub output: Option<Vec<u8>>,
}

/// Receives completions in batches: on the completion thread, on the submission thread for ops
/// that never reached the kernel, and on a caller's thread for completions beyond the room it
/// gave `Ring::submit_and_reap`. Must not block for long: it holds up reaping.
pub trait CompletionSink: Send + Sync + 'static {
    fn deliver(&self, batch: Vec<Completion>);
}

pub(crate) struct Shared {
    /// The kernel ring. Each engine thread holds a count of its own, and a caller that submits
    /// or reaps inline takes one for the call (`kernel`); a clean close takes this one out, so
    /// the ring's fd and mappings go when that close returns, not with the last `Ring` handle.
    kernel: Mutex<Option<Arc<IoUring>>>,
    pub state: Mutex<State>,
    /// Wakes the submission thread: work queued, capacity freed, closing, stop.
    pub work: Condvar,
    /// Wakes `close`: the slab became empty.
    pub drained: Condvar,
    /// Wakes the completion thread once entries are in the kernel for it to wait on, or when the
    /// caller stops reaping.
    pub reap_work: Condvar,
    /// Held by whoever reads the completion queue: the completion thread, or a caller reaping
    /// inline (`Ring::submit_and_reap`).
    pub reaper: Mutex<()>,
    /// The submission thread is waiting on `work`. Written only by that thread with `state`
    /// locked, so a caller that queued work under the lock and then sees `false` knows the thread
    /// will find that work before it waits; `flush` reads it without the lock.
    pub submitter_idle: AtomicBool,
    pub sink: Box<dyn CompletionSink>,
    /// Most entries kept in the kernel at once, so the completion queue never overflows.
    pub op_budget: usize,
    /// The completion queue's size: ops stay under `op_budget`, and cancel entries use the room
    /// left above it.
    pub cq_entries: usize,
    pub coop_taskrun: bool,
    /// The completion thread waits on `reap_work` while nothing is in the kernel (IOPOLL and
    /// inline-submitting rings).
    pub park_reaper: bool,
    /// The eventfd the kernel signals as it posts completions, while the caller reaps (closed
    /// when it stops, so a closed ring holds no fd of it).
    pub ready: Mutex<Option<ReadyFd>>,
    /// Completions are the caller's to reap (through `ready`) while the ring is open. Cleared
    /// under the state lock, then `reap_work` is notified.
    pub caller_reaps: AtomicBool,
    /// Counts the caller's reaps and inline flushes: the completion thread takes over while it
    /// stands still for `caller_stall` (`threads::park`).
    pub caller_seen: AtomicU64,
    pub caller_stall: Duration,
    /// Wakes an off-ring thread (`off_ring.rs`): copies for it, or stop.
    pub off_ring_work: Condvar,
    /// The off-ring threads started so far (`off_ring_ready`); joined by a clean close.
    off_ring: Mutex<Vec<JoinHandle<()>>>,
    /// This, for the off-ring threads to hold.
    this: Weak<Shared>,
}

impl Shared {
    /// Whether an off-ring thread will take `queued` copies, `idle` threads waiting for them,
    /// starting one if more are queued than wait, up to `OFF_RING_THREADS`: `false` only if none
    /// runs and none can be started, and then copies go to the kernel as before.
    pub(crate) fn off_ring_ready(&self, idle: usize, queued: usize) -> bool {
        let mut threads = self.off_ring.lock().unwrap_or_else(|p| p.into_inner());
        if idle < queued && threads.len() < OFF_RING_THREADS {
            let started = self.this.upgrade().and_then(|shared| {
                std::thread::Builder::new()
                    .name("uring-off-ring".into())
                    .spawn(move || off_ring::off_ring_loop(&shared))
                    .ok()
            });
            threads.extend(started);
        }
        !threads.is_empty()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a thread panicked while holding it; the state is still consistent
        // enough to shut down, which is all anyone does after that.
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The kernel ring, unless a clean close released it.
    pub(crate) fn kernel(&self) -> Option<Arc<IoUring>> {
        self.kernel.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn ready(&self) -> MutexGuard<'_, Option<ReadyFd>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resets the eventfd while the caller reaps; returns whether it did. Whoever calls this
    /// reaps afterwards: a completion whose signal it reset is in the queue by then.
    pub(crate) fn drain_ready(&self) -> bool {
        self.ready().as_ref().map(ReadyFd::drain).is_some()
    }
}

/// Most off-ring threads a ring starts (`off_ring.rs`): copies of FUSE files wait for their daemon
/// in parallel up to this.
const OFF_RING_THREADS: usize = 4;

/// The ring's threads while it runs; once closed, whether that close was clean.
enum Threads {
    Running(JoinHandle<bool>, JoinHandle<()>),
    Closed(bool),
}

/// A running ring: the kernel ring, its submission and completion threads, and the in-flight slab.
pub struct Ring {
    shared: Arc<Shared>,
    threads: Mutex<Threads>,
    shutdown_timeout: Duration,
    deferred_wakeups: bool,
    inline_submit: bool,
    sq_entries: u32,
    cq_entries: u32,
}

/// Checks an op against the ring's state: open for work, and any registered slot it uses in use.
/// An op the kernel takes only by raw fd gets the slot's now, while it is known to be there: an
/// unregister accepted next releases the slot at once, before either reaches the kernel.
fn admit(st: &State, op: &mut Op) -> Result<(), EngineError> {
    if st.closing {
        return Err(EngineError::Closed);
    }
    let Some(slot) = op.fixed_slot() else { return Ok(()) };
    let raw = st.files.raw_fd(slot).ok_or_else(|| not_registered(slot))?;
    op.resolve_slot(raw);
    Ok(())
}

/// Marks an op abandoned and arranges its cancel: sent to the kernel if it is there, else swept
/// out of the queue. Returns whether anything changed (the submission thread has work).
fn abandon(st: &mut State, key: OpKey) -> bool {
    let Some(op) = st.slab.get_mut(key) else { return false };
    if op.abandoned || matches!(op.op, Op::RegisterFile { .. } | Op::UnregisterFile { .. } | Op::Close { .. }) {
        return false;
    }
    op.abandoned = true;
    if op.in_kernel {
        st.cancels.push(key);
    } else {
        // Still queued: the submission thread sweeps it out of the queue as cancelled.
        st.abandoned_queued += 1;
    }
    true
}

fn not_registered(slot: u32) -> EngineError {
    EngineError::InvalidArgument(format!("registered file slot {slot} is not registered"))
}

/// Whether io_uring can be set up here: `Ok` or the positive errno of `io_uring_setup`.
pub fn probe() -> Result<(), i32> {
    IoUring::new(2).map(drop).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

fn setup(config: &RingConfig) -> io::Result<IoUring> {
    let build = |submit_all: bool| {
        let mut builder = IoUring::builder();
        builder.setup_clamp();
        if submit_all {
            builder.setup_submit_all();
        }
        if config.coop_taskrun {
            builder.setup_coop_taskrun();
        }
        if config.iopoll {
            builder.setup_iopoll();
        }
        if let Some(idle) = config.sqpoll_idle_ms {
            builder.setup_sqpoll(idle);
        }
        builder.build(config.entries)
    };
    // SUBMIT_ALL (5.18) keeps one bad entry from stalling the rest; older kernels refuse the flag.
    build(true).or_else(|e| if e.raw_os_error() == Some(libc::EINVAL) { build(false) } else { Err(e) })
}

/// The soft limit on open files (`u32::MAX` if unlimited or unknown).
fn fd_limit() -> u32 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return u32::MAX;
    }
    u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX)
}

fn setup_error(e: io::Error) -> EngineError {
    match e.raw_os_error() {
        Some(libc::EINVAL) => EngineError::InvalidConfig(
            "the kernel refused this ring configuration (EINVAL); iopoll and sqpoll need kernel support".into(),
        ),
        errno => EngineError::Unavailable { errno: errno.unwrap_or(libc::EIO), step: "io_uring_setup" },
    }
}

/// Sparse file tables came with Linux 5.19: older kernels refuse the request with EINVAL.
fn register_error(e: io::Error) -> EngineError {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    let step = if errno == libc::EINVAL {
        "registering a sparse file table (Linux 5.19 or newer)"
    } else {
        "registering the file table"
    };
    EngineError::Unavailable { errno, step }
}

impl Ring {
    pub fn new(config: RingConfig, sink: impl CompletionSink) -> Result<Ring, EngineError> {
        config.validate()?;
        // Before any op: whether opens must go to kernel workers (`remote_mounts.rs`).
        remote_mounts::watch();
        let ring = Arc::new(setup(&config).map_err(setup_error)?);
        // The kernel refuses a file table larger than RLIMIT_NOFILE (EMFILE): clamp to it, so a low
        // fd limit shrinks the table instead of making io_uring look unavailable.
        let registered_files = config.registered_files.min(fd_limit());
        if registered_files > 0 {
            // Before either thread exists. Slots change afterwards through FILES_UPDATE entries,
            // queued like any other op; the only other register calls are the eventfd's (below,
            // and `stop_caller_reaping`).
            ring.submitter().register_files_sparse(registered_files).map_err(register_error)?;
        }
        // SQPOLL submits from a kernel thread, IOPOLL completions must be polled for, and
        // COOP_TASKRUN would leave task work queued on a caller that may not enter again.
        let inline_submit =
            config.inline_submit && config.sqpoll_idle_ms.is_none() && !config.iopoll && !config.coop_taskrun;
        let sq_entries = ring.params().sq_entries();
        let cq_entries = ring.params().cq_entries();
        let ready = if inline_submit && config.caller_reaps { ReadyFd::register(&ring) } else { None };
        let shared = Arc::new_cyclic(|this| Shared {
            kernel: Mutex::new(Some(Arc::clone(&ring))),
            state: Mutex::new(State::new(FileTable::new(registered_files))),
            work: Condvar::new(),
            drained: Condvar::new(),
            reap_work: Condvar::new(),
            reaper: Mutex::new(()),
            submitter_idle: AtomicBool::new(false),
            sink: Box::new(sink),
            op_budget: cq_entries as usize - (cq_entries as usize / 8).clamp(1, 64),
            cq_entries: cq_entries as usize,
            coop_taskrun: config.coop_taskrun,
            park_reaper: config.iopoll || inline_submit,
            caller_reaps: AtomicBool::new(ready.is_some()),
            caller_seen: AtomicU64::new(0),
            caller_stall: config.caller_stall,
            ready: Mutex::new(ready),
            off_ring_work: Condvar::new(),
            off_ring: Mutex::new(Vec::new()),
            this: this.clone(),
        });
        let spawn_err = |e: io::Error| EngineError::Unavailable {
            errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
            step: "starting the ring's threads",
        };
        let submission = {
            let (shared, ring) = (Arc::clone(&shared), Arc::clone(&ring));
            std::thread::Builder::new()
                .name("uring-submit".into())
                .spawn(move || threads::submission_loop(&shared, &ring))
                .map_err(spawn_err)?
        };
        let completion = {
            let reaper = Arc::clone(&shared);
            match std::thread::Builder::new().name("uring-reap".into()).spawn(move || threads::completion_loop(&reaper, &ring)) {
                Ok(handle) => handle,
                Err(e) => {
                    // Stop the submission thread before reporting: no thread outlives a failed ring.
                    shared.lock().stop = true;
                    shared.work.notify_all();
                    let _ = submission.join();
                    return Err(spawn_err(e));
                }
            }
        };
        Ok(Ring {
            shared,
            threads: Mutex::new(Threads::Running(submission, completion)),
            shutdown_timeout: config.shutdown_timeout,
            deferred_wakeups: config.deferred_wakeups,
            inline_submit,
            sq_entries,
            cq_entries,
        })
    }

    /// Queues `op`; its completion reaches the sink with `user`. The returned key cancels it.
    pub fn submit(&self, user: u64, mut op: Op) -> Result<OpKey, EngineError> {
        op.validate().map_err(EngineError::InvalidArgument)?;
        let mut st = self.shared.lock();
        admit(&st, &mut op)?;
        match &mut op {
            Op::RegisterFile { slot, fds } => {
                *slot = st.files.reserve(fds[0])?;
            }
            Op::UnregisterFile { slot, .. } if !st.files.begin_release(*slot) => {
                return Err(not_registered(*slot));
            }
            _ => {}
        }
        let key = self.enqueue(&mut st, user, op, None);
        Ok(key)
    }

    /// Queues `ops` as one group, under one lock, all or none (if any is refused, nothing is
    /// queued): op `i` writes its result to `results[i]`, and a single completion for `user`
    /// (its result the op count) comes once every op has finished. The returned key cancels the
    /// group's unfinished ops (`cancel_group`). Registration ops and ops that return owned memory
    /// (whose output a group has no way to hand back) are refused.
    ///
    /// Takes the ops out of `ops`, queued or refused, and leaves its capacity for the caller's
    /// next group: a caller submitting batch after batch allocates nothing per batch.
    pub fn submit_group(&self, user: u64, ops: &mut Vec<Op>, results: Results) -> Result<GroupKey, EngineError> {
        self.queue_group(user, ops, None, results)
    }

    /// `submit_group` for ops that fill some of `results`' slots: op `i` writes `slots[i]`. The
    /// slots must rise strictly and lie inside `results`; the others keep what they hold (results
    /// the caller found itself, such as ranges of a batch read on its own thread).
    pub fn submit_group_in_slots(&self, user: u64, ops: &mut Vec<Op>, slots: &[u32], results: Results) -> Result<GroupKey, EngineError> {
        self.queue_group(user, ops, Some(slots), results)
    }

    fn queue_group(&self, user: u64, ops: &mut Vec<Op>, slots: Option<&[u32]>, results: Results) -> Result<GroupKey, EngineError> {
        let admitted = self.admit_group(ops, slots, &results);
        let group = admitted.map(|mut st| {
            let group = st.groups.insert(user, results, slots);
            for (index, op) in ops.drain(..).enumerate() {
                let key = self.enqueue(&mut st, user, op, Some(Member::new(group, index)));
                st.groups.join(group, key);
            }
            group
        });
        ops.clear();
        group
    }

    /// Checks every op of a group before any is queued; on success, the lock to queue them under.
    fn admit_group(&self, ops: &mut [Op], slots: Option<&[u32]>, results: &Results) -> Result<MutexGuard<'_, State>, EngineError> {
        let slotted = match slots {
            None => ops.len() == results.len(),
            Some(slots) => {
                slots.len() == ops.len()
                    && slots.windows(2).all(|pair| pair[0] < pair[1])
                    && slots.last().is_some_and(|&last| (last as usize) < results.len())
            }
        };
        if ops.is_empty() || !slotted {
            return Err(EngineError::InvalidArgument(format!(
                "a group needs at least one op and its own result slot per op, in order ({} ops, {} slots)",
                ops.len(),
                results.len()
            )));
        }
        for op in ops.iter() {
            op.validate().map_err(EngineError::InvalidArgument)?;
            if matches!(op, Op::RegisterFile { .. } | Op::UnregisterFile { .. }) {
                return Err(EngineError::InvalidArgument("registration ops cannot be grouped".into()));
            }
            if op.returns_output() {
                return Err(EngineError::InvalidArgument("a grouped op must read into lent memory".into()));
            }
        }
        let st = self.shared.lock();
        for op in ops {
            admit(&st, op)?;
        }
        Ok(st)
    }

    fn enqueue(&self, st: &mut State, user: u64, op: Op, member: Option<Member>) -> OpKey {
        let key = st.insert(InFlight {
            user,
            op,
            in_kernel: false,
            abandoned: false,
            on_worker: false,
            symlinks_refused: false,
            on_fuse: false,
            member,
            rescue: OpRescue::default(),
        });
        st.queue.push_back(key);
        if !self.deferred_wakeups {
            self.wake_submitter();
        }
        key
    }

    /// Wakes the submission thread for ops queued since the last wake-up (rings with
    /// `deferred_wakeups`; harmless otherwise).
    /// Takes no lock: a JS thread flushing must not wait for the engine's threads.
    pub fn flush(&self) {
        self.wake_submitter();
    }

    /// `flush`, but when the submission thread is idle and the ring allows it (`inline_submit`),
    /// the caller's thread submits the queued entries itself and appends to `out` whatever
    /// completed meanwhile, up to `max` completions (cached reads complete inside the submit
    /// call). Saves the two thread hand-offs that dominate a lone op's latency; everything else,
    /// and completions beyond `max`, reach the sink.
    pub fn submit_and_reap(&self, out: &mut Vec<Completion>, max: usize) {
        self.submit_and_reap_with(out, max, false);
    }

    /// `submit_and_reap` for a caller's last flush before its event loop waits (`caller_reaps`):
    /// the completions it takes also reset the eventfd, so the loop does not wake for them. A
    /// reset is a syscall; a loop that flushes many times a turn resets once, at the end.
    pub fn submit_and_reap_settled(&self, out: &mut Vec<Completion>, max: usize) {
        self.submit_and_reap_with(out, max, true);
    }

    fn submit_and_reap_with(&self, out: &mut Vec<Completion>, max: usize, settle: bool) {
        if !self.inline_submit || !self.shared.submitter_idle.load(Ordering::SeqCst) {
            self.wake_submitter();
            return;
        }
        let start = out.len();
        if threads::submit_inline(&self.shared, out, settle) {
            self.wake_submitter();
        }
        if out.len() - start > max {
            self.shared.sink.deliver(out.split_off(start + max));
        }
    }

    /// The eventfd to poll for completions while the caller reaps (`caller_reaps`); `None` on
    /// other rings and once the caller has stopped.
    pub fn ready_fd(&self) -> Option<RawFd> {
        self.shared.ready().as_ref().map(ReadyFd::raw)
    }

    /// For a caller that polls `ready_fd`, on its readiness: resets the eventfd, reaps what the
    /// kernel posted, submits what that reap queued again (the rest of a short read, the next
    /// stage of a whole-file read) as `submit_and_reap` would, and hands every completion to the
    /// sink. Does nothing once the caller has stopped or the ring closes (its threads take over).
    pub fn reap_ready(&self) {
        let mut out = Vec::new();
        self.reap_ready_into(&mut out);
        if !out.is_empty() {
            self.shared.sink.deliver(out);
        }
    }

    /// `reap_ready`, with the completions left in `out` for the caller to deliver itself.
    pub fn reap_ready_into(&self, out: &mut Vec<Completion>) {
        if !self.shared.drain_ready() {
            return;
        }
        if threads::reap_for_caller(&self.shared, out) {
            self.submit_and_reap_settled(out, usize::MAX);
        }
    }

    /// Hands reaping back to the completion thread for good, and closes the eventfd: for a
    /// caller that can no longer poll it (its event loop is going away, or the poll failed), and
    /// done by `close`. Stop polling the fd first.
    pub fn stop_caller_reaping(&self) {
        {
            let _st = self.shared.lock();
            self.shared.caller_reaps.store(false, Ordering::SeqCst);
            self.shared.reap_work.notify_all();
        }
        if self.shared.ready().take().is_some() {
            // Else the kernel would go on signalling an eventfd nobody reads, for the ring's life.
            // A ring a clean close released has taken the registration with it.
            if let Some(ring) = self.shared.kernel() {
                let _ = ring.submitter().unregister_eventfd();
            }
        }
    }

    fn wake_submitter(&self) {
        if self.shared.submitter_idle.load(Ordering::SeqCst) {
            self.shared.work.notify_one();
        }
    }

    /// Gives up on an operation: the kernel is asked to cancel it, and its completion (the real
    /// result, the count so far of a write that made progress, or `-ECANCELED`) still arrives;
    /// its memory is held until then. Stale keys, registration ops (which the kernel finishes
    /// inline) and closes (whose callers count the fd as closed once asked, so they must run)
    /// are ignored.
    pub fn cancel(&self, key: OpKey) {
        if abandon(&mut self.shared.lock(), key) {
            self.wake_submitter();
        }
    }

    /// `cancel` for every unfinished op of a group; its completion still comes after the last.
    /// Ops already finished are left alone (their keys may name other ops by now); a stale key
    /// is ignored.
    pub fn cancel_group(&self, group: GroupKey) {
        let mut st = self.shared.lock();
        let keys: Vec<OpKey> = st.groups.unfinished(group).collect();
        let mut any = false;
        for key in keys {
            any |= abandon(&mut st, key);
        }
        drop(st);
        if any {
            self.wake_submitter();
        }
    }

    /// Refuses new work, cancels everything in flight, waits (up to the configured timeout) for
    /// every completion, then stops and joins both threads. Returns whether it ended clean: every
    /// operation completed and both threads were joined. A clean close also releases the kernel
    /// ring (its fd and mappings) and the eventfd before it returns, or, if a call on another
    /// thread is using the ring meanwhile, as that call returns; later calls find the ring closed.
    /// If not clean, the ring stays, the threads end on their own (unjoined; the completion thread
    /// once the ops left in the kernel have completed, which it delivers as usual, unless
    /// `close_waiting` reaps them first), the ring and the slab are leaked if it is dropped while
    /// ops are still in the kernel, and memory the caller lent to them (`Memory::lend`) must stay
    /// valid until they complete. Idempotent: later calls wait for the first and return what it
    /// returned.
    pub fn close(&self) -> bool {
        self.close_within(Some(self.shutdown_timeout))
    }

    /// `close`, but waits for every completion however long it takes: for a caller about to free
    /// memory it lent to ops (a worker's heap at teardown), where waiting is the only safe choice.
    /// After an earlier close that gave up on ops, reaps on this thread until they are done. The
    /// result is the first close's: `false` still means a thread may not have been joined.
    pub fn close_waiting(&self) -> bool {
        let clean = self.close_within(None);
        if !clean {
            threads::reap_abandoned(&self.shared);
        }
        clean
    }

    fn close_within(&self, timeout: Option<Duration>) -> bool {
        // Held throughout, so a second close waits for the first to finish.
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let (submission, completion) = match std::mem::replace(&mut *threads, Threads::Closed(false)) {
            Threads::Running(submission, completion) => (submission, completion),
            Threads::Closed(clean) => {
                *threads = Threads::Closed(clean);
                return clean;
            }
        };
        // A timeout too long for an Instant (Duration::MAX) waits without a deadline.
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        self.stop_caller_reaping();
        let mut st = self.shared.lock();
        st.closing = true;
        self.shared.work.notify_all();
        while !st.slab.is_empty() {
            st = match deadline {
                None => self.shared.drained.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.shared.drained.wait_timeout(st, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
        let drained = st.slab.is_empty();
        st.stop = true;
        self.shared.work.notify_all();
        self.shared.reap_work.notify_all();
        self.shared.off_ring_work.notify_all();
        drop(st);
        // With ops still in the kernel neither thread is joined: a thread that submitted cannot
        // finish exiting while a kernel worker it started is busy (io-wq workers belong to the
        // submitting task), so joining would wait as long as the op. They end on their own, the
        // completion thread after delivering those ops' completions.
        // Clean: drained (closing refuses new ops, so the slab stays empty) and both joined.
        let clean = drained && submission.join().unwrap_or(false);
        if clean {
            let _ = completion.join();
            // Idle: nothing is left in the slab for them.
            for off_ring in std::mem::take(&mut *self.shared.off_ring.lock().unwrap_or_else(|p| p.into_inner())) {
                let _ = off_ring.join();
            }
            // Nothing is in the kernel and no thread is left to use the ring: its fd and mappings
            // go now, not when this `Ring` does (a JS object holding it waits for the collector).
            let ring = self.shared.kernel.lock().unwrap_or_else(|p| p.into_inner()).take();
            drop(ring);
        }
        *threads = Threads::Closed(clean);
        clean
    }

    /// Records `fd` as handed to the caller by this ring although no op of it opened the file:
    /// the fd `read_file_cached` leaves open for the caller to read on from. Like an fd an open
    /// hands out, it is closed by `close_handed` unless closed through a ring, or `forget_fd`
    /// was called for it, first.
    pub fn hand_over(&self, fd: RawFd) {
        // `read_file_cached` opens files on local block file systems only: never FUSE.
        self.shared.lock().handed.insert(fd, false);
    }

    /// The caller is about to close `fd` itself, not through a ring (or has handed it to
    /// someone who will): no ring's `close_handed` may close that number any more. Call it
    /// before the close, never after: from then on the number may name another file.
    pub fn forget_fd(&self, fd: RawFd) {
        handed::forget(fd);
    }

    /// The fds this ring handed to its caller (a successful open's, a whole-file read's fd left
    /// open, `hand_over`'s) that have not been closed through a ring or forgotten since, sorted:
    /// diagnostics and tests.
    pub fn handed_fds(&self) -> Vec<RawFd> {
        self.shared.lock().handed.fds()
    }

    /// Closes every fd `handed_fds` names, for a caller that goes away without closing them (a
    /// worker's teardown, whose own finalizers never run), and returns how many it closed. Only
    /// once the ring is closed: while it is open its caller may still use them, and ops that
    /// complete after the close hand nothing out (the engine closes what they open). Fds the
    /// caller closed some other way without `forget_fd` are closed again here, whatever file
    /// their numbers name by now: a caller that closes an fd itself must say so first.
    pub fn close_handed(&self) -> usize {
        let fds = {
            let st = self.shared.lock();
            if !st.closing {
                return 0;
            }
            st.handed.take()
        };
        for &fd in &fds {
            // SAFETY: handed out by this ring and not closed since through any ring or by a
            // caller that said so (each removes the number from the record before its close);
            // taken out of the record above, so closed once, here.
            unsafe { libc::close(fd) };
        }
        fds.len()
    }

    /// Forgets every fd this ring handed out, closing none: for a caller that keeps owning them
    /// after the ring is gone (a clean close from JavaScript, whose scopes close their fds
    /// themselves). Dropping the ring does the same.
    pub fn forget_handed(&self) {
        self.shared.lock().handed.take();
    }

    pub fn sq_entries(&self) -> u32 {
        self.sq_entries
    }

    pub fn cq_entries(&self) -> u32 {
        self.cq_entries
    }

    pub fn registered_capacity(&self) -> u32 {
        self.shared.lock().files.capacity()
    }

    /// Registered-file slots in use (registered, or being released).
    pub fn registered_in_use(&self) -> usize {
        self.shared.lock().files.in_use()
    }

    /// Operations submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().slab.len()
    }

    /// Groups with an op not yet completed.
    pub fn groups_in_flight(&self) -> usize {
        self.shared.lock().groups.len()
    }

    /// Whether the submission thread is waiting for work: `submit_and_reap` then does its work on
    /// the caller's thread (diagnostics and tests).
    pub fn is_submitter_idle(&self) -> bool {
        self.shared.submitter_idle.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.shared.lock().closing
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let clean = self.close();
        // After the close, from which on ops hand nothing out: nobody could close these through
        // this ring any more, and a number's next owner must not find it recorded as this ring's.
        self.forget_handed();
        // Threads not joined hold the shared state themselves; ops still in the kernel need it
        // kept for good, since nothing tells when the kernel is done with their memory.
        if !clean && !self.shared.lock().slab.is_empty() {
            std::mem::forget(Arc::clone(&self.shared));
        }
    }
}
