//! Requests tried again while they fail in a way that passes (a topic
//! just created that a node does not serve yet, a leader taking over).

use std::time::Duration;

use crate::{ClientError, ErrorCode};

/// How long a topic just created may take to answer on every node (its
/// replicas start, its leader is chosen): the window to try
/// [`starting_or_retriable`] failures again in.
pub const STARTING_WINDOW: Duration = Duration::from_secs(10);

/// A failure of a topic that is still starting: not known to the node
/// yet (just created, here or on another node), or its leader still being
/// chosen; or any other failure worth trying again.
pub fn starting_or_retriable(error: &ClientError) -> bool {
    error.is_retriable() || error.code() == Some(ErrorCode::UNKNOWN_TOPIC)
}

/// `attempt` again, with backoff from 50 ms to 1 s, while it fails in a way
/// `passes` accepts and `window` lasts; then its last answer.
pub async fn retrying<T, F, Fut>(
    window: Duration,
    passes: impl Fn(&ClientError) -> bool,
    mut attempt: F,
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + window;
    let mut backoff = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(error) if passes(&error) && tokio::time::Instant::now() + backoff < deadline => {
                tracing::debug!(%error, "a read failed; trying again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            answered => return answered,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use citystream_protocol::ApiError;

    use super::*;

    fn failure(code: ErrorCode) -> ClientError {
        ClientError::Api(ApiError::new(code, "test"))
    }

    fn unknown_topic(error: &ClientError) -> bool {
        error.code() == Some(ErrorCode::UNKNOWN_TOPIC)
    }

    /// Failures that pass are tried again until an answer; one that does
    /// not pass is the answer at once; the window ends the tries.
    #[tokio::test]
    async fn tries_again_only_what_passes_and_within_the_window() {
        let calls = Cell::new(0);
        let answered = retrying(Duration::from_secs(10), unknown_topic, || {
            calls.set(calls.get() + 1);
            let call = calls.get();
            async move {
                match call {
                    1..=3 => Err(failure(ErrorCode::UNKNOWN_TOPIC)),
                    _ => Ok(call),
                }
            }
        })
        .await;
        assert_eq!(answered.unwrap(), 4);

        calls.set(0);
        let refused = retrying(Duration::from_secs(10), unknown_topic, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(failure(ErrorCode::TOPIC_ALREADY_EXISTS)) }
        })
        .await;
        assert_eq!(
            refused.unwrap_err().code(),
            Some(ErrorCode::TOPIC_ALREADY_EXISTS)
        );
        assert_eq!(calls.get(), 1);

        calls.set(0);
        let given_up = retrying(Duration::from_millis(300), unknown_topic, || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>(failure(ErrorCode::UNKNOWN_TOPIC)) }
        })
        .await;
        assert_eq!(given_up.unwrap_err().code(), Some(ErrorCode::UNKNOWN_TOPIC));
        // Waits of 50 and 100 ms fit in 300 ms; the next, 200 ms, does not.
        assert!((2..=3).contains(&calls.get()), "{} calls", calls.get());
    }
}
