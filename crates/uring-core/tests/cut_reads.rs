//! Reads whose count ends at a page boundary, through a ring: the engine reads on after such a
//! count of a regular file (`reap::cut_read_goes_on`, whose unit tests cut reads at will), which
//! must find the end of a file that ends there, and must not wait for more of a pipe.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::{serial, TestRing};
use uring_core::{Completion, Memory, Op, Target};

const SIZE: u64 = 16 * 4096;

/// Reads `SIZE` bytes from offset 0 of `target`, on a ring of its own.
fn read_all(target: Target) -> Completion {
    let ring = TestRing::new();
    let read = ring.wait_for(ring.submit(Op::read(target, Memory::zeroed(SIZE as usize), 0)).0, Duration::from_secs(10));
    assert!(ring.ring.close());
    read.expect("the read completed")
}

#[test]
fn a_read_that_ends_at_a_page_boundary_at_the_end_of_the_file_counts_the_file() {
    let _serial = serial();
    let mut file = tempfile::tempfile().expect("a temporary file");
    let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
    file.write_all(&data).expect("the file's bytes");
    let read = read_all(Target::Fd(file.as_raw_fd()));
    assert_eq!(read.result, data.len() as i32);
    assert_eq!(read.output.as_deref(), Some(&data[..]));
}

#[test]
fn a_pipe_read_that_ends_at_a_page_boundary_keeps_its_count() {
    let _serial = serial();
    let (reader, mut writer) = std::io::pipe().expect("a pipe");
    writer.write_all(&[7; 4096]).expect("a page into the pipe");
    // Read on, it would wait for bytes the writer never sends.
    let read = read_all(Target::Fd(reader.as_raw_fd()));
    assert_eq!(read.result, 4096);
}
