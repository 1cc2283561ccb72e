//! The two halves of a peer connection that both ends share: a writer
//! that drains a bounded queue of encoded frames and coalesces whatever is
//! queued into one `write` (so the heartbeats of many groups to one peer
//! cost one syscall), and a reader that cuts frames off the stream.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::frame::{self, Frame};

/// Initial capacity of a connection's receive buffer.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Counters of one direction of writes, for tests and metrics.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// `write_all` calls (each one coalesced buffer).
    pub writes: AtomicU64,
    /// Frames carried by those writes.
    pub frames: AtomicU64,
}

/// Writes queued frames until the queue closes (`Ok`) or the socket fails.
/// `first`, if any, goes out before anything still queued.
pub async fn write_coalesced<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut first: Option<Bytes>,
    queue: &mut mpsc::Receiver<Bytes>,
    write_bytes_max: usize,
    stats: &WriteStats,
) -> io::Result<()> {
    let mut buffer = BytesMut::new();
    // Ends when the queue is closed and drained, or on a write error.
    loop {
        let frame = match first.take() {
            Some(frame) => frame,
            None => match queue.recv().await {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        buffer.clear();
        buffer.extend_from_slice(&frame);
        let mut frames = 1;
        while buffer.len() < write_bytes_max {
            let Ok(frame) = queue.try_recv() else { break };
            buffer.extend_from_slice(&frame);
            frames += 1;
        }
        writer.write_all(&buffer).await?;
        stats.writes.fetch_add(1, Ordering::Relaxed);
        stats.frames.fetch_add(frames, Ordering::Relaxed);
    }
}

/// Reads frames off a stream, keeping partial ones buffered.
pub struct FrameReader<R> {
    reader: R,
    buffer: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R) -> FrameReader<R> {
        FrameReader {
            reader,
            buffer: BytesMut::with_capacity(READ_BUFFER_BYTES),
        }
    }

    /// The next frame; `Ok(None)` on a clean end of stream between frames.
    pub async fn next(&mut self) -> io::Result<Option<Frame>> {
        // Ends: each round either returns a frame or reads more bytes; EOF
        // and errors return.
        loop {
            let split = frame::split_frame(&mut self.buffer);
            if let Some(frame) = split.map_err(io::Error::other)? {
                return Ok(Some(frame));
            }
            if self.reader.read_buf(&mut self.buffer).await? == 0 {
                return match self.buffer.is_empty() {
                    true => Ok(None),
                    false => Err(io::ErrorKind::UnexpectedEof.into()),
                };
            }
        }
    }
}
