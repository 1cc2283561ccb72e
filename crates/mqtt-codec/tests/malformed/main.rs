//! Hand-made bad frames, one per rule of decision 0015 (every row of its
//! probe matrix and the extra cases it lists), are refused with the expected
//! `DecodeError` variant and the reason code the broker will answer with.
//! Every variant's reason code is pinned at the end.

#[path = "../common/mod.rs"]
mod common;
mod connect;
mod framing;
mod properties;
mod reason_codes;
mod topics;

use bytes::BytesMut;
use citystream_mqtt_codec::topic::TopicError;
use citystream_mqtt_codec::*;
use common::*;
use tokio_util::codec::Decoder;

const V3: Version = Version::V3_1_1;
const V5: Version = Version::V5;

/// A fixed header (first byte, one-byte remaining length) and `body`.
fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    assert!(
        body.len() < 128,
        "test frames use a one-byte remaining length"
    );
    let mut bytes = vec![first_byte, body.len() as u8];
    bytes.extend_from_slice(body);
    bytes
}

/// A CONNECT of protocol `level` with `flags`, a property list (level 5
/// only) and `payload` (client id onwards).
fn connect_frame(level: u8, flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', level, flags, 0x00, 0x3C];
    if level == 5 {
        body.push(properties.len() as u8);
        body.extend_from_slice(properties);
    }
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// Client id "c".
const CLIENT_ID: &[u8] = &[0x00, 0x01, b'c'];

/// A v5 QoS 0 PUBLISH to "t" with `properties` and payload "x".
fn publish_frame(properties: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01, b't', properties.len() as u8];
    body.extend_from_slice(properties);
    body.push(b'x');
    frame(0x30, &body)
}

/// Decoding fails with exactly `expected`, reported as reason `code`.
#[track_caller]
fn assert_refused(version: Version, sender: Role, bytes: &[u8], expected: DecodeError, code: u8) {
    let error = decode(version, sender, bytes).expect_err("the frame must be refused");
    assert_eq!(error, expected);
    assert_eq!(
        error.reason_code(),
        ReasonCode(code),
        "reason code of {error:?}"
    );
}

const MALFORMED: u8 = 0x81;
const PROTOCOL: u8 = 0x82;
