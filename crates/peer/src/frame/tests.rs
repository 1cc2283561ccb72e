//! Frame envelope tests: exact bytes, round trip, truncation, limits.

use super::*;

fn header() -> FrameHeader {
    FrameHeader {
        kind: FrameKind::Request,
        request_id: 0x0102_0304,
        group: GroupId(7),
        rpc: Rpc::Vote,
    }
}

/// A request frame has exactly the documented bytes.
#[test]
fn exact_bytes() {
    let frame = encode(&header(), |out| out.put_slice(b"xy")).unwrap();
    let expected: Vec<u8> = [
        &17u32.to_le_bytes()[..], // frame_len: 15 header bytes + 2 payload
        &[0],                     // kind: request
        &[4, 3, 2, 1],            // request_id
        &7u64.to_le_bytes(),      // group_id
        &2u16.to_le_bytes(),      // rpc: vote
        b"xy",
    ]
    .concat();
    assert_eq!(&frame[..], &expected[..]);
    assert_eq!(frame.len(), HEADER_BYTES + 2);
}

/// Every kind and rpc survives encode and decode.
#[test]
fn round_trip() {
    let kinds = [FrameKind::Request, FrameKind::Response, FrameKind::Error];
    let rpcs = [
        Rpc::AppendEntries,
        Rpc::Vote,
        Rpc::PreVote,
        Rpc::FullSnapshot,
        Rpc::TransferLeader,
        Rpc::Call,
    ];
    for kind in kinds {
        for rpc in rpcs {
            let header = FrameHeader {
                kind,
                rpc,
                ..header()
            };
            let bytes = encode(&header, |out| out.put_slice(b"payload")).unwrap();
            let frame = decode(bytes).unwrap();
            assert_eq!(frame.header, header);
            assert_eq!(&frame.payload[..], b"payload");
        }
    }
}

/// Every strict prefix of a frame is "not yet" for the stream splitter and
/// an error for the one-frame decoder; two frames in one buffer come out
/// one at a time.
#[test]
fn truncation_and_splitting() {
    let frame = encode(&header(), |out| out.put_slice(b"abc")).unwrap();
    for len in 0..frame.len() {
        let mut buffer = BytesMut::from(&frame[..len]);
        assert_eq!(split_frame(&mut buffer), Ok(None), "len {len}");
        assert_eq!(buffer.len(), len, "nothing consumed");
        assert!(decode(frame.slice(..len)).is_err(), "len {len}");
    }
    let mut buffer = BytesMut::new();
    buffer.put_slice(&frame);
    buffer.put_slice(&frame);
    buffer.put_slice(&frame[..5]);
    for _ in 0..2 {
        let split = split_frame(&mut buffer).unwrap().unwrap();
        assert_eq!(&split.payload[..], b"abc");
    }
    assert_eq!(split_frame(&mut buffer), Ok(None));
    assert_eq!(buffer.len(), 5);
}

/// Lengths past the limit, unknown kinds and unknown rpcs are refused.
#[test]
fn bad_frames_are_refused() {
    let mut buffer = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
    assert!(matches!(
        split_frame(&mut buffer),
        Err(DecodeError::FrameTooLarge { .. })
    ));
    let frame = encode(&header(), |_| {}).unwrap();
    let mut bad_kind = frame.to_vec();
    bad_kind[4] = 9;
    assert!(decode(Bytes::from(bad_kind)).is_err());
    let mut bad_rpc = frame.to_vec();
    bad_rpc[17] = 99;
    assert!(decode(Bytes::from(bad_rpc)).is_err());
    let too_large = encode(&header(), |out| out.put_bytes(0, FRAME_BYTES_MAX));
    assert!(too_large.is_err());
}

/// An error payload round-trips, has the documented bytes, and refuses
/// every truncation.
#[test]
fn error_payload() {
    let error = RemoteError {
        code: ErrorCode::UnknownGroup,
        message: "no".into(),
    };
    let mut out = BytesMut::new();
    error.encode(&mut out);
    assert_eq!(&out[..], &[1, 0, 2, 0, b'n', b'o']);
    let bytes = out.freeze();
    assert_eq!(RemoteError::decode(bytes.clone()).unwrap(), error);
    for len in 0..bytes.len() {
        assert!(RemoteError::decode(bytes.slice(..len)).is_err());
    }
}

/// Every error code keeps its number and round-trips; an unknown one is
/// refused.
#[test]
fn error_codes_are_stable() {
    let codes = [
        (ErrorCode::UnknownGroup, 1),
        (ErrorCode::RaftStopped, 2),
        (ErrorCode::BadRequest, 3),
        (ErrorCode::Unsupported, 4),
        (ErrorCode::CallFailed, 5),
    ];
    for (code, number) in codes {
        assert_eq!(code as u16, number);
        let error = RemoteError {
            code,
            message: String::new(),
        };
        let mut out = BytesMut::new();
        error.encode(&mut out);
        assert_eq!(RemoteError::decode(out.freeze()).unwrap(), error);
    }
    let unknown = Bytes::from_static(&[6, 0, 0, 0]);
    assert!(matches!(
        RemoteError::decode(unknown),
        Err(DecodeError::UnknownTag { value: 6, .. })
    ));
}

/// The call rpc is number 6, after the five Raft rpcs.
#[test]
fn call_rpc_number() {
    let header = FrameHeader {
        rpc: Rpc::Call,
        ..header()
    };
    let frame = encode(&header, |_| {}).unwrap();
    assert_eq!(&frame[17..19], &6u16.to_le_bytes());
}

/// Read as a native frame's big-endian length, the preamble is over 1 GiB,
/// beyond any native frame limit.
#[test]
fn preamble_is_never_a_native_frame() {
    assert_eq!(&PEER_PREAMBLE, b"CSPEER02");
    let as_native_len = u32::from_be_bytes(PEER_PREAMBLE[..4].try_into().unwrap());
    assert_eq!(as_native_len, 1_129_533_509);
    assert!(as_native_len > 1 << 30);
}
