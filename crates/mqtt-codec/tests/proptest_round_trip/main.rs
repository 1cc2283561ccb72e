//! Generated packets of every type, both versions and both directions,
//! valid per the spec, round-trip: `decode(encode(p)) == p`, `encoded_len`
//! is exact, re-encoding the decoded packet gives the same bytes (canonical
//! form), and a stream of packets decodes the same however it is split.
//! The generators are in `strategies.rs`.

#[path = "../common/mod.rs"]
mod common;
mod strategies;

use bytes::BytesMut;
use citystream_mqtt_codec::*;
use common::receiver_of;
use proptest::collection::vec;
use proptest::prelude::*;
use strategies::{any_packet, any_version};
use tokio_util::codec::Decoder;

/// The round trip every generated packet must survive.
fn check_round_trip(version: Version, sender: Role, packet: &Packet) -> Result<(), TestCaseError> {
    let mut out = BytesMut::new();
    encode_packet(version, packet, &mut out)
        .map_err(|error| TestCaseError::fail(format!("{error}")))?;
    prop_assert_eq!(packet.encoded_len(version), Ok(out.len()));
    let encoded = out.clone().freeze();
    let decoded = decode_packet(version, receiver_of(sender), &mut out, &Limits::default());
    prop_assert!(out.is_empty(), "the whole packet was consumed");
    let decoded = decoded.map_err(|error| TestCaseError::fail(format!("{error}")))?;
    prop_assert_eq!(decoded.as_ref(), Some(packet));
    let mut again = BytesMut::new();
    encode_packet(version, packet, &mut again).unwrap();
    prop_assert_eq!(again.freeze(), encoded);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every valid packet decodes to itself, and its encoding is canonical.
    #[test]
    fn packets_round_trip((version, sender, packet) in any_packet()) {
        check_round_trip(version, sender, &packet)?;
    }

    /// The sending codec (role-aware, with a peer limit that is never hit)
    /// writes the same bytes as `encode_packet`.
    #[test]
    fn codec_encoder_matches_encode_packet((version, sender, packet) in any_packet()) {
        let mut codec = match sender {
            Role::Client => MqttCodec::client(version, Limits::default()),
            Role::Server => {
                let mut codec = MqttCodec::server(Limits::default());
                codec.set_version(version);
                codec.set_peer_max_packet_bytes(Some(1024 * 1024));
                codec
            }
        };
        let mut through_codec = BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut codec, &packet, &mut through_codec).unwrap();
        let mut direct = BytesMut::new();
        encode_packet(version, &packet, &mut direct).unwrap();
        prop_assert_eq!(through_codec, direct);
    }

    /// A stream of every packet a client sends (CONNECT first) decodes to
    /// the same packets however it is cut into pieces.
    #[test]
    fn split_stream_decodes_the_same(
        version in any_version(),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let packets = common::client_packets(version);
        let stream = common::stream_of(version, &packets);
        let mut cut_points: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
        cut_points.sort_unstable();
        let mut codec = MqttCodec::server(Limits::default());
        let mut buffer = BytesMut::new();
        let mut decoded = Vec::new();
        let mut start = 0;
        for end in cut_points.into_iter().chain([stream.len()]) {
            buffer.extend_from_slice(&stream[start..end]);
            start = end;
            while let Some(packet) = codec.decode(&mut buffer).unwrap() {
                decoded.push(packet);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(decoded, packets);
    }
}
