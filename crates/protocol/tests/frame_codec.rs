//! FrameCodec splits a byte stream into frames however it is chunked, skips
//! oversize frames without buffering them and stays usable afterwards, and
//! refuses streams that cannot be framed.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use citystream_protocol::*;
use common::*;
use tokio_util::codec::{Decoder, Encoder};

/// Feeds `chunks` one at a time, collecting every frame the codec yields.
fn feed(codec: &mut FrameCodec, chunks: &[&[u8]]) -> Vec<InboundFrame> {
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buffer).unwrap() {
            frames.push(frame);
        }
    }
    frames
}

fn all_request_bytes() -> (Vec<u8>, Vec<Bytes>) {
    let mut stream = Vec::new();
    let mut bodies = Vec::new();
    for frame in all_requests() {
        let encoded = encoded_request(&frame);
        stream.extend_from_slice(&encoded);
        bodies.push(body_of(&encoded));
    }
    (stream, bodies)
}

/// Frames delivered one byte at a time come out whole and in order.
#[test]
fn splits_frames_delivered_byte_by_byte() {
    let (stream, bodies) = all_request_bytes();
    let chunks: Vec<&[u8]> = stream.chunks(1).collect();
    let frames = feed(&mut FrameCodec::new(FRAME_BYTES_MAX_DEFAULT), &chunks);
    let expected: Vec<InboundFrame> = bodies.into_iter().map(InboundFrame::Frame).collect();
    assert_eq!(frames, expected);
}

/// Many frames in one buffer all come out, and decode to the originals.
#[test]
fn splits_many_frames_in_one_buffer() {
    let (stream, _) = all_request_bytes();
    let frames = feed(&mut FrameCodec::new(FRAME_BYTES_MAX_DEFAULT), &[&stream]);
    let decoded: Vec<RequestFrame> = frames
        .into_iter()
        .map(|frame| match frame {
            InboundFrame::Frame(body) => decode_request(body).unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(decoded, all_requests());
}

/// An oversize frame arriving in pieces is reported once with its ids, its
/// bytes are dropped as they arrive, and the next frame decodes correctly.
#[test]
fn skips_oversize_frame_in_pieces_then_decodes_the_next() {
    let big = RequestFrame {
        request_id: 4242,
        api_version: 1,
        request: Request::Produce(ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 1,
            partitions: vec![ProducePartition {
                topic: "t".to_owned(),
                partition: 0,
                batch: Bytes::from(vec![7u8; 10_000]),
            }],
        }),
    };
    let big_bytes = encoded_request(&big);
    let next = &all_requests()[ApiKey::Fetch as usize];
    let next_bytes = encoded_request(next);

    let mut codec = FrameCodec::new(1024);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    let stream: Vec<u8> = [&big_bytes[..], &next_bytes[..]].concat();
    for chunk in stream.chunks(333) {
        buffer.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buffer).unwrap() {
            frames.push(frame);
        }
        assert!(
            buffer.len() <= 333 + next_bytes.len(),
            "oversize bytes were buffered"
        );
    }
    let oversize = InboundFrame::Oversize {
        request_id: 4242,
        api_key: ApiKey::Produce as u16,
        frame_len: (big_bytes.len() - 4) as u32,
    };
    assert_eq!(
        frames,
        vec![oversize, InboundFrame::Frame(body_of(&next_bytes))]
    );
    assert!(buffer.is_empty());
}

/// An oversize frame whose header arrives one byte at a time is reported
/// only once the header is complete.
#[test]
fn oversize_waits_for_its_header() {
    let mut codec = FrameCodec::new(16);
    let mut buffer = BytesMut::new();
    buffer.put_u32_le(100);
    buffer.put_u16_le(ApiKey::Fetch as u16);
    buffer.put_u16_le(1);
    buffer.put_u8(9);
    assert_eq!(codec.decode(&mut buffer).unwrap(), None);
    buffer.put_slice(&[0, 0, 0]);
    let frame = codec.decode(&mut buffer).unwrap();
    let expected = InboundFrame::Oversize {
        request_id: 9,
        api_key: ApiKey::Fetch as u16,
        frame_len: 100,
    };
    assert_eq!(frame, Some(expected));
    assert!(buffer.is_empty());
}

/// The response-side codec reads an oversize frame's ids from the response header.
#[test]
fn response_codec_reads_ids_from_the_response_header() {
    let frame = &all_responses()[ApiKey::Metadata as usize];
    let encoded = encoded_response(frame);
    let frames = feed(&mut FrameCodec::for_responses(16), &[&encoded]);
    let expected = InboundFrame::Oversize {
        request_id: frame.request_id,
        api_key: ApiKey::Metadata as u16,
        frame_len: (encoded.len() - 4) as u32,
    };
    assert_eq!(frames, vec![expected]);
}

/// A frame too short to hold a header is a fatal framing error.
#[test]
fn frame_shorter_than_header_is_fatal() {
    let mut buffer = BytesMut::from(&[7u8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7][..]);
    let error = FrameCodec::new(1024).decode(&mut buffer).unwrap_err();
    assert!(matches!(error, FrameError::FrameTooShort { frame_len: 7 }));
}

/// A stream ending inside a frame is reported at end of stream; a clean end is not.
#[test]
fn eof_inside_a_frame_is_an_error() {
    let encoded = encoded_request(&all_requests()[0]);
    let mut codec = FrameCodec::new(1024);
    let mut buffer = BytesMut::from(&encoded[..encoded.len() - 1]);
    let error = codec.decode_eof(&mut buffer).unwrap_err();
    assert!(matches!(error, FrameError::TruncatedAtEof { .. }));

    let mut buffer = BytesMut::from(&encoded[..]);
    let mut codec = FrameCodec::new(1024);
    assert!(codec.decode_eof(&mut buffer).unwrap().is_some());
    assert_eq!(codec.decode_eof(&mut buffer).unwrap(), None);
}

/// The encoder prefixes a body with its length; frame encoders match the free functions.
#[test]
fn encoder_writes_the_length_prefix() {
    let mut codec = FrameCodec::new(1024);
    let mut out = BytesMut::new();
    codec
        .encode(Bytes::from_static(b"12345678"), &mut out)
        .unwrap();
    codec.encode(&b"abcdefgh"[..], &mut out).unwrap();
    assert_eq!(&out[..], b"\x08\0\0\x0012345678\x08\0\0\x00abcdefgh");

    let request = all_requests().remove(1);
    let mut out = BytesMut::new();
    codec.encode(request.clone(), &mut out).unwrap();
    assert_eq!(out.freeze(), encoded_request(&request));

    let response = all_responses().remove(2);
    let mut out = BytesMut::new();
    codec.encode(response.clone(), &mut out).unwrap();
    assert_eq!(out.freeze(), encoded_response(&response));
}

/// A frame exactly at the limit is delivered; one byte more is oversize.
#[test]
fn limit_is_inclusive() {
    let mut stream = BytesMut::new();
    FrameCodec::new(16)
        .encode(&[0u8; 16][..], &mut stream)
        .unwrap();
    FrameCodec::new(16)
        .encode(&[0u8; 17][..], &mut stream)
        .unwrap();
    let frames = feed(&mut FrameCodec::new(16), &[&stream]);
    assert!(matches!(frames[0], InboundFrame::Frame(ref body) if body.len() == 16));
    assert!(matches!(
        frames[1],
        InboundFrame::Oversize { frame_len: 17, .. }
    ));
    assert_eq!(frames.len(), 2);
}
