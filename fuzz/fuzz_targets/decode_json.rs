//! `Message::decode` with the json serializer on arbitrary bytes (see common.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::wamp::Serializer;

mod common;

fuzz_target!(|data: &[u8]| common::check(Serializer::Json, data));
