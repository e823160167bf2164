//! A FUSE file system whose reads wait until told, as a process of its own: the daemon of the
//! TypeScript test of a shutdown that gives up on an op the kernel cannot cancel
//! (test/reliability/unclean-shutdown.test.ts). Needs root (mount).
//!
//! Prints `ready <mount point>` (the file is `f` in it), then `held` for each read it holds back.
//! A `release` line on stdin answers them, and every later read at once; the end of stdin
//! unmounts and exits. Killed instead, its connection ends with it and held reads fail.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fuse/mod.rs"]
mod fuse;

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

fn main() {
    let mut mount = fuse::Mount::new();
    println!("ready {}", mount.dir().display());
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        if mount.reads.recv_timeout(Duration::from_millis(10)).is_ok() {
            println!("held");
        }
        match lines.try_recv() {
            Ok(line) if line == "release" => mount.release(),
            Ok(_) | Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
}
