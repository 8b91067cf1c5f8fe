//! Fuzz target `route_line`: see [`tweet_pipeline_fuzz::check_route_line`] for the input format and the
//! properties asserted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tweet_pipeline_fuzz::check_route_line(data));
