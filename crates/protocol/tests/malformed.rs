//! Bad input is refused with the right error code and a message naming what
//! was wrong, never with a panic: truncations, trailing bytes, unknown api
//! keys, unsupported versions, invalid UTF-8, bad enum tags, absurd counts.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use citystream_protocol::*;
use common::*;

fn request_body(key: ApiKey, api_version: u16, request_id: u32, rest: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_u16_le(key as u16);
    body.put_u16_le(api_version);
    body.put_u32_le(request_id);
    body.put_slice(rest);
    body.freeze()
}

/// Every strict prefix of every request body is refused as MALFORMED_FRAME.
#[test]
fn every_truncated_request_is_refused() {
    for frame in all_requests() {
        let body = body_of(&encoded_request(&frame));
        for len in 0..body.len() {
            let error = decode_request(body.slice(..len)).unwrap_err();
            assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME, "len {len}");
            let id_readable = len >= REQUEST_HEADER_BYTES;
            assert_eq!(error.request_id.is_some(), id_readable, "len {len}");
        }
    }
}

/// Every strict prefix of every response body is refused as MALFORMED_FRAME.
#[test]
fn every_truncated_response_is_refused() {
    for frame in all_responses() {
        let body = body_of(&encoded_response(&frame));
        for len in 0..body.len() {
            let error = decode_response(body.slice(..len)).unwrap_err();
            assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME, "len {len}");
        }
    }
}

/// Bytes after a complete body are refused, for requests and responses.
#[test]
fn trailing_bytes_are_refused() {
    for frame in all_requests() {
        let mut body = BytesMut::from(&body_of(&encoded_request(&frame))[..]);
        body.put_u8(0);
        let error = decode_request(body.freeze()).unwrap_err();
        assert_eq!(error.request_id, Some(frame.request_id));
        assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
        assert!(error.error.message.contains("1 trailing bytes"), "{error}");
    }
    for frame in all_responses() {
        let mut body = BytesMut::from(&body_of(&encoded_response(&frame))[..]);
        body.put_u8(0);
        let error = decode_response(body.freeze()).unwrap_err();
        assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    }
}

/// The message of a truncated body names the api and the field path.
#[test]
fn truncation_message_names_the_field() {
    // acks, timeout_ms, one partition, then a topic length of 5 with 1 byte.
    let rest = [1, 0xe8, 3, 0, 0, 1, 0, 0, 0, 5, 0, b't'];
    let error = decode_request(request_body(ApiKey::Produce, 1, 77, &rest)).unwrap_err();
    assert_eq!(error.request_id, Some(77));
    assert_eq!(error.api_key, Some(ApiKey::Produce as u16));
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(
        error.error.message,
        "Produce: truncated reading partitions[0].topic (needs 5 bytes, 1 left)"
    );
}

/// An api key this build does not know is UNKNOWN_REQUEST, with the id kept.
#[test]
fn unknown_api_key_is_unknown_request() {
    let mut body = BytesMut::new();
    body.put_u16_le(99);
    body.put_u16_le(1);
    body.put_u32_le(5);
    let error = decode_request(body.freeze()).unwrap_err();
    assert_eq!(error.request_id, Some(5));
    assert_eq!(error.api_key, Some(99));
    assert_eq!(error.error.code, ErrorCode::UNKNOWN_REQUEST);
    assert_eq!(error.error.message, "unknown request type 99");
}

/// A version outside 1..=2 is UNSUPPORTED_VERSION, checked before the body.
#[test]
fn other_version_is_unsupported() {
    for version in [0, 3, 7] {
        let error = decode_request(request_body(ApiKey::Produce, version, 6, b"junk")).unwrap_err();
        assert_eq!(error.request_id, Some(6));
        assert_eq!(error.error.code, ErrorCode::UNSUPPORTED_VERSION);
        assert_eq!(
            error.error.message,
            format!(
                "request version {version} of Produce is not supported; this broker speaks 1..=2"
            )
        );
    }
}

/// An unknown cleanup tag in a version-2 TopicConfig is MALFORMED_FRAME,
/// named by its field.
#[test]
fn unknown_cleanup_tag_is_refused() {
    // name "t", 1 partition, replication 0, three None, cleanup 3.
    let rest = [1, 0, b't', 1, 0, 0, 0, 0, 0, 0, 0, 0, 3];
    let error = decode_request(request_body(ApiKey::CreateTopic, 2, 8, &rest)).unwrap_err();
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(
        error.error.message,
        "CreateTopic: bad tag 3 for config.cleanup"
    );
}

/// A header shorter than 8 bytes cannot name its request.
#[test]
fn short_header_has_no_request_id() {
    let error = decode_request(Bytes::from_static(&[1, 0, 1, 0, 9])).unwrap_err();
    assert_eq!(error.request_id, None);
    assert_eq!(error.api_key, Some(1));
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    let error = decode_request(Bytes::from_static(&[1])).unwrap_err();
    assert_eq!((error.request_id, error.api_key), (None, None));
}

/// Invalid UTF-8 in a string is MALFORMED_FRAME naming the field.
#[test]
fn invalid_utf8_is_refused() {
    let rest = [1, 0, 1, 0, 2, 0, 0xc3, 0x28];
    let error = decode_request(request_body(ApiKey::Hello, 1, 1, &rest)).unwrap_err();
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(error.error.message, "Hello: invalid UTF-8 in client_id");
}

/// Enum and option tags outside their range are MALFORMED_FRAME naming the field.
#[test]
fn bad_tags_are_refused() {
    let bad_acks = [3, 0, 0, 0, 0, 0, 0, 0, 0];
    let error = decode_request(request_body(ApiKey::Produce, 1, 1, &bad_acks)).unwrap_err();
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(error.error.message, "Produce: bad tag 3 for acks");

    let bad_spec = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    let error = decode_request(request_body(ApiKey::ListOffsets, 1, 1, &bad_spec)).unwrap_err();
    assert_eq!(
        error.error.message,
        "ListOffsets: bad tag 9 for partitions[0].spec"
    );

    let bad_option = [2];
    let error = decode_request(request_body(ApiKey::Metadata, 1, 1, &bad_option)).unwrap_err();
    assert_eq!(error.error.message, "Metadata: bad tag 2 for topics");
}

/// A list count larger than the remaining bytes could hold is refused before
/// any allocation sized by it.
#[test]
fn absurd_list_count_is_refused() {
    // group = "", partitions count = u32::MAX, then 2 bytes.
    let rest = [0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0];
    let error = decode_request(request_body(ApiKey::FetchOffsets, 1, 1, &rest)).unwrap_err();
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
    assert_eq!(
        error.error.message,
        "FetchOffsets: partitions claims 4294967295 items, more than the 2 bytes left can hold"
    );
}

/// A response header shorter than 8 bytes is refused, keeping what it could read.
#[test]
fn short_response_header_is_refused() {
    let error = decode_response(Bytes::from_static(&[4, 0, 0, 0, 2])).unwrap_err();
    assert_eq!(error.request_id, Some(4));
    assert_eq!(error.api_key, None);
    assert_eq!(error.error.code, ErrorCode::MALFORMED_FRAME);
}

/// A response for an unknown api key is UNKNOWN_REQUEST, with the id kept.
#[test]
fn response_with_unknown_api_key_is_refused() {
    let body = Bytes::from_static(&[8, 0, 0, 0, 50, 0, 0, 0]);
    let error = decode_response(body).unwrap_err();
    assert_eq!(error.request_id, Some(8));
    assert_eq!(error.error.code, ErrorCode::UNKNOWN_REQUEST);
}

/// An unknown non-zero error code from a newer peer still decodes.
#[test]
fn unknown_error_code_still_decodes() {
    let body = Bytes::from_static(&[8, 0, 0, 0, 1, 0, 0xe8, 0x03, 1, 0, b'?']);
    let frame = decode_response(body).unwrap();
    let error = frame.response.unwrap_err();
    assert_eq!(error.code, ErrorCode(1000));
    assert_eq!(error.message, "?");
}
