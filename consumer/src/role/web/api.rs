//! The web view's HTTP handlers: the page and its assets, the SSE feed, the analysis, card
//! annotation, stream-health and schedule JSON endpoints, the schedule actions (create,
//! cancel, retry), and the access-token guard in front of all.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use prometheus::IntGauge;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tweet_pipeline_common::config::{KafkaArgs, ScheduleTopics};
use tweet_pipeline_common::metrics::WebMetrics;
use tweet_pipeline_common::secret::Secret;

use super::analysis::{self, AnalysisPanel};
use super::feed::{Feed, FeedEvent};
use super::filter::ColumnFilter;
use super::health::HealthPanel;
use super::page::{self, PageContext};
use super::schedule::{self, CreateRequest};
use super::security::{self, Presented};
use crate::store::{Store, StoreLocation};
use tweet_pipeline_scheduler::model::Destination;

/// How long an analysis panel is served from memory before the store is read again (the page
/// asks every 5 s; several browsers share one read).
const ANALYSIS_CACHE: Duration = Duration::from_secs(3);

/// What every handler shares.
pub struct AppState {
    /// The feed; each SSE stream subscribes.
    pub feed: Arc<Feed>,
    /// The per-process CSRF token.
    pub csrf: String,
    /// The access token, if one is required.
    pub auth_token: Option<Secret>,
    /// The analysis store.
    pub db: StoreLocation,
    /// How to reach Kafka (the schedule's reads and writes).
    pub kafka: KafkaArgs,
    /// The scheduled topics.
    pub schedule_topics: ScheduleTopics,
    /// The post and control topics (shown on the page).
    pub topics: [String; 3],
    /// Ends every SSE stream at shutdown (graceful shutdown waits for open connections).
    pub shutdown: CancellationToken,
    /// The stream-health panel the poller keeps up to date.
    pub health: HealthPanel,
    /// The web view's own metrics.
    pub metrics: WebMetrics,
    analysis_cache: Mutex<Option<(Instant, AnalysisPanel)>>,
    /// The store connection of the card lookups, kept between requests.
    annotation_store: Mutex<Option<Store>>,
}

impl AppState {
    /// The shared state; see the fields.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        feed: Arc<Feed>,
        csrf: String,
        auth_token: Option<Secret>,
        db: StoreLocation,
        kafka: KafkaArgs,
        schedule_topics: ScheduleTopics,
        topics: [String; 3],
        shutdown: CancellationToken,
        health: HealthPanel,
        metrics: WebMetrics,
    ) -> Self {
        Self {
            feed,
            csrf,
            auth_token,
            db,
            kafka,
            schedule_topics,
            topics,
            shutdown,
            health,
            metrics,
            analysis_cache: Mutex::new(None),
            annotation_store: Mutex::new(None),
        }
    }
}

type Shared = Arc<AppState>;

/// The router: `/`, `/app.js`, `/app.css`, `/events`, `/api/health`, `/api/analysis`,
/// `POST /api/annotations`, `/api/stream-health`, `GET|POST /api/schedule`,
/// `POST /api/schedule/cancel`, `POST /api/schedule/retry`, all behind [`guard`].
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/events", get(events))
        .route("/api/health", get(health))
        .route("/api/analysis", get(analysis_panel))
        .route("/api/annotations", post(annotations))
        .route("/api/stream-health", get(stream_health))
        .route("/api/schedule", get(schedule_list).post(schedule_create))
        .route("/api/schedule/cancel", post(schedule_cancel))
        .route("/api/schedule/retry", post(schedule_retry))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
}

/// Refuses a request without the access token (when one is set); a valid `?token=` sets the
/// token cookie, so the page's own requests carry it. Adds the security headers.
async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let query = query_token(request.uri().query());
    let presented = Presented {
        header: value(security::TOKEN_HEADER),
        authorization: value(header::AUTHORIZATION.as_str()),
        cookie: value(header::COOKIE.as_str()),
        query,
    };
    if !security::authorised(state.auth_token.as_ref(), &presented) {
        return error(
            StatusCode::UNAUTHORIZED,
            "this web view needs its access token: open /?token=<token> once, or send the x-web-token header",
        );
    }
    let set_cookie = state
        .auth_token
        .as_ref()
        .filter(|_| query.is_some())
        .map(|token| {
            format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                security::TOKEN_COOKIE,
                token.expose()
            )
        });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn index(State(state): State<Shared>) -> Response {
    let db = state.db.to_string();
    let html = page::render(&PageContext {
        csrf: &state.csrf,
        db: &db,
        topics: [&state.topics[0], &state.topics[1], &state.topics[2]],
    });
    (
        [
            (header::CONTENT_SECURITY_POLICY, page::CSP),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(html),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        page::SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        page::STYLE,
    )
        .into_response()
}

/// `{"feed":"ready","browsers":N}`: the feed is assigned (the server listens only after), and
/// N SSE streams are open.
async fn health(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "feed": "ready", "browsers": state.feed.browsers() }))
}

/// The SSE stream: `ready` first (the feed is subscribed by then), then a `recent` event for
/// each of the feed's recent posts, then live `post` and `delete` events; posts are those
/// matching the query's [`ColumnFilter`]. A browser that falls more than the feed's capacity
/// behind gets `reload` and the stream ends (it is never buffered further).
async fn events(
    State(state): State<Shared>,
    Query(filter): Query<ColumnFilter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (recent, mut receiver) = state.feed.subscribe();
    let shutdown = state.shutdown.clone();
    let metrics = state.metrics.clone();
    let sent = |event: &str| metrics.events_sent.with_label_values(&[event]);
    let (sent_recent, sent_post, sent_delete) = (sent("recent"), sent("post"), sent("delete"));
    let stream = async_stream::stream! {
        let _open = OpenStream::new(metrics.browsers.clone());
        yield Ok(Event::default().event("ready").data("{}"));
        for message in recent {
            if let FeedEvent::Post(card) = &message.0 {
                if filter.matches(card) {
                    sent_recent.inc();
                    yield Ok(Event::default().event("recent").data(message.1.as_str()));
                }
            }
        }
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => break,
                next = receiver.recv() => next,
            };
            match next {
                Ok(message) => {
                    let (wanted, counter) = match &message.0 {
                        FeedEvent::Post(card) => (filter.matches(card), &sent_post),
                        FeedEvent::Delete { .. } => (true, &sent_delete),
                    };
                    if wanted {
                        counter.inc();
                        yield Ok(Event::default().event(message.0.name()).data(message.1.as_str()));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    metrics.browsers_dropped.inc();
                    tracing::info!(missed, "a browser fell behind the feed; told to reload");
                    yield Ok(Event::default().event("reload").data(format!("{{\"missed\":{missed}}}")));
                    break;
                }
                Err(RecvError::Closed) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Counts an open event stream in the `browsers` gauge for as long as the stream lives
/// (a browser that goes away drops it).
struct OpenStream(IntGauge);

impl OpenStream {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn analysis_panel(State(state): State<Shared>) -> Response {
    if let Ok(cache) = state.analysis_cache.lock() {
        if let Some((at, panel)) = cache.as_ref() {
            if at.elapsed() < ANALYSIS_CACHE {
                return Json(panel.clone()).into_response();
            }
        }
    }
    let db = state.db.clone();
    let read = tokio::task::spawn_blocking(move || {
        analysis::read(&db, tweet_pipeline_common::headers::now_ms())
    })
    .await;
    match read {
        Ok(Ok(panel)) => {
            if let Ok(mut cache) = state.analysis_cache.lock() {
                *cache = Some((Instant::now(), panel.clone()));
            }
            Json(panel).into_response()
        }
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /api/annotations` body: the ids of the cards a page shows without their analysis.
#[derive(Debug, Deserialize)]
struct AnnotationRequest {
    ids: Vec<String>,
}

/// `{"annotations":[{"id","detected_lang","sentiment_label","sentiment_compound"}]}` for the
/// stored ones of at most [`crate::store::MAX_ANNOTATION_IDS`] ids, in one query.
async fn annotations(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<AnnotationRequest>,
) -> Response {
    if let Err(refused) = check_csrf(&state, &headers) {
        return *refused;
    }
    let shared = state.clone();
    let read = tokio::task::spawn_blocking(move || {
        analysis::annotations(&shared.annotation_store, &shared.db, &request.ids)
    })
    .await;
    match read {
        Ok(Ok(found)) => Json(serde_json::json!({ "annotations": found })).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `{"endpoints":[EndpointHealth...]}`, as the poller last saw them (see [`super::health`]).
async fn stream_health(State(state): State<Shared>) -> Response {
    match state.health.read() {
        Ok(panel) => Json(serde_json::json!({ "endpoints": *panel })).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the health panel's lock is poisoned",
        ),
    }
}

async fn schedule_list(State(state): State<Shared>) -> Response {
    let (kafka, topics) = (state.kafka.clone(), state.schedule_topics.clone());
    match tokio::task::spawn_blocking(move || schedule::list(&kafka, &topics)).await {
        Ok(Ok(rows)) => Json(serde_json::json!({ "rows": rows })).into_response(),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn check_csrf(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = headers
        .get(security::CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    if security::csrf_ok(&state.csrf, presented) {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "missing or wrong x-csrf-token header: reload the page and try again",
        )))
    }
}

async fn producer(state: &AppState) -> Result<rdkafka::producer::FutureProducer, Box<Response>> {
    let (kafka, topics) = (state.kafka.clone(), state.schedule_topics.clone());
    match tokio::task::spawn_blocking(move || {
        tweet_pipeline_scheduler::queue::schedule_producer(&kafka, &topics)
    })
    .await
    {
        Ok(Ok(producer)) => Ok(producer),
        Ok(Err(e)) => Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e:#}"),
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        ))),
    }
}

async fn schedule_create(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<CreateRequest>,
) -> Response {
    if let Err(refused) = check_csrf(&state, &headers) {
        return *refused;
    }
    let post = match schedule::plan_post(&request, chrono::Utc::now()) {
        Ok(post) => post,
        Err(reason) => return error(StatusCode::UNPROCESSABLE_ENTITY, reason),
    };
    let producer = match producer(&state).await {
        Ok(producer) => producer,
        Err(refused) => return *refused,
    };
    match schedule::enqueue(&producer, &state.schedule_topics, &post).await {
        Ok(()) => {
            tracing::info!(id = %post.id, due_at = %post.due_at, "post scheduled from the web view");
            Json(serde_json::json!({ "id": post.id, "due_at": post.due_at })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

/// `POST /api/schedule/cancel` body.
#[derive(Debug, Deserialize)]
struct CancelRequest {
    id: String,
}

async fn schedule_cancel(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<CancelRequest>,
) -> Response {
    if let Err(refused) = check_csrf(&state, &headers) {
        return *refused;
    }
    if !request.id.starts_with("sp-") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a scheduled post id (sp-...)",
        );
    }
    let producer = match producer(&state).await {
        Ok(producer) => producer,
        Err(refused) => return *refused,
    };
    match schedule::cancel(&producer, &state.schedule_topics, &request.id).await {
        Ok(()) => {
            tracing::info!(id = %request.id, "scheduled post cancelled from the web view");
            Json(serde_json::json!({ "id": request.id, "cancelled": true })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

/// `POST /api/schedule/retry` body: the post and the network it failed or was missed at.
#[derive(Debug, Deserialize)]
struct RetryRequest {
    id: String,
    destination: Destination,
}

/// Retries a failed or missed post at one network: reads the schedule, then schedules the
/// same text due now through the create action's planner and writer
/// ([`schedule::retry_request`]).
async fn schedule_retry(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(request): Json<RetryRequest>,
) -> Response {
    if let Err(refused) = check_csrf(&state, &headers) {
        return *refused;
    }
    let (kafka, topics) = (state.kafka.clone(), state.schedule_topics.clone());
    let rows = match tokio::task::spawn_blocking(move || schedule::list(&kafka, &topics)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let Some(row) = rows
        .iter()
        .find(|r| r.id == request.id && r.destination == request.destination)
    else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no scheduled post {} for {}",
                request.id,
                request.destination.as_str()
            ),
        );
    };
    let now = chrono::Utc::now();
    let post = match schedule::retry_request(row, now).and_then(|r| schedule::plan_post(&r, now)) {
        Ok(post) => post,
        Err(reason) => return error(StatusCode::UNPROCESSABLE_ENTITY, reason),
    };
    let producer = match producer(&state).await {
        Ok(producer) => producer,
        Err(refused) => return *refused,
    };
    match schedule::enqueue(&producer, &state.schedule_topics, &post).await {
        Ok(()) => {
            tracing::info!(retried = %request.id, id = %post.id, destination = request.destination.as_str(), "scheduled post retried from the web view");
            Json(serde_json::json!({ "id": post.id, "retried": request.id, "due_at": post.due_at }))
                .into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}
