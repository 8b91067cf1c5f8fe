//! The sources of lines: a recording ([`replay`]) or a live stream ([`live`], one loop shared
//! by [`x_v2`], [`x_v1`] and [`mastodon`], reconnecting as [`reconnect`] documents).

pub mod gzip;
pub mod live;
pub mod mastodon;
pub mod reconnect;
pub mod replay;
pub mod x_v1;
pub mod x_v2;
