//! The fds the rings have handed their callers and the callers have not closed yet: what a
//! caller that goes away without closing them (a worker's teardown, whose finalizers never run)
//! leaves for `Ring::close_handed` to close.
//!
//! One record for the process, each entry naming the ring that handed its fd out. An fd number
//! names one open file at a time across the process, so a close of that number through any ring,
//! or a caller's word that it closes it itself (`forget`), ends the entry whichever ring made it;
//! and a number that a caller closed some other way and the kernel hands out again through
//! another ring moves to that ring instead of being closed by both.
//!
//! Each entry also says whether its file is on FUSE (`cached::on_fuse`, asked once, as the fd
//! enters or as the op that opened it completed), which sends every read and write of it to the
//! ring's off-ring threads (`on_fuse`, `off_ring.rs`). A number not in the record (a caller's
//! own fd) is asked of its mount at each read or write instead: it may name another file by the
//! next one.
//!
//! Only opens and closes change the record, never reads. An fd enters when the op that opened it
//! completes for a caller who still wants it (`reap`, under the state lock, before its completion
//! leaves the engine), so one reaped and not yet delivered is covered; an fd the engine closes
//! itself never enters (`reap` takes one way or the other). It leaves when a ring accepts a close
//! of that number (`State::insert`, before that close can reach the kernel) or when the caller
//! says it closes it itself, before it does. `take` empties a ring's entries under the same lock,
//! and they are closed only after, so a number whose close is already on its way is never among
//! them: that close removed it first.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::cached;

/// One fd handed out.
#[derive(Clone, Copy)]
struct Entry {
    /// The ring that handed it out (`Handed::ring`).
    ring: u64,
    /// Its file is on FUSE.
    fuse: bool,
}

/// Fd number -> its entry. Held only for a map operation, never across a syscall; innermost of
/// the engine's locks.
static RECORD: LazyLock<Mutex<HashMap<RawFd, Entry>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Names rings in the record: never reused, unlike an address.
static NEXT_RING: AtomicU64 = AtomicU64::new(1);

fn record() -> MutexGuard<'static, HashMap<RawFd, Entry>> {
    // A map operation cannot leave the map half-changed: a poisoned lock is still usable.
    RECORD.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Ends `fd`'s entry, whichever ring made it: the number is being closed, through a ring or by
/// the caller itself. Call it before the close is under way.
pub(crate) fn forget(fd: RawFd) {
    record().remove(&fd);
}

/// Whether `fd`'s reads and writes are copied by the ring's off-ring threads, not by io_uring
/// (`off_ring.rs` says why): it was handed out on a FUSE file and is not closed since, or it was
/// not handed out (a caller's own number, from Node's `fs.open` say) and names a FUSE file now,
/// which costs a syscall (`cached::on_fuse`) per read or write of such a number.
pub(crate) fn on_fuse(fd: RawFd) -> bool {
    let handed = record().get(&fd).map(|entry| entry.fuse);
    handed.unwrap_or_else(|| cached::on_fuse(fd))
}

/// One ring's part of the record.
pub(crate) struct Handed {
    ring: u64,
}

impl Handed {
    pub(crate) fn new() -> Handed {
        Handed { ring: NEXT_RING.fetch_add(1, Ordering::Relaxed) }
    }

    /// `fd`, on FUSE or not (`cached::on_fuse`), was handed to this ring's caller.
    pub(crate) fn insert(&self, fd: RawFd, fuse: bool) {
        record().insert(fd, Entry { ring: self.ring, fuse });
    }

    /// This ring's entries, sorted.
    pub(crate) fn fds(&self) -> Vec<RawFd> {
        let mut fds: Vec<RawFd> =
            record().iter().filter(|&(_, entry)| entry.ring == self.ring).map(|(&fd, _)| fd).collect();
        fds.sort_unstable();
        fds
    }

    /// Takes this ring's entries out: the caller closes them, or leaves them to their owners.
    pub(crate) fn take(&self) -> Vec<RawFd> {
        let mut taken = Vec::new();
        record().retain(|&fd, entry| {
            let ours = entry.ring == self.ring;
            if ours {
                taken.push(fd);
            }
            !ours
        });
        taken
    }
}
