//! Idempotent producers: handing out producer ids. Sequence checking and
//! retry dedup happen in the broker on produce, not here.

use citystream_protocol::{ApiError, InitProducerResponse};

use crate::errors::api_error;
use crate::server::Shared;

pub(crate) fn init(shared: &Shared) -> Result<InitProducerResponse, ApiError> {
    let producer_id = shared.broker.init_producer().map_err(|e| api_error(&e))?;
    tracing::debug!(producer_id, "producer id issued");
    Ok(InitProducerResponse { producer_id })
}
