//! Fuzzes the frame decoder: any input must decode or fail with a typed
//! error (never panic, never allocate without bound), every error must have
//! a NOTIFICATION, and whatever decodes must re-encode and decode to the
//! same frame.
#![no_main]

use agent_bgp::core::message::Notification;
use agent_bgp::wire::{Limits, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match decode(data, &limits) {
        Ok(frame) => {
            let bytes = match encode(&frame, &limits) {
                Ok(b) => b,
                Err(e) => panic!("decoded frame does not re-encode: {e}\n{frame:?}"),
            };
            match decode(&bytes, &limits) {
                Ok(again) => assert_eq!(frame, again, "re-encoded frame decodes differently"),
                Err(e) => panic!("re-encoded frame does not decode: {e}\n{frame:?}"),
            }
        }
        Err(e) => {
            let n = Notification::from(&e);
            assert!(!n.text.is_empty());
        }
    }
});
