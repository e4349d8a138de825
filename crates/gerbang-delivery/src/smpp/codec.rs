//! Framing by `command_length`, decoding each body with `rusmpp`, and keeping the connection when a
//! body does not decode: `rusmpp`'s own codec ends the stream on the first bad PDU (one vendor's
//! receipt without a NUL would cut every bind), where we answer `generic_nack` and go on.

use rusmpp::Command;
use rusmpp::decode::DecodeWithLength;
use rusmpp::tokio_codec::{CommandCodec, EncodeError};
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Header length of every PDU.
const HEADER: usize = 16;
/// Largest PDU accepted; a `deliver_sm` with a long `message_payload` stays far below.
const MAX_PDU: usize = 64 * 1024;

/// A PDU whose body could not be decoded: enough to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub command_id: u32,
    pub sequence_number: u32,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct LenientCodec(CommandCodec);

impl Decoder for LenientCodec {
    type Item = Result<Command, Malformed>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        if src.len() < HEADER {
            return Ok(None);
        }
        let word = |at: usize| {
            let mut bytes = [0u8; 4];
            bytes.copy_from_slice(&src[at..at + 4]);
            u32::from_be_bytes(bytes)
        };
        let length = word(0) as usize;
        if !(HEADER..=MAX_PDU).contains(&length) {
            // The stream is out of step; nothing after this can be trusted.
            return Err(std::io::Error::other(format!(
                "command_length {length} out of range"
            )));
        }
        if src.len() < length {
            src.reserve(length - src.len());
            return Ok(None);
        }
        let (command_id, sequence_number) = (word(4), word(12));
        let mut frame = src.split_to(length);
        frame.advance(4);
        Ok(Some(
            Command::decode(&mut frame, length - 4)
                .map(|(command, _)| command)
                .map_err(|error| Malformed {
                    command_id,
                    sequence_number,
                    reason: error.to_string(),
                }),
        ))
    }
}

impl Encoder<Command> for LenientCodec {
    type Error = EncodeError;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), Self::Error> {
        self.0.encode(command, dst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pdu(id: u32, seq: u32, body: &[u8]) -> BytesMut {
        let mut b = BytesMut::new();
        b.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
        b.extend_from_slice(&id.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn a_bad_body_is_reported_and_the_stream_goes_on() {
        let mut codec = LenientCodec::default();
        // A deliver_sm whose receipted_message_id TLV lacks its NUL, then an enquire_link.
        let mut buf = pdu(
            5,
            9,
            b"\0\x01\x01628\0\x05\x00B\0\x04\0\0\0\0\0\0\0\0\x03abc\x00\x1e\x00\x03abc",
        );
        buf.extend_from_slice(&pdu(0x15, 10, &[]));
        let first = codec.decode(&mut buf).unwrap().unwrap();
        let bad = first.unwrap_err();
        assert_eq!((bad.command_id, bad.sequence_number), (5, 9));
        let second = codec.decode(&mut buf).unwrap().unwrap().unwrap();
        assert_eq!(second.sequence_number(), 10);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn a_partial_pdu_waits_and_an_absurd_length_ends_the_stream() {
        let mut codec = LenientCodec::default();
        let whole = pdu(0x15, 1, &[]);
        let mut part = BytesMut::from(&whole[..10]);
        assert!(codec.decode(&mut part).unwrap().is_none());
        let mut absurd = BytesMut::from(
            &[
                0xFFu8, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1,
            ][..],
        );
        assert!(codec.decode(&mut absurd).is_err());
    }
}
