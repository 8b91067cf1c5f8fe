//! HTTP from the tests (reqwest's blocking client): free loopback ports, `/metrics` scrapes
//! and the samples in them, and requests to the stream emulator's endpoints.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::blocking::Client;

/// Two distinct free ports (both listeners are held until both are known).
pub fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free port");
    let (a, b) = (bind(), bind());
    let port = |l: &TcpListener| l.local_addr().expect("bound address").port();
    (port(&a), port(&b))
}

/// Runs `request` with the one shared client on a thread of its own. Why a thread: the tests
/// call these helpers from `#[tokio::test]` bodies, and reqwest's blocking client must not
/// block a runtime thread (it panics there in debug builds); a plain thread has no runtime.
fn off_runtime<T: Send>(request: impl FnOnce(&Client) -> T + Send) -> T {
    static CLIENT: OnceLock<Client> = OnceLock::new();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let client = CLIENT.get_or_init(|| {
                    Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .expect("an HTTP client")
                });
                request(client)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `GET /metrics` on 127.0.0.1:`port`; `None` while nothing listens yet (or it answers
/// other than 200).
pub fn scrape(port: u16) -> Option<String> {
    get(port, "/metrics")
}

/// The body of `GET path` (with its query) on 127.0.0.1:`port` if it answers 200 within 10 s;
/// `None` while nothing listens, or on any other answer.
pub fn get(port: u16, path: &str) -> Option<String> {
    off_runtime(|client| {
        let response = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .ok()?;
        (response.status() == reqwest::StatusCode::OK)
            .then(|| response.text().ok())
            .flatten()
    })
}

/// The value of the sample `series` (name with labels, as exposed) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// A request to 127.0.0.1:`port`; returns (status, body).
///
/// # Panics
/// When nothing answers (within 10 s).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    off_runtime(|client| {
        let request = headers.iter().fold(
            client.request(method, format!("http://127.0.0.1:{port}{path}")),
            |request, (name, value)| request.header(*name, *value),
        );
        let response = request
            .body(body.to_owned())
            .send()
            .unwrap_or_else(|e| panic!("server on port {port} reachable: {e}"));
        let status = response.status().as_u16();
        (status, response.text().expect("a response body"))
    })
}
