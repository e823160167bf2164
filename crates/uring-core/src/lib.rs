//! The io_uring engine behind effect-uring.
//!
//! One [`Ring`] owns one kernel ring and two threads: a submission thread that batches queued
//! operations into the submission queue, and a completion thread that reaps completions and hands
//! them to a [`CompletionSink`] in batches. Every buffer, path and output struct the kernel may
//! touch is owned by the operation's slot until that operation's own completion arrives.
//!
//! With `inline_submit`, [`Ring::submit_and_reap`] lets the caller's thread do the submission
//! thread's work while that thread is idle and take the completions that are ready at once
//! (cached reads finish inside the submit call), so a lone operation needs no thread hand-off.
//!
//! With `caller_reaps` as well, the completion thread leaves completions to a caller that polls
//! [`Ring::ready_fd`] and calls [`Ring::reap_ready`] (or [`Ring::reap_ready_into`], to hand the
//! completions on itself rather than through the sink; until it closes or calls
//! [`Ring::stop_caller_reaping`]), so a caller with an event loop hears of an op one thread
//! hand-off sooner.
//!
//! [`Ring::submit_group`] queues many operations that complete as one: each still runs as an
//! operation of its own, but its result goes into memory the caller lends, and the caller hears
//! once, after the last.
//!
//! The napi binding (feature `napi`) is a thin layer on top; the engine itself has no Node types
//! and is tested with `cargo test`.

mod cached;
mod cached_batch;
mod config;
mod error;
mod files;
mod group;
mod handed;
mod memory;
mod off_ring;
mod op;
mod reap;
mod remote_mounts;
mod rescue;
mod ready;
mod ring;
mod slab;
mod state;
mod threads;

#[cfg(feature = "napi")]
mod binding;

pub use cached::{read_cached, read_file_cached, read_range_cached, stat_cached};
pub use cached_batch::{CachedBatchReader, MAX_RANGES, SHARED_FROM};
pub use config::RingConfig;
pub use error::EngineError;
pub use group::{GroupKey, Results};
pub use memory::Memory;
pub use op::{Op, Target, WholeFilePhase, FD_BYTES, LARGE_READ, MAX_RW_COUNT};
pub use remote_mounts::{path_present as path_opens_on_kernel_workers, present as opens_on_kernel_workers};
pub use ring::{probe, Completion, CompletionSink, Ring};
pub use slab::OpKey;
