//! Fuzz target `parse_post`: see [`tweet_pipeline_fuzz::check_parse_post`] for the input format and the
//! properties asserted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tweet_pipeline_fuzz::check_parse_post(data));
