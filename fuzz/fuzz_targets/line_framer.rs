//! Fuzz target `line_framer`: see [`tweet_pipeline_fuzz::check_line_framer`] for the input format and the
//! properties asserted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tweet_pipeline_fuzz::check_line_framer(data));
