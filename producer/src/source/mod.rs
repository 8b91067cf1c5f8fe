//! The sources of lines: a recording ([`replay`]), a live HTTP stream ([`live`], one loop
//! shared by [`x_v2`], [`x_v1`] and [`mastodon`], reconnecting as [`reconnect`] documents), or
//! Bluesky's Jetstream firehose over WebSocket ([`bluesky`], same reconnect policy).

pub mod bluesky;
pub mod gzip;
pub mod live;
pub mod mastodon;
pub mod reconnect;
pub mod replay;
pub mod x_v1;
pub mod x_v2;
pub mod x_v2_dry_run;
