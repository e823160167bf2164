//! What a small file costs the kernel through io_uring, four ways, without the engine or Node:
//! open + read + end-of-file read + close as four `io_uring_enter` rounds or as one linked chain
//! on a direct descriptor, one file per round or 64 files per round.
//!
//! It answers whether `readFile`'s whole-file op should link its steps (bench/README.md, open
//! optimisation 6). Run: `cargo run --release --example small_files [files] [trials]`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring};

const SIZE: usize = 4096;
const CAPACITY: usize = 16384;
const DEPTH: usize = 64;

/// One file's buffers: the first read's and the one byte the end-of-file probe may read.
struct Buffers {
    data: Vec<u8>,
    probe: [u8; 1],
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let files = args.next().transpose().map_err(io::Error::other)?.unwrap_or(10_000);
    let trials = args.next().transpose().map_err(io::Error::other)?.unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let mut paths = Vec::with_capacity(files);
    for k in 0..files {
        let path = dir.path().join(format!("f{k}.dat"));
        std::fs::write(&path, vec![k as u8; SIZE])?;
        paths.push(CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?);
    }
    let mut ring = IoUring::new(1024)?;
    ring.submitter().register_files_sparse(DEPTH as u32)?;
    let mut bufs: Vec<Buffers> = (0..DEPTH).map(|_| Buffers { data: vec![0; CAPACITY], probe: [0] }).collect();
    let ways: [(&str, usize, bool); 4] = [
        ("1 file per round, 4 rounds", 1, false),
        ("1 file per round, linked chain", 1, true),
        ("64 files per round, 4 rounds", DEPTH, false),
        ("64 files per round, linked chains", DEPTH, true),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); ways.len()];
    for trial in 0..=trials {
        for (way, &(_, depth, linked)) in ways.iter().enumerate() {
            let (t0, c0) = (Instant::now(), cpu_micros());
            for group in paths.chunks(depth) {
                if linked {
                    chains(&mut ring, group, &mut bufs)?;
                } else {
                    rounds(&mut ring, group, &mut bufs)?;
                }
            }
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_micros() - c0);
            // Trial 0 warms the dentry and page caches.
            if trial > 0 {
                results[way].push((files as f64 / secs, cpu / files as f64));
            }
        }
    }
    println!("{files} files of {SIZE} bytes, median of {trials} interleaved trials");
    for ((name, ..), mut runs) in ways.iter().zip(results) {
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rate, cpu) = runs[runs.len() / 2];
        println!("{name:36} {rate:>9.0} files/s {cpu:>6.2} CPU µs/file");
    }
    Ok(())
}

/// Open, read, read to end of file and close each file of `group`, one round per step.
fn rounds(ring: &mut IoUring, group: &[CString], bufs: &mut [Buffers]) -> io::Result<()> {
    let opens = group.iter().map(|path| {
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr()).flags(libc::O_RDONLY | libc::O_CLOEXEC).build()
    });
    let fds = round(ring, opens.collect())?;
    let reads = fds.iter().zip(bufs.iter_mut()).map(|(&fd, b)| {
        opcode::Read::new(types::Fd(fd), b.data.as_mut_ptr(), CAPACITY as u32).offset(0).build()
    });
    expect(round(ring, reads.collect())?, SIZE as i32)?;
    let probes = fds.iter().zip(bufs.iter_mut()).map(|(&fd, b)| {
        opcode::Read::new(types::Fd(fd), b.probe.as_mut_ptr(), 1).offset(SIZE as u64).build()
    });
    expect(round(ring, probes.collect())?, 0)?;
    expect(round(ring, fds.iter().map(|&fd| opcode::Close::new(types::Fd(fd)).build()).collect())?, 0)
}

/// The same steps as one linked chain per file: the open goes into registered slot `i`, both
/// reads continue from the file position, and the close is hard-linked so it runs after a short read.
fn chains(ring: &mut IoUring, group: &[CString], bufs: &mut [Buffers]) -> io::Result<()> {
    let mut entries = Vec::with_capacity(4 * group.len());
    for (i, (path, b)) in group.iter().zip(bufs.iter_mut()).enumerate() {
        let slot = i as u32;
        let target = types::DestinationSlot::try_from_slot_target(slot).map_err(|_| io::Error::other("slot"))?;
        // O_CLOEXEC is refused for direct descriptors: they are not in the process's fd table.
        let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr()).flags(libc::O_RDONLY).file_index(Some(target));
        let chained = squeue::Flags::FIXED_FILE | squeue::Flags::IO_HARDLINK;
        entries.push(open.build().flags(squeue::Flags::IO_LINK));
        entries.push(opcode::Read::new(types::Fixed(slot), b.data.as_mut_ptr(), CAPACITY as u32).offset(u64::MAX).build().flags(chained));
        entries.push(opcode::Read::new(types::Fixed(slot), b.probe.as_mut_ptr(), 1).offset(u64::MAX).build().flags(chained));
        entries.push(opcode::Close::new(types::Fixed(slot)).build());
    }
    let results = round(ring, entries)?;
    for step in results.chunks(4) {
        if step != [0, SIZE as i32, 0, 0] {
            return Err(io::Error::other(format!("chain results {step:?}")));
        }
    }
    Ok(())
}

/// Submits `entries` in one `io_uring_enter` and returns their results in submission order.
fn round(ring: &mut IoUring, entries: Vec<squeue::Entry>) -> io::Result<Vec<i32>> {
    let count = entries.len();
    for (i, entry) in entries.into_iter().enumerate() {
        // SAFETY: every pointer an entry carries (paths, buffers) outlives this call, which waits
        // for all of their completions before returning.
        unsafe { ring.submission().push(&entry.user_data(i as u64)) }.map_err(io::Error::other)?;
    }
    ring.submit_and_wait(count)?;
    let mut results = vec![0; count];
    for cqe in ring.completion() {
        results[cqe.user_data() as usize] = cqe.result();
    }
    match results.iter().find(|&&r| r < 0) {
        Some(&r) if r != -libc::ECANCELED => Err(io::Error::from_raw_os_error(-r)),
        _ => Ok(results),
    }
}

fn expect(results: Vec<i32>, want: i32) -> io::Result<()> {
    match results.iter().find(|&&r| r != want) {
        Some(r) => Err(io::Error::other(format!("got {r}, expected {want}"))),
        None => Ok(()),
    }
}

fn cpu_micros() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}
