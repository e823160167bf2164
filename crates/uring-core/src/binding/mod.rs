//! The napi binding: a `NativeRing` class that JavaScript drives with op ids. Its constructor,
//! getters and `shutdown` are napi-rs members (`native_ring.rs`); everything called per op is a raw
//! N-API function the constructor defines on the ring object (`hot.rs`). Completions cross back in
//! batches through one long-lived threadsafe function per ring (`delivery.rs`), reaped on the JS
//! thread when the event loop sees the ring's eventfd (`ready_poll.rs`); nothing per
//! operation allocates a Promise or deferred. Every entry point catches panics, so a Rust panic
//! becomes a JS exception instead of unwinding into Node.

mod args;
mod cleanup;
mod delivery;
mod hot;
mod native_ring;
mod ready_poll;
mod views;
