//! What the caller's thread, the submission thread and the completion thread share, behind one
//! mutex. The lock is held only to move keys and flags, never across a syscall that can block
//! (fds to close wait in `to_close` for an engine thread to close them after unlocking).

use std::collections::VecDeque;
use std::os::fd::RawFd;

use crate::files::FileTable;
use crate::group::{Groups, Member};
use crate::remote_mounts;
use crate::handed::{self, Handed};
use crate::op::{Op, Target};
use crate::rescue::{OpRescue, Watch};
use crate::ring::Completion;
use crate::slab::{OpKey, Slab};

/// One operation from submit to its delivered completion (tokio-uring's lifecycle: queued,
/// in the kernel, abandoned; it leaves the slab only with its own completion).
pub(crate) struct InFlight {
    pub user: u64,
    pub op: Op,
    /// An entry for it is in the kernel (its completion is still to come).
    pub in_kernel: bool,
    /// The caller gave up on it: cancel sent or to be sent; resources still held.
    pub abandoned: bool,
    /// Its next submission goes to a kernel worker (IOSQE_ASYNC): an open that may reach a file
    /// system whose open waits for a daemon or a server (`remote_mounts.rs`), or one that must be
    /// allowed to block (`Op::open_waits_for_reader`). Cleared when that step completes.
    pub on_worker: bool,
    /// An open made to follow no symlink (`Op::refuse_symlinks`): one it meets (ELOOP), or flags
    /// openat2 refuses where openat ignores them (EINVAL), send it back, as asked, to a kernel
    /// worker (`reap`). Cleared by its completion.
    pub symlinks_refused: bool,
    /// It reads or writes a file on FUSE: its copies go to the off-ring threads (`off_ring.rs`),
    /// and its other steps (a whole-file op's open and close) to a kernel worker.
    pub on_fuse: bool,
    /// Its group, if it was submitted as a member of one: its completion goes there.
    pub member: Option<Member>,
    /// Who submitted it inline and when, for the rescue of ops a caller's io-wq keeps (`rescue.rs`).
    pub rescue: OpRescue,
}

pub(crate) struct State {
    pub slab: Slab<InFlight>,
    /// Groups whose members are in the slab; each leaves with its last member.
    pub groups: Groups,
    /// Keys waiting for room in the kernel (back-pressure beyond the completion queue's size).
    pub queue: VecDeque<OpKey>,
    /// Queued (not in the kernel) ops abandoned since the queue was last swept: they complete as
    /// cancelled at once, even when the kernel budget keeps the queue from moving.
    pub abandoned_queued: usize,
    /// Keys whose next step an off-ring thread copies (`off_ring.rs`): reads and writes of
    /// files on FUSE. Neither queued nor in the kernel meanwhile.
    pub off_ring: VecDeque<OpKey>,
    /// Off-ring threads waiting for a copy.
    pub off_ring_idle: usize,
    /// Keys whose in-kernel entries should be cancelled.
    pub cancels: Vec<OpKey>,
    /// Entries in the kernel whose completions are still to come, cancels included.
    pub in_kernel: usize,
    pub files: FileTable,
    /// No new work; everything in flight is being cancelled.
    pub closing: bool,
    /// Closing has queued a cancel for every op in the kernel.
    pub close_cancels_queued: bool,
    /// Both threads must exit.
    pub stop: bool,
    /// The completion thread waits on `Shared::reap_work` (nothing in the kernel).
    pub reaper_parked: bool,
    /// Fds the engine must close that nobody else knows (opened for an op that was abandoned or
    /// will not run on), closed by the submission or completion thread outside the lock: a close
    /// can block (NFS and FUSE flush on close).
    pub to_close: Vec<RawFd>,
    /// This ring's part of the record of fds handed to the caller and not closed since
    /// (`handed.rs`): what a caller that goes away without closing them leaves to close.
    pub handed: Handed,
    /// The submission thread's looks for ops a caller's io-wq keeps (`rescue.rs`).
    pub watch: Watch,
}

impl State {
    pub(crate) fn new(files: FileTable) -> Self {
        State {
            slab: Slab::new(),
            groups: Groups::new(),
            queue: VecDeque::new(),
            off_ring: VecDeque::new(),
            off_ring_idle: 0,
            abandoned_queued: 0,
            cancels: Vec::new(),
            in_kernel: 0,
            files,
            closing: false,
            close_cancels_queued: false,
            stop: false,
            reaper_parked: false,
            to_close: Vec::new(),
            handed: Handed::new(),
            watch: Watch::default(),
        }
    }

    /// Puts an op in the slab, counting it against the registered slot it names. A close takes
    /// its number out of the record of fds handed out (`handed.rs`, whichever ring's entry it
    /// is) before it can reach the kernel: the close will happen (`reap`), and once it has, the
    /// number may name another file.
    pub(crate) fn insert(&mut self, mut op: InFlight) -> OpKey {
        op.on_fuse = self.transfers_on_fuse(&op.op);
        // While a FUSE, NFS or like file system is mounted, an open may reach it and would wait
        // for its daemon or server in the thread that submits it: it goes to a kernel worker
        // unless its path provably stays off them, walked with no symlink followed
        // (`remote_mounts.rs`).
        if op.op.opens() && remote_mounts::present() {
            op.symlinks_refused = op.op.refuse_symlinks(remote_mounts::outside_remote);
            op.on_worker = !op.symlinks_refused;
        }
        if let Some(slot) = op.op.fixed_slot() {
            self.files.add_user(slot);
        }
        if let Op::Close { fd } = op.op {
            handed::forget(fd);
        }
        self.slab.insert(op)
    }

    /// Whether `op` reads or writes a file on FUSE: an fd on one (`handed::on_fuse`: the record
    /// says for an fd a ring handed out, its mount for any other), or a slot one is registered in.
    /// (A whole-file op learns it as its open completes: `reap`.)
    fn transfers_on_fuse(&self, op: &Op) -> bool {
        match op {
            Op::Read { target, .. } | Op::Write { target, .. } => match *target {
                Target::Fd(fd) => handed::on_fuse(fd),
                Target::Fixed(slot) => self.files.on_fuse(slot),
            },
            _ => false,
        }
    }

    /// Takes an op out of the slab for good: the only way out, so slot counts stay exact.
    pub(crate) fn remove(&mut self, key: OpKey) -> Option<InFlight> {
        let op = self.slab.remove(key)?;
        if let Some(slot) = op.op.fixed_slot() {
            self.to_close.extend(self.files.remove_user(slot));
        }
        Some(op)
    }

    /// Hands on the completion of an op that left the slab: to `out`, or for a member of a group
    /// into its group, whose own completion goes to `out` after its last member's.
    pub(crate) fn finish(&mut self, member: Option<Member>, completion: Completion, out: &mut Vec<Completion>) {
        match member {
            None => out.push(completion),
            Some(member) => out.extend(self.groups.record(member, completion.result)),
        }
    }
}
