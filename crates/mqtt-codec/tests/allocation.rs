//! No allocation made while decoding exceeds twice what the peer has
//! actually sent plus 64 KiB of read-ahead (twice: the buffer grows by
//! doubling), whatever size its headers announce: a counting global
//! allocator records the largest single allocation (decision 0015 asks for
//! this, after a candidate crate allocated 255 MiB for an 11-byte input).
//! One test only in this binary, so no other test's allocations interfere.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use citystream_mqtt_codec::*;
use tokio_util::codec::Decoder;

/// Forwards to the system allocator, remembering the largest request.
struct Counting;

static LARGEST_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_BYTES.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_BYTES.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const KIB: usize = 1024;

/// Runs `work` and returns the largest single allocation it made.
fn largest_allocation(work: impl FnOnce()) -> usize {
    LARGEST_BYTES.store(0, Ordering::Relaxed);
    work();
    LARGEST_BYTES.load(Ordering::Relaxed)
}

/// Feeds `chunks` to a fresh v5 client codec, ignoring errors.
fn feed(chunks: &[&[u8]]) {
    let mut codec = MqttCodec::client(Version::V5, Limits::default());
    let mut buffer = BytesMut::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while let Ok(Some(_)) = codec.decode(&mut buffer) {}
    }
}

/// Headers announcing huge or near-limit packets allocate little; a real
/// packet costs about its own size.
#[test]
fn allocation_follows_bytes_received_not_bytes_announced() {
    // v5-34: 256 MiB announced, over the limit.
    let over_limit =
        largest_allocation(|| feed(&[&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4, 5, 6]]));
    assert!(
        over_limit <= 64 * KIB,
        "{over_limit} bytes for an 11-byte input"
    );

    // ~1 MB announced (within the 1 MiB limit), 14 bytes sent.
    let announced = largest_allocation(|| feed(&[&[0x30, 0xC0, 0x84, 0x3D], &[0; 10]]));
    assert!(
        announced <= 2 * (14 + 64 * KIB),
        "{announced} bytes for a 14-byte input"
    );

    // A real 300 KB PUBLISH arriving in 4 KiB reads.
    let mut publish = vec![0x30, 0x83, 0xA8, 0x12, 0x00, 0x01, b't', 0x00];
    publish.resize(4 + 300_035, 0xAB);
    let chunks: Vec<&[u8]> = publish.chunks(4 * KIB).collect();
    let real = largest_allocation(|| feed(&chunks));
    assert!(
        real <= Limits::DEFAULT_MAX_PACKET_BYTES as usize,
        "{real} bytes for a 300 KB packet"
    );
    assert!(
        real >= 300_000,
        "the packet itself must have been buffered ({real})"
    );
}
