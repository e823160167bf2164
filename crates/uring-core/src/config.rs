use std::time::Duration;

use crate::error::EngineError;

/// Settings for one ring. `Default` gives the engine's defaults; the napi binding turns on
/// `inline_submit`, `caller_reaps` and `deferred_wakeups`, as the library runs with them.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Submission queue size; the kernel clamps it to its maximum (`setup_clamp`).
    pub entries: u32,
    /// `IORING_SETUP_COOP_TASKRUN`: fewer interrupts, at the price of a submission thread that
    /// must tick while operations are in flight (see `threads.rs`).
    pub coop_taskrun: bool,
    /// `IORING_SETUP_IOPOLL`: only for O_DIRECT files on devices that support polling.
    pub iopoll: bool,
    /// `IORING_SETUP_SQPOLL` with this idle time; needs privileges on older kernels.
    pub sqpoll_idle_ms: Option<u32>,
    /// Always refused: the kernel only lets the submitting task reap with DEFER_TASKRUN, and this
    /// engine reaps on a separate completion thread.
    pub defer_taskrun: bool,
    /// Slots in the sparse registered-file table made at start.
    pub registered_files: u32,
    /// How long `close` waits for in-flight operations to complete after cancelling them.
    pub shutdown_timeout: Duration,
    /// Submitting does not wake the submission thread; the caller calls `Ring::flush` once after
    /// queueing a burst, so one wake-up (a futex syscall and a context switch) serves many ops.
    pub deferred_wakeups: bool,
    /// `Ring::submit_and_reap` may submit and reap on the caller's thread while the submission
    /// thread is idle. Ignored with SQPOLL, IOPOLL or COOP_TASKRUN.
    pub inline_submit: bool,
    /// With `inline_submit`: the caller polls `Ring::ready_fd` and reaps with `Ring::reap_ready`,
    /// and the completion thread reaps only while the ring closes or after
    /// `Ring::stop_caller_reaping`. Ignored where the kernel cannot register an eventfd.
    pub caller_reaps: bool,
    /// With `caller_reaps`: how long the caller may go without reaping or flushing while entries
    /// are in the kernel before the completion thread reaps in its place (a JS thread blocked in
    /// a synchronous wait must not stop the ops that need a reap to go on).
    pub caller_stall: Duration,
}

/// The largest submission queue the kernel accepts (`IORING_MAX_ENTRIES`).
pub const MAX_ENTRIES: u32 = 32768;
/// The kernel's limit on a registered-file table (`IORING_MAX_FIXED_FILES`).
pub const MAX_REGISTERED_FILES: u32 = 1 << 20;

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            entries: 16384,
            coop_taskrun: false,
            iopoll: false,
            sqpoll_idle_ms: None,
            defer_taskrun: false,
            registered_files: 4096,
            shutdown_timeout: Duration::from_secs(5),
            deferred_wakeups: false,
            inline_submit: false,
            caller_reaps: false,
            caller_stall: Duration::from_millis(10),
        }
    }
}

impl RingConfig {
    pub(crate) fn validate(&self) -> Result<(), EngineError> {
        if self.defer_taskrun {
            return Err(EngineError::InvalidConfig(
                "defer_taskrun cannot work here: the kernel only lets the task that submits reap \
                 completions, and this engine reaps on its own completion thread"
                    .into(),
            ));
        }
        if self.entries == 0 || self.entries > MAX_ENTRIES {
            return Err(EngineError::InvalidConfig(format!(
                "entries must be between 1 and {MAX_ENTRIES}, got {}",
                self.entries
            )));
        }
        if self.registered_files > MAX_REGISTERED_FILES {
            return Err(EngineError::InvalidConfig(format!(
                "registered_files must be at most {MAX_REGISTERED_FILES}, got {}",
                self.registered_files
            )));
        }
        Ok(())
    }
}
