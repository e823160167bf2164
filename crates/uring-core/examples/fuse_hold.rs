//! A FUSE file system whose reads wait until told, as a process of its own: the daemon of the
//! TypeScript tests of FUSE files (test/reliability/fuseDaemon.ts). Needs root (mount).
//!
//! Prints `ready <mount point>` (the file is `f` in it), then `held` for each read it holds back.
//! A `release` line on stdin answers them, and every later read at once; the end of stdin
//! unmounts and exits. Killed instead, its connection ends with it and held reads fail.
//!
//! Options: `--size N` (bytes of `f`; 4096), `--direct-io` (`f` opened for direct I/O, read a
//! page per request), `--numbered` (every byte of page n is n + 1), `--answer` (no read held),
//! `--hold-opens` (opens of `f` held too, each told as `held`; answered after ten seconds if not
//! released, so a caller they stall fails its test instead of hanging it).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fuse/mod.rs"]
mod fuse;

use std::io::BufRead;
use std::sync::mpsc;
use std::time::Duration;

/// The `Serving` the command line asks for.
fn serving() -> fuse::Serving {
    let mut serving = fuse::Serving::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size" => serving.size = args.next().and_then(|n| n.parse().ok()).expect("--size takes a byte count"),
            "--direct-io" => serving.direct_io = true,
            "--numbered" => serving.numbered = true,
            "--answer" => serving.held = 0..0,
            "--hold-opens" => serving.hold_opens = true,
            other => panic!("unknown option {other}"),
        }
    }
    serving
}

fn main() {
    let serving = serving();
    let answer_opens_by = serving.hold_opens.then(|| std::time::Instant::now() + Duration::from_secs(10));
    let mut mount = fuse::Mount::serving(serving);
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
        if answer_opens_by.is_some_and(|by| std::time::Instant::now() >= by) {
            mount.release();
        }
        match lines.try_recv() {
            Ok(line) if line == "release" => mount.release(),
            Ok(_) | Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => break,
        }
    }
}
