//! Shutdown: one [`CancellationToken`] for the whole process, cancelled by SIGINT or SIGTERM.
//! Every loop selects on it and finishes its in-flight work before returning.

use tokio_util::sync::CancellationToken;

/// A signal within this long of the first one is the same request delivered twice, not an
/// operator insisting: GNU `timeout`, for one, sends SIGTERM to the child and then to the
/// whole process group, so the child receives it twice within microseconds.
pub const REPEAT_IGNORED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns a token that is cancelled on the first SIGINT (Ctrl-C) or SIGTERM. A second signal
/// (at least [`REPEAT_IGNORED_FOR`] after the first) exits at once with status 130, for an
/// operator whose shutdown is stuck.
///
/// Must be called inside a Tokio runtime.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "shutdown requested; finishing in-flight work (signal again to exit at once)"
        );
        cancel.cancel();
        let first = std::time::Instant::now();
        loop {
            wait_for_signal().await;
            if is_insisting(first.elapsed()) {
                break;
            }
            tracing::debug!("the same signal again at once; still finishing in-flight work");
        }
        tracing::error!("second signal: exiting without finishing in-flight work");
        std::process::exit(130);
    });
    token
}

/// Whether a signal `since_first` after the first one asks to exit at once.
pub fn is_insisting(since_first: std::time::Duration) -> bool {
    since_first >= REPEAT_IGNORED_FOR
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the process cleanly");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_signal_repeated_at_once_is_not_an_operator_insisting() {
        assert!(!is_insisting(Duration::from_micros(30)));
        assert!(!is_insisting(Duration::from_millis(999)));
        assert!(is_insisting(REPEAT_IGNORED_FOR));
        assert!(is_insisting(Duration::from_secs(5)));
    }
}
