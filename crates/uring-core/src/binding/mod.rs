//! The napi binding: a `NativeRing` class that JavaScript drives with op ids. Completions cross
//! back in batches through one long-lived threadsafe function per ring (`delivery.rs`); nothing
//! per operation allocates a Promise or deferred. Every entry point is `catch_unwind`, so a Rust
//! panic becomes a JS exception instead of unwinding into Node.

mod args;
mod delivery;
mod hot;
mod native_ring;
mod views;
