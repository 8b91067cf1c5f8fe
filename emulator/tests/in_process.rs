//! The emulator run in process (`tweet_pipeline_emulator::start` on 127.0.0.1:0) with the
//! shared recordings, spoken to over a plain socket so that the wire bytes (chunked framing,
//! the missing final chunk of a cut stream) are what is checked.
//!
//! The shared data folder: `TWEET_PIPELINE_DATA`, else `../shared/data` beside the checkout.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tweet_pipeline_emulator::{start, EmulatorConfig};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("TWEET_PIPELINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    assert!(
        dir.join("twitter_v1").is_dir(),
        "shared recordings not found at {}: put shared/ beside the checkout or set TWEET_PIPELINE_DATA",
        dir.display()
    );
    dir
}

/// Sends one HTTP/1.1 request and reads until the server closes; returns the head and the
/// raw (still chunked) body.
async fn exchange(addr: std::net::SocketAddr, request: String) -> (String, Vec<u8>) {
    let mut socket = TcpStream::connect(addr).await.expect("emulator reachable");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut response))
        .await
        .expect("the server closes the connection")
        .expect("response read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    (head, response[split + 4..].to_vec())
}

/// The data of a chunked body, and whether it ended with the zero-length chunk.
fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return (data, false);
        };
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|size| usize::from_str_radix(size.trim(), 16).ok())
            .expect("a chunk size line");
        body = &body[line_end + 2..];
        if size == 0 {
            return (data, true);
        }
        let available = size.min(body.len());
        data.extend_from_slice(&body[..available]);
        if available < size {
            return (data, false);
        }
        body = body.get(size + 2..).unwrap_or_default();
    }
}

#[tokio::test]
async fn a_gzip_cut_closes_the_stream_mid_line_without_the_final_chunk() {
    let mut config = EmulatorConfig::new(Some(shared_data()));
    config.rate_per_sec = 500.0;
    config.seed_rules = vec!["the".into()];
    let emulator = start(config).await.expect("emulator starts");
    let addr = emulator.addr();

    const CUT: usize = 5_000;
    let fault = format!(r#"{{"api":"v2","gzip_cut_after_bytes":{CUT}}}"#);
    let (head, _) = exchange(
        addr,
        format!(
            "POST /_emulator/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{fault}",
            fault.len()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let (head, body) = exchange(
        addr,
        "GET /2/tweets/search/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer emulator-bearer-token\r\nAccept-Encoding: gzip\r\n\r\n".into(),
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (compressed, finished) = dechunk(&body);
    assert!(
        !finished,
        "a cut stream has no terminating zero-length chunk"
    );
    assert_eq!(compressed.len(), CUT);

    let mut decoded = Vec::new();
    let outcome = flate2::read::GzDecoder::new(&compressed[..]).read_to_end(&mut decoded);
    assert!(outcome.is_err(), "the gzip stream is truncated");
    let text = String::from_utf8_lossy(&decoded);
    let (complete, partial) = text.rsplit_once("\r\n").expect("at least one whole line");
    assert!(!partial.is_empty(), "the cut falls inside a line");
    for line in complete.split("\r\n") {
        let post: serde_json::Value = serde_json::from_str(line).expect("whole lines are JSON");
        assert!(post["data"]["id"].is_string());
    }
    assert!(serde_json::from_str::<serde_json::Value>(partial).is_err());

    emulator.stop().await.expect("emulator stops cleanly");
}
