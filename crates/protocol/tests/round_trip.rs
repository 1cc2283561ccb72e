//! Every request and response variant survives encode then decode unchanged,
//! and the encoding is framed and zero-copy as documented.

mod common;

use bytes::{Bytes, BytesMut};
use citystream_protocol::*;
use common::*;

/// Every request fixture decodes back to itself.
#[test]
fn every_request_round_trips() {
    let frames = all_requests();
    assert_eq!(frames.len(), ApiKey::ALL.len());
    for frame in frames {
        let decoded = decode_request(body_of(&encoded_request(&frame)));
        assert_eq!(decoded, Ok(frame));
    }
}

/// Every response fixture, including an error response, decodes back to itself.
#[test]
fn every_response_round_trips() {
    let frames = all_responses();
    assert_eq!(frames.len(), ApiKey::ALL.len() + 1);
    for frame in frames {
        let decoded = decode_response(body_of(&encoded_response(&frame)));
        assert_eq!(decoded, Ok(frame));
    }
}

/// The length prefix counts exactly the bytes after it.
#[test]
fn length_prefix_counts_the_rest_of_the_frame() {
    for frame in all_requests() {
        let encoded = encoded_request(&frame);
        let frame_len = u32::from_le_bytes(encoded[..4].try_into().unwrap());
        assert_eq!(frame_len as usize, encoded.len() - 4);
    }
    for frame in all_responses() {
        let encoded = encoded_response(&frame);
        let frame_len = u32::from_le_bytes(encoded[..4].try_into().unwrap());
        assert_eq!(frame_len as usize, encoded.len() - 4);
    }
}

/// Encoding appends to the buffer, so several frames can be batched in one write.
#[test]
fn encoding_appends_after_existing_bytes() {
    let frames = all_requests();
    let mut out = BytesMut::from(&b"xyz"[..]);
    encode_request(&frames[0], &mut out);
    encode_request(&frames[1], &mut out);
    let out = out.freeze();
    assert_eq!(&out[..3], b"xyz");
    let first = encoded_request(&frames[0]);
    let second = encoded_request(&frames[1]);
    assert_eq!(&out[3..3 + first.len()], &first[..]);
    assert_eq!(&out[3 + first.len()..], &second[..]);
}

/// A produced batch and fetched records are slices of the frame, not copies.
#[test]
fn bytes_fields_are_decoded_without_copying() {
    let produce = &all_requests()[ApiKey::Produce as usize];
    let body = body_of(&encoded_request(produce));
    let Request::Produce(decoded) = decode_request(body.clone()).unwrap().request else {
        panic!("not a produce request");
    };
    assert_points_into(&decoded.partitions[0].batch, &body);

    let fetch = &all_responses()[ApiKey::Fetch as usize];
    let body = body_of(&encoded_response(fetch));
    let Ok(Response::Fetch(decoded)) = decode_response(body.clone()).unwrap().response else {
        panic!("not a fetch response");
    };
    assert_points_into(&decoded.partitions[0].records, &body);
}

fn assert_points_into(part: &Bytes, whole: &Bytes) {
    let whole_range = whole.as_ptr_range();
    let part_range = part.as_ptr_range();
    assert!(!part.is_empty());
    assert!(whole_range.start <= part_range.start && part_range.end <= whole_range.end);
}

/// A human message longer than a string can hold is cut at a char boundary, not refused.
#[test]
fn overlong_error_message_is_cut_to_fit() {
    let frame = ResponseFrame {
        request_id: 1,
        api_key: ApiKey::Fetch,
        response: Err(ApiError::new(ErrorCode::INTERNAL, "é".repeat(40_000))),
    };
    let decoded = decode_response(body_of(&encoded_response(&frame))).unwrap();
    let message = decoded.response.unwrap_err().message;
    assert_eq!(message.len(), STRING_BYTES_MAX - 1);
    assert!(message.chars().all(|c| c == 'é'));
}

/// An error response for an api key this build does not know can still be
/// written (so a broker can answer it) and is reported with its request id.
#[test]
fn error_response_for_unknown_api_key_names_the_request() {
    let mut out = BytesMut::new();
    let error = ApiError::new(ErrorCode::UNKNOWN_REQUEST, "unknown request type 99");
    encode_error_response(42, 99, &error, &mut out);
    let failure = decode_response(body_of(&out.freeze())).unwrap_err();
    assert_eq!(failure.request_id, Some(42));
    assert_eq!(failure.api_key, Some(99));
    assert_eq!(failure.error.code, ErrorCode::UNKNOWN_REQUEST);
}

/// Encoding a response whose body belongs to another api is a caller bug.
#[test]
#[should_panic(expected = "does not match")]
fn mismatched_response_body_panics() {
    let frame = ResponseFrame {
        request_id: 1,
        api_key: ApiKey::Fetch,
        response: Ok(Response::Heartbeat(HeartbeatResponse {})),
    };
    encoded_response(&frame);
}
