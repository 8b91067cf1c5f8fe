//! Fuzz target `mastodon_event`: see [`tweet_pipeline_fuzz::check_mastodon_event`] for the input format and the
//! properties asserted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tweet_pipeline_fuzz::check_mastodon_event(data));
