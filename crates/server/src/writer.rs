//! The write half of a connection: drains the bounded queue of encoded
//! response frames into the socket, coalescing whatever is queued into one
//! flush. It owns no request state; frames arrive already encoded, in
//! completion order.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Socket buffer that small responses are gathered in before a flush.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// Frames taken off the queue per flush.
const WRITE_BATCH_FRAMES_MAX: usize = 64;
/// A peer that does not read a flush's worth of responses in this long is
/// dropped, so a stuck client cannot pin its in-flight requests forever.
const RESPONSE_WRITE_TIMEOUT_MS: u64 = 30_000;

/// Writes frames until every sender is gone, then closes the write side.
/// On failure it cancels `stop` so the reader stops too.
pub(crate) async fn run(
    mut queue: mpsc::Receiver<Bytes>,
    write_half: OwnedWriteHalf,
    stop: CancellationToken,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write_half);
    let mut frames = Vec::with_capacity(WRITE_BATCH_FRAMES_MAX);
    let timeout = Duration::from_millis(RESPONSE_WRITE_TIMEOUT_MS);
    while queue.recv_many(&mut frames, WRITE_BATCH_FRAMES_MAX).await > 0 {
        match tokio::time::timeout(timeout, write_frames(&mut out, &mut frames)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "write failed; closing");
                stop.cancel();
                return;
            }
            Err(_) => {
                tracing::warn!(
                    timeout_ms = RESPONSE_WRITE_TIMEOUT_MS,
                    "peer is not reading its responses; closing"
                );
                stop.cancel();
                return;
            }
        }
    }
    if let Err(error) = out.shutdown().await {
        tracing::debug!(%error, "closing the write side failed");
    }
}

async fn write_frames(
    out: &mut BufWriter<OwnedWriteHalf>,
    frames: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    for frame in frames.drain(..) {
        out.write_all(&frame).await?;
    }
    out.flush().await
}
