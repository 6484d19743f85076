//! The RawSocket frame codec on an arbitrary byte stream. The first input byte chooses the
//! serializer (byte % 3) and the read size (byte / 3 bytes at a time, 0 for all at once);
//! the rest is the stream. The codec never panics, reading in pieces gives the same frames
//! and the same error as reading at once, and every message frame goes through the
//! decoder check of the chosen serializer.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use switchyard::transport::rawsocket::RawCodec;
use switchyard::transport::Inbound;
use switchyard::wamp::Serializer;
use tokio_util::codec::Decoder;

mod common;

const LIMIT: usize = 64 * 1024;

#[derive(Debug, PartialEq)]
enum Item {
    Message(Bytes),
    Ping(Bytes),
    Alive,
    Error(String),
}

fn read(stream: &[u8], chunk: usize) -> Vec<Item> {
    let mut codec = RawCodec { limit: LIMIT };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let chunk = if chunk == 0 { stream.len().max(1) } else { chunk };
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Inbound::Message(b))) => out.push(Item::Message(b)),
                Ok(Some(Inbound::Ping(b))) => out.push(Item::Ping(b)),
                Ok(Some(Inbound::Alive)) => out.push(Item::Alive),
                Ok(None) => break,
                Err(e) => {
                    out.push(Item::Error(e.to_string()));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else { return };
    let ser = Serializer::ALL[usize::from(control) % 3];
    let whole = read(stream, 0);
    let pieces = read(stream, usize::from(control) / 3);
    assert_eq!(whole, pieces);
    for item in &whole {
        if let Item::Message(b) = item {
            assert!(b.len() <= LIMIT);
            common::check(ser, b);
        }
    }
});
