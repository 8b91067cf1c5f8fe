//! The emulator's Jetstream v1 `/subscribe` run in process (`tweet_pipeline_emulator::start`
//! on 127.0.0.1:0) with the shared recordings, spoken to with tokio-tungstenite: filters,
//! cursor replay, the drop and slow-consumer faults, the log and the refusals.
//!
//! The shared data folder: `TWEET_PIPELINE_DATA`, else `../shared/data` beside the checkout.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tweet_pipeline_emulator::{
    start, EmulatorConfig, FaultEffect, JetstreamLog, RunningEmulator, DEFAULT_JETSTREAM_FILE,
};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

const POSTS_AND_REPOSTS: &str =
    "wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.feed.repost";

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("TWEET_PIPELINE_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
    assert!(
        dir.join(DEFAULT_JETSTREAM_FILE).is_file(),
        "the Jetstream recording {DEFAULT_JETSTREAM_FILE} was not found under {}: put shared/ beside the checkout or set TWEET_PIPELINE_DATA",
        dir.display()
    );
    dir
}

/// The recording's lines, parsed.
fn recording() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(shared_data().join(DEFAULT_JETSTREAM_FILE))
        .expect("the Jetstream recording is readable");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| (line.to_owned(), serde_json::from_str(line).expect("JSON")))
        .collect()
}

async fn emulator() -> RunningEmulator {
    let mut config = EmulatorConfig::new(Some(shared_data()));
    config.jetstream_rate_per_sec = 1000.0;
    start(config).await.expect("emulator starts")
}

async fn connect(emulator: &RunningEmulator, query: &str) -> Socket {
    let url = format!("ws://{}/subscribe?{query}", emulator.addr());
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket upgrade succeeds");
    socket
}

/// The next `count` text frames.
async fn texts(socket: &mut Socket, count: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        match socket
            .next()
            .await
            .expect("the stream goes on")
            .expect("a frame")
        {
            Message::Text(text) => out.push(text.as_str().to_owned()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    out
}

fn time_us(line: &str) -> i64 {
    let value: Value = serde_json::from_str(line).expect("a sent frame is JSON");
    value["time_us"].as_i64().expect("time_us")
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body.
async fn http(emulator: &RunningEmulator, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(emulator.addr())
        .await
        .expect("emulator reachable");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    socket
        .read_to_end(&mut response)
        .await
        .expect("response read");
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, body.to_owned())
}

async fn jetstream_log(emulator: &RunningEmulator) -> JetstreamLog {
    let (status, body) = http(emulator, "GET", "/_emulator/jetstream/log", "").await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).expect("the log deserialises")
}

async fn fault(emulator: &RunningEmulator, fault: &str) {
    let (status, body) = http(emulator, "POST", "/_emulator/faults", fault).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn posts_and_reposts_with_identity_and_account_events_then_a_cursor_reconnect() {
    let recording = recording();
    let expected: Vec<&str> = recording
        .iter()
        .filter(|(_, event)| match event["kind"].as_str() {
            Some("commit") => matches!(
                event["commit"]["collection"].as_str(),
                Some("app.bsky.feed.post" | "app.bsky.feed.repost")
            ),
            Some("identity" | "account") => true,
            _ => false,
        })
        .map(|(line, _)| line.as_str())
        .collect();
    // 18 posts, 15 reposts, 1 identity, 1 account (bluesky/MANIFEST.md).
    assert_eq!(expected.len(), 35);

    let emulator = emulator().await;
    let mut socket = connect(&emulator, POSTS_AND_REPOSTS).await;
    let first = texts(&mut socket, expected.len()).await;
    let mut sent_sorted = first.clone();
    sent_sorted.sort();
    let mut expected_sorted: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected_sorted.sort();
    assert_eq!(
        sent_sorted, expected_sorted,
        "every matching event once, bytes unchanged"
    );
    let times: Vec<i64> = first.iter().map(|line| time_us(line)).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "served in time_us order"
    );
    socket.close(None).await.expect("client close");

    let cursor = times[9];
    let mut again = connect(&emulator, &format!("{POSTS_AND_REPOSTS}&cursor={cursor}")).await;
    let resume_at = times.partition_point(|t| *t < cursor);
    let replay = texts(&mut again, first.len() - resume_at).await;
    assert!(time_us(&replay[0]) >= cursor);
    assert_eq!(
        replay[..],
        first[resume_at..],
        "the replay is the rest of the stream"
    );
    again.close(None).await.expect("client close");

    let log = jetstream_log(&emulator).await;
    assert_eq!(log.connections.len(), 2);
    let connection = &log.connections[0];
    assert_eq!(
        connection.query.wanted_collections,
        ["app.bsky.feed.post", "app.bsky.feed.repost"]
    );
    assert_eq!(connection.query.cursor, None);
    assert!(connection.events_sent >= expected.len() as u64);
    assert_eq!(connection.sent[0].time_us, times[0]);
    assert_eq!(log.connections[1].query.cursor, Some(cursor));
    assert!(connection
        .sent
        .iter()
        .all(|event| match event.kind.as_str() {
            "commit" => matches!(
                event.collection.as_deref(),
                Some("app.bsky.feed.post" | "app.bsky.feed.repost")
            ),
            _ => event.collection.is_none(),
        }));

    emulator.stop().await.expect("emulator stops cleanly");
}

#[tokio::test]
async fn drop_ends_without_a_close_frame_and_slow_consumer_with_one() {
    let recording: HashSet<String> = recording().into_iter().map(|(line, _)| line).collect();
    let emulator = emulator().await;

    fault(&emulator, r#"{"api":"jetstream","drop_after_lines":5}"#).await;
    let mut socket = connect(&emulator, "").await;
    let mut frames = Vec::new();
    let end = loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => frames.push(text.as_str().to_owned()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    assert_eq!(frames.len(), 5, "exactly 5 events before the drop");
    assert!(frames.iter().all(|frame| recording.contains(frame)));
    assert!(
        matches!(
            end,
            Some(WsError::Protocol(_)) | Some(WsError::Io(_)) | Some(WsError::ConnectionClosed)
        ),
        "the connection ends without a close handshake: {end:?}"
    );

    fault(
        &emulator,
        r#"{"api":"jetstream","slow_consumer_after_lines":3}"#,
    )
    .await;
    let mut socket = connect(&emulator, "").await;
    let frames = texts(&mut socket, 3).await;
    assert!(frames.iter().all(|frame| recording.contains(frame)));
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.code, CloseCode::Policy);
            assert_eq!(frame.reason.as_str(), "consumer too slow");
        }
        other => panic!("expected the close frame, got {other:?}"),
    }
    // Reading on sends the client's close answer; the stream then ends.
    while let Some(Ok(_)) = socket.next().await {}

    let log = jetstream_log(&emulator).await;
    let faults: Vec<_> = log
        .connections
        .iter()
        .map(|c| (c.fault, c.events_sent))
        .collect();
    assert_eq!(
        faults,
        [
            (Some(FaultEffect::Drop), 5),
            (Some(FaultEffect::SlowConsumer), 3)
        ]
    );
    let (_, stats) = http(&emulator, "GET", "/_emulator/stats", "").await;
    let stats: Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(stats["jetstream"]["connections_accepted"], 2);
    assert_eq!(stats["jetstream"]["lines_sent"], 8);

    let (status, _) = http(&emulator, "POST", "/_emulator/reset", "").await;
    assert_eq!(status, 200);
    assert!(jetstream_log(&emulator).await.connections.is_empty());
    emulator.stop().await.expect("emulator stops cleanly");
}

#[tokio::test]
async fn bad_parameters_and_connect_faults_are_refused_before_the_upgrade() {
    let emulator = emulator().await;
    let (status, body) = http(&emulator, "GET", "/subscribe?compress=true", "").await;
    assert_eq!(status, 400);
    assert!(body.contains("not supported"), "{body}");
    let (status, body) = http(
        &emulator,
        "GET",
        "/subscribe?wantedCollections=app.bsky.fo*",
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "invalid subscriber options: invalid collection: app.bsky.fo*\n"
    );
    let (status, body) = http(&emulator, "GET", "/subscribe?cursor=soon", "").await;
    assert_eq!((status, body.as_str()), (400, "invalid cursor: soon\n"));

    fault(&emulator, r#"{"api":"jetstream","connect_status":429}"#).await;
    let url = format!("ws://{}/subscribe", emulator.addr());
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("expected a refused upgrade, got {other:?}"),
    }
    emulator.stop().await.expect("emulator stops cleanly");
}

#[tokio::test]
async fn without_the_bluesky_recording_the_emulator_starts_and_subscribe_is_503() {
    // A data folder holding every other recording (symlinked), but no bluesky/.
    let data = shared_data();
    let dir = std::env::temp_dir().join(format!("emulator-no-bluesky-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp folder");
    for entry in std::fs::read_dir(&data)
        .expect("data folder listing")
        .flatten()
    {
        if entry.file_name() != "bluesky" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).expect("symlink");
        }
    }
    let emulator = start(EmulatorConfig::new(Some(dir.clone())))
        .await
        .expect("emulator starts without Bluesky data");
    let (status, body) = http(&emulator, "GET", "/subscribe", "").await;
    assert_eq!(status, 503);
    assert!(body.contains("--jetstream-file"), "{body}");
    let (status, _) = http(&emulator, "GET", "/healthz", "").await;
    assert_eq!(status, 200);
    emulator.stop().await.expect("emulator stops cleanly");
    std::fs::remove_dir_all(&dir).expect("temp folder removed");
}

#[tokio::test]
async fn require_hello_waits_for_an_options_update_whose_filters_then_apply() {
    use futures::SinkExt as _;
    let reposts_identity_account = recording()
        .iter()
        .filter(|(_, event)| {
            event["kind"] != "commit" || event["commit"]["collection"] == "app.bsky.feed.repost"
        })
        .count();
    assert_eq!(reposts_identity_account, 17);
    let emulator = emulator().await;
    // The query asks for posts; the hello replaces that with reposts before anything is sent.
    let mut socket = connect(
        &emulator,
        "wantedCollections=app.bsky.feed.post&requireHello=true",
    )
    .await;
    let hello = r#"{"type":"options_update","payload":{"wantedCollections":["app.bsky.feed.repost"],"wantedDids":[],"maxMessageSizeBytes":0}}"#;
    socket.send(Message::text(hello)).await.expect("hello sent");
    let frames = texts(&mut socket, reposts_identity_account).await;
    for frame in &frames {
        let event: Value = serde_json::from_str(frame).expect("JSON");
        assert!(
            event["kind"] != "commit" || event["commit"]["collection"] == "app.bsky.feed.repost",
            "{frame}"
        );
    }
    socket.close(None).await.expect("client close");
    let log = jetstream_log(&emulator).await;
    assert!(log.connections[0].query.require_hello);
    emulator.stop().await.expect("emulator stops cleanly");
}
