//! The web view's HTTP side in process (no Kafka): the router served on a free loopback port
//! with a feed the test drives: fan-out of posts and deletes to every SSE stream, a lagging
//! stream told to reload and ended, the access-token guard, the CSRF check and the page's
//! security headers.

use std::sync::Arc;

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};
use tweet_pipeline_common::metrics::WebMetrics;
use tweet_pipeline_common::secret::Secret;
use tweet_pipeline_consumer::role::web::api::{router, AppState};
use tweet_pipeline_consumer::role::web::feed::{Card, Feed, FeedEvent, RECENT_POSTS};

const CSRF: &str = "0123456789abcdef0123456789abcdef";

struct Server {
    url: String,
    feed: Arc<Feed>,
    metrics: WebMetrics,
    shutdown: CancellationToken,
}

async fn serve(capacity: usize, token: Option<&str>) -> Server {
    let feed = Arc::new(Feed::new(capacity));
    let metrics = WebMetrics::register(&prometheus::Registry::new());
    let shutdown = CancellationToken::new();
    let dir = std::env::temp_dir().join(format!("web-server-test-{}", std::process::id()));
    let state = Arc::new(AppState::new(
        feed.clone(),
        CSRF.to_owned(),
        token.map(Secret::new),
        dir.join("missing.db").to_str().unwrap().parse().unwrap(),
        KafkaArgs {
            // Nothing listens there: a request that reached Kafka would fail, not hang.
            bootstrap: "127.0.0.1:1".to_owned(),
            config_file: None,
            properties: Vec::new(),
        },
        ScheduleTopics::with_prefix("test-"),
        ["t".into(), "r".into(), "c".into()],
        shutdown.clone(),
        tweet_pipeline_consumer::role::web::health::panel(&[]),
        metrics.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
            .unwrap();
    });
    Server {
        url,
        feed,
        metrics,
        shutdown,
    }
}

fn card(id: &str, text: &str) -> FeedEvent {
    FeedEvent::Post(Box::new(Card {
        id: id.into(),
        kind: "tweet",
        author: Some("amy".into()),
        created_at: None,
        received_at_ms: Some(1),
        text: text.into(),
        hashtags: vec![],
        links: vec![],
        lang: Some("en".into()),
        source: "replay",
        source_detail: None,
        rules: vec![],
        has_media: false,
        kafka_at_ms: None,
    }))
}

fn send(feed: &Feed, event: FeedEvent) {
    let json = serde_json::to_string(&event).unwrap();
    feed.publish(Arc::new((event, json)));
}

type Body = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open SSE stream, read event by event as (name, data).
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    async fn open(url: &str) -> Events {
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event, skipping keep-alive comments; `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !name.is_empty() {
                    return Some((name, data));
                }
                continue;
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn every_stream_gets_posts_and_deletes_in_order() {
    let server = serve(16, None).await;
    let mut first = Events::open(&format!("{}/events", server.url)).await;
    let mut second = Events::open(&format!("{}/events?contains=hello", server.url)).await;
    assert_eq!(first.next().await.unwrap().0, "ready");
    assert_eq!(second.next().await.unwrap().0, "ready");
    send(&server.feed, card("1", "<script>x</script>"));
    send(&server.feed, card("2", "hello"));
    send(&server.feed, FeedEvent::Delete { id: "1".into() });
    let (name, data) = first.next().await.unwrap();
    assert_eq!(name, "post");
    let value: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        value["text"], "<script>x</script>",
        "JSON carries the text as sent"
    );
    assert_eq!(first.next().await.unwrap().0, "post");
    assert_eq!(
        first.next().await.unwrap(),
        (
            "delete".to_owned(),
            r#"{"type":"delete","id":"1"}"#.to_owned()
        )
    );
    // The filtered stream: only the matching post, and the delete.
    let (name, data) = second.next().await.unwrap();
    assert_eq!(name, "post");
    assert!(data.contains(r#""id":"2""#), "{data}");
    assert_eq!(second.next().await.unwrap().0, "delete");
    // Shutdown ends the streams (so graceful shutdown does not wait for ever).
    server.shutdown.cancel();
    assert_eq!(first.next().await, None);
}

#[tokio::test]
async fn a_page_that_connects_late_gets_the_recent_posts_a_delete_left() {
    let server = serve(1024, None).await;
    for i in 0..RECENT_POSTS + 5 {
        send(
            &server.feed,
            card(&i.to_string(), if i % 2 == 0 { "even" } else { "odd" }),
        );
    }
    send(&server.feed, FeedEvent::Delete { id: "6".into() });
    let mut all = Events::open(&format!("{}/events", server.url)).await;
    assert_eq!(all.next().await.unwrap().0, "ready");
    let mut ids = Vec::new();
    for _ in 0..RECENT_POSTS - 1 {
        let (name, data) = all.next().await.unwrap();
        assert_eq!(name, "recent");
        let value: serde_json::Value = serde_json::from_str(&data).unwrap();
        ids.push(value["id"].as_str().unwrap().parse::<usize>().unwrap());
    }
    let expected: Vec<usize> = (5..RECENT_POSTS + 5).filter(|&i| i != 6).collect();
    assert_eq!(
        ids, expected,
        "the latest posts, oldest first, without the deleted one"
    );
    send(&server.feed, card("live", "even"));
    assert_eq!(all.next().await.unwrap().0, "post", "then the live events");
    let sent = |event: &str| server.metrics.events_sent.with_label_values(&[event]).get();
    assert_eq!((sent("recent"), sent("post")), (RECENT_POSTS as u64 - 1, 1));
    assert_eq!(server.metrics.browsers.get(), 1);
    // A filtered stream gets only the matching recent posts.
    let mut even = Events::open(&format!("{}/events?contains=even", server.url)).await;
    assert_eq!(even.next().await.unwrap().0, "ready");
    let (name, data) = even.next().await.unwrap();
    assert_eq!(name, "recent");
    assert!(data.contains(r#""id":"8""#), "4 and 6 are gone: {data}");
}

#[tokio::test]
async fn a_stream_that_falls_behind_is_told_to_reload_and_ended() {
    let server = serve(2, None).await;
    let mut events = Events::open(&format!("{}/events", server.url)).await;
    assert_eq!(events.next().await.unwrap().0, "ready");
    // On this single-threaded runtime the server cannot read the feed while this loop runs,
    // so the stream's receiver is 8 events behind a feed that holds 2.
    for i in 0..10 {
        send(&server.feed, card(&i.to_string(), "x"));
    }
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "reload");
    assert_eq!(data, r#"{"missed":8}"#);
    assert_eq!(events.next().await, None, "the stream ends after reload");
    assert_eq!(server.feed.browsers(), 0, "its receiver is dropped");
    assert_eq!(server.metrics.browsers_dropped.get(), 1);
    assert_eq!(
        server.metrics.browsers.get(),
        0,
        "counted open, then closed"
    );
}

#[tokio::test]
async fn actions_need_the_csrf_token() {
    let server = serve(4, None).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: &'static str, csrf: Option<&'static str>| {
        let mut request = client
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    let past = r#"{"text":"hi","at":"2001-01-01T00:00:00Z"}"#;
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(post("/api/schedule", past, None).await.unwrap()),
        403
    );
    assert_eq!(
        status(post("/api/schedule", past, Some("nope")).await.unwrap()),
        403
    );
    // With the token, the request reaches the planner, which refuses a time long past.
    assert_eq!(
        status(post("/api/schedule", past, Some(CSRF)).await.unwrap()),
        422
    );
    let cancel = r#"{"id":"sp-1"}"#;
    assert_eq!(
        status(post("/api/schedule/cancel", cancel, None).await.unwrap()),
        403
    );
    assert_eq!(
        status(
            post("/api/schedule/cancel", r#"{"id":"x"}"#, Some(CSRF))
                .await
                .unwrap()
        ),
        422
    );
}

#[tokio::test]
async fn the_page_embeds_its_csrf_token_and_sets_security_headers() {
    let server = serve(4, None).await;
    let page = reqwest::get(format!("{}/", server.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("img-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(r#"<meta name="csrf-token" content="{CSRF}">"#)));
    let script = reqwest::get(format!("{}/app.js", server.url))
        .await
        .unwrap();
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let analysis: serde_json::Value = reqwest::get(format!("{}/api/analysis", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(analysis["available"], false, "no store yet: {analysis}");
}

#[tokio::test]
async fn with_a_token_every_request_needs_it() {
    let token = "a-long-test-token-0123";
    let server = serve(4, Some(token)).await;
    let client = reqwest::Client::new();
    for path in ["/", "/app.js", "/events", "/api/health", "/api/analysis"] {
        let answer = client
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{path}");
    }
    let answer = client
        .post(format!("{}/api/schedule/cancel", server.url))
        .header("x-csrf-token", CSRF)
        .header("content-type", "application/json")
        .body(r#"{"id":"sp-1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        401,
        "an action with the CSRF token but no access token"
    );
    let answer = client
        .get(format!("{}/api/health", server.url))
        .header("x-web-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().get("set-cookie").is_none());
    let answer = client
        .get(format!("{}/?token={token}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("tweet_pipeline_web_token={token};"))
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !answer.text().await.unwrap().contains(token),
        "the token never reaches the page"
    );
    let answer = client
        .get(format!("{}/api/health", server.url))
        .header("cookie", format!("tweet_pipeline_web_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
