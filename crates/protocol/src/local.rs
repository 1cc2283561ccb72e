//! The contract of a broker reached in the same process, without a socket
//! (decision 0021): the same [`Request`] and [`Response`] values a
//! connection would frame, handed over as they are. The server implements
//! it; the client calls it for the broker of its own process.

use std::future::Future;
use std::pin::Pin;

use crate::{ApiError, Request, Response};

/// The wait for the answer to a submitted request: `None` when no answer
/// is sent (a produce with `Acks::None`).
pub type LocalAnswer = Pin<Box<dyn Future<Output = Option<Result<Response, ApiError>>> + Send>>;

/// The in-order part of a submission: the answer's wait, or `None` once
/// the broker has stopped (as a closed connection would say).
pub type LocalSubmit<'a> = Pin<Box<dyn Future<Output = Option<LocalAnswer>> + Send + 'a>>;

/// A broker in this process.
pub trait LocalBroker: Send + Sync + std::fmt::Debug + 'static {
    /// The broker's node id: an address that metadata gives this node
    /// names the broker here.
    fn node_id(&self) -> u32;

    /// Applies `request` as a connection's reader would: requests
    /// submitted one after another (each submission awaited before the
    /// next) are applied in that order; the answer's wait holds what may
    /// take time (a produce's quorum, a long poll).
    fn submit(&self, request: Request) -> LocalSubmit<'_>;
}
