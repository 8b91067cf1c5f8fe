//! The poster's exactly-once decisions, as pure functions of a clock reading `now` (read once
//! per step by the loop in [`super`]) and the state of one post at one destination; no I/O, so
//! every rule is unit tested. Each destination of a post has its own state, attempts and
//! outcome: nothing one network answers changes what is decided for another.
//!
//! - [`decide`]: what to do with one post at one destination between two polls: wait,
//!   reconcile an ambiguous attempt (X: read the account), send it again (Bluesky, Mastodon:
//!   the same record key / idempotency key cannot post twice), give it up (a Mastodon attempt
//!   older than the idempotency window), record it as missed (catch-up), or post it;
//! - [`gate`]: whether a post whose `attempt` is acknowledged is sent now, or deferred (batch
//!   time budget used up, rate limited since the batch began);
//! - [`answer`]: from X's reply to the outcome to record (retry with backoff, give up after
//!   `--max-attempts`, leave an ambiguous attempt for reconciliation);
//! - [`state_after`] and [`state_on_load`]: the state a post is in once a result is
//!   acknowledged, or when it was read back from the results topic at assignment.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tweet_pipeline_common::backoff::BackoffPolicy;

use super::CatchUp;
use crate::model::{Destination, Outcome, PostResult};

/// How long Mastodon keeps an `Idempotency-Key`: 3600 s (Mastodon API docs, "statuses", Post a
/// new status, header `Idempotency-Key`: "Idempotency keys are stored for up to 1 hour"). A
/// request repeated with the same key within that hour answers the status created the first
/// time instead of creating a second one.
pub const MASTODON_IDEMPOTENCY_SECS: i64 = 3600;
/// An ambiguous Mastodon attempt older than this is not sent again (the key may be gone, a
/// second status could be created): the idempotency window with a 5-minute margin for clock
/// skew and the request's own time.
pub const MASTODON_RESEND_WINDOW_SECS: i64 = MASTODON_IDEMPOTENCY_SECS - 300;

/// The answer of a network to one post, sorted by what the poster does next (shared by the X,
/// Bluesky and Mastodon clients).
#[derive(Debug, Clone, PartialEq)]
pub enum PostReply {
    /// Posted; the network's id of the new post (X id, AT URI, Mastodon status id).
    Created(String),
    /// The same post already exists because an earlier attempt of ours created it: Bluesky's
    /// record at the post's record key, or Mastodon's status for the repeated idempotency key
    /// (recorded as `posted`, reconciled).
    AlreadyPosted(String),
    /// X's 403 duplicate content: the same text is already on the account.
    Duplicate,
    /// 429; the reset time, when the network said.
    RateLimited(Option<DateTime<Utc>>),
    /// 5xx: not posted, try again later.
    ServerError(u16),
    /// Another 4xx (or the text refused before calling): not posted, and trying again would
    /// not help.
    Refused(u16, String),
    /// The request could not be sent (connection refused, no session): certainly not posted.
    NotSent(String),
    /// Sent, but the answer was lost (timeout, reset): maybe posted.
    Ambiguous(String),
}

/// The waits after a 5xx or a request that could not be sent: 1 s, doubled per attempt, at
/// most 60 s.
pub const RETRY_BACKOFF: BackoffPolicy = BackoffPolicy::exponential(
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(60),
);
/// How long a 429 without a usable `x-rate-limit-reset` (absent, or already past) holds posting.
pub const DEFAULT_RATE_LIMIT_SECS: i64 = 60;

/// Where a post stands in this instance's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Never tried.
    Waiting,
    /// Certainly not posted; try at this time.
    RetryAt(DateTime<Utc>),
    /// Maybe posted (the last result is `attempt`): reconcile after this time.
    Ambiguous(DateTime<Utc>),
    /// Nothing more to do.
    Done(Outcome),
}

/// The rules of a run, from the poster's flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// `--catch-up`: what to do with a post first tried more than the tolerance past due.
    pub catch_up: CatchUp,
    /// `--catch-up-tolerance-secs`: how late a post may be and still be posted regardless.
    pub catch_up_tolerance: Duration,
    /// `--max-attempts`: attempts before a post that keeps failing retryably is `failed`.
    pub max_attempts: u32,
    /// `--reconcile-delay-ms`: after an answer was lost, how long before reading the account.
    pub reconcile_delay: Duration,
}

/// One post at one destination as [`decide`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostView {
    /// The network.
    pub destination: Destination,
    /// Its state at that network.
    pub state: State,
    /// When its last attempt was written (an ambiguous attempt's age decides whether Mastodon
    /// still knows its idempotency key).
    pub attempt_at: Option<DateTime<Utc>>,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// Whether its partition is assigned and read to its end (no decision before that: a later
    /// record of the partition could cancel or replace it).
    pub ready: bool,
}

/// What to do with one post at `now`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Nothing now; look again at this time (`None`: not until something changes).
    Wait(Option<DateTime<Utc>>),
    /// X: read the account's posts to find out whether the ambiguous attempt posted.
    Reconcile,
    /// Record it as `failed`: an ambiguous attempt that cannot be resolved or safely sent again
    /// (a Mastodon attempt older than [`MASTODON_RESEND_WINDOW_SECS`]).
    Abandon {
        /// The result's reason.
        reason: String,
    },
    /// Record it as `missed`: never tried and due this long ago, beyond the tolerance.
    MarkMissed {
        /// `now` minus the due time.
        late_by: Duration,
    },
    /// Write an `attempt` and call the network (`POST /2/tweets`, `createRecord`,
    /// `POST /api/v1/statuses`); for Bluesky and Mastodon also what an ambiguous attempt gets:
    /// the same call again, with the same record key / idempotency key.
    Post,
}

/// What to do with `post` at `now`, while X's rate limit (if any) lasts until
/// `rate_limited_until`.
///
/// Nothing is decided for a post whose partition is not ready, or that is done. An ambiguous
/// X attempt is reconciled at its time even while rate limited (reconciliation reads, it does
/// not post). An ambiguous Bluesky attempt is posted again at its time (the record key derived
/// from the post makes a second `createRecord` fail instead of posting twice), and so is a
/// Mastodon one while its idempotency key is kept, abandoned (`failed`) after that. A post waiting or retrying is due at its time, but not before the rate limit's
/// reset. A post never tried that is more than the tolerance past due is recorded as missed
/// with `--catch-up mark-missed`, and posted late otherwise; a retry is always posted (it was
/// on time when first tried).
pub fn decide(
    now: DateTime<Utc>,
    post: &PostView,
    rate_limited_until: Option<DateTime<Utc>>,
    policy: &Policy,
) -> Action {
    if !post.ready {
        return Action::Wait(None);
    }
    let limited_until = rate_limited_until.filter(|until| *until > now);
    let not_before_reset = |at: DateTime<Utc>| limited_until.map_or(at, |until| until.max(at));
    let wake_at = match post.state {
        State::Done(_) => return Action::Wait(None),
        State::Ambiguous(at) if at > now => return Action::Wait(Some(at)),
        State::Ambiguous(_) if post.destination == Destination::X => return Action::Reconcile,
        State::Ambiguous(_)
            if post.destination == Destination::Mastodon
                && post.attempt_at.is_some_and(|attempt| {
                    now - attempt > Duration::seconds(MASTODON_RESEND_WINDOW_SECS)
                }) =>
        {
            return Action::Abandon {
                reason: format!(
                    "answer lost more than {MASTODON_RESEND_WINDOW_SECS} s ago: Mastodon keeps an Idempotency-Key {MASTODON_IDEMPOTENCY_SECS} s, so sending again could post twice; check the account"
                ),
            };
        }
        State::Ambiguous(at) => not_before_reset(at),
        State::Waiting => not_before_reset(post.due_at),
        State::RetryAt(at) => not_before_reset(at),
    };
    if wake_at > now {
        return Action::Wait(Some(wake_at));
    }
    let late_by = now - post.due_at;
    if post.state == State::Waiting
        && late_by > policy.catch_up_tolerance
        && policy.catch_up == CatchUp::MarkMissed
    {
        return Action::MarkMissed { late_by };
    }
    Action::Post
}

/// Whether a post whose `attempt` is acknowledged is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Call `POST /2/tweets` now.
    Send,
    /// Not sent (so certainly not posted): record a `retry` due at `retry_at`.
    Defer {
        /// When to try again.
        retry_at: DateTime<Utc>,
        /// The result's reason.
        reason: &'static str,
    },
}

/// Whether to send the next post of a batch at `now`, `batch_elapsed` after the batch's calls
/// began: not once the batch has used `budget` (the loop must poll again within
/// `max.poll.interval.ms`), nor while a rate limit a call of this batch met lasts.
pub fn gate(
    now: DateTime<Utc>,
    batch_elapsed: StdDuration,
    budget: StdDuration,
    rate_limited_until: Option<DateTime<Utc>>,
) -> Gate {
    if batch_elapsed > budget {
        return Gate::Defer {
            retry_at: now,
            reason: "batch time budget used up; not sent",
        };
    }
    match rate_limited_until.filter(|until| *until > now) {
        Some(until) => Gate::Defer {
            retry_at: until,
            reason: "rate limited (429)",
        },
        None => Gate::Send,
    }
}

/// The outcome to record for X's answer to a post.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What happened (`attempt` when the answer was lost: reconcile before any retry).
    pub outcome: Outcome,
    /// X's id of the new post (`posted`).
    pub post_id: Option<String>,
    /// Seconds between the due time and X accepting the post (`posted`).
    pub lateness_seconds: Option<f64>,
    /// Why it failed, is retried or is ambiguous.
    pub reason: Option<String>,
    /// When to try again (`retry`).
    pub retry_at: Option<DateTime<Utc>>,
    /// The network's rate limit, to hold every post to it until (a 429).
    pub rate_limited_until: Option<DateTime<Utc>>,
    /// True when the post was found already created by an earlier attempt.
    pub reconciled: bool,
}

/// The wait before attempt `attempt + 1` after attempt `attempt` failed retryably:
/// [`RETRY_BACKOFF`]'s delay after `attempt` failures.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_std(RETRY_BACKOFF.delay(attempt)).unwrap_or(Duration::MAX)
}

/// What to record for `reply`, answered at `now` to attempt number `attempts` of a post due at
/// `due_at`.
///
/// 2xx posted (or already posted by an earlier attempt); X's 403 duplicate content is final; a 429 holds every post until X's reset (or
/// [`DEFAULT_RATE_LIMIT_SECS`]); a 5xx or an unsent request is retried after [`backoff`]; any
/// other 4xx is final; a lost answer stays an `attempt`, to be reconciled. A retry at or past
/// `--max-attempts` is `failed` instead.
pub fn answer(
    now: DateTime<Utc>,
    reply: PostReply,
    attempts: u32,
    due_at: DateTime<Utc>,
    policy: &Policy,
) -> Verdict {
    let mut verdict = Verdict {
        outcome: Outcome::Retry,
        post_id: None,
        lateness_seconds: None,
        reason: None,
        retry_at: None,
        rate_limited_until: None,
        reconciled: false,
    };
    match reply {
        PostReply::Created(post_id) => {
            verdict.outcome = Outcome::Posted;
            verdict.post_id = Some(post_id);
            verdict.lateness_seconds = Some((now - due_at).num_milliseconds() as f64 / 1000.0);
        }
        PostReply::AlreadyPosted(post_id) => {
            // Created by an earlier attempt whose answer was lost: when is not known.
            verdict.outcome = Outcome::Posted;
            verdict.post_id = Some(post_id);
            verdict.reconciled = true;
        }
        PostReply::Duplicate => {
            verdict.outcome = Outcome::Duplicate;
            verdict.reason = Some(
                "X refused it as duplicate content (403): the same text is already posted"
                    .to_owned(),
            );
        }
        PostReply::RateLimited(reset) => {
            let until = reset
                .filter(|r| *r > now)
                .unwrap_or(now + Duration::seconds(DEFAULT_RATE_LIMIT_SECS));
            verdict.rate_limited_until = Some(until);
            verdict.retry_at = Some(until);
            verdict.reason = Some("rate limited (429)".to_owned());
        }
        PostReply::ServerError(status) => {
            verdict.reason = Some(format!("HTTP {status}"));
            verdict.retry_at = Some(now + backoff(attempts));
        }
        PostReply::Refused(status, detail) => {
            verdict.outcome = Outcome::Failed;
            verdict.reason = Some(format!("HTTP {status}: {detail}"));
        }
        PostReply::NotSent(error) => {
            verdict.reason = Some(format!("not sent: {error}"));
            verdict.retry_at = Some(now + backoff(attempts));
        }
        PostReply::Ambiguous(error) => {
            // Leave the `attempt` as the last result: reconcile after a short delay.
            verdict.outcome = Outcome::Attempt;
            verdict.reason = Some(format!("answer lost: {error}"));
        }
    }
    if verdict.outcome == Outcome::Retry && attempts >= policy.max_attempts {
        verdict.outcome = Outcome::Failed;
        verdict.reason = Some(format!(
            "{} after {attempts} attempts",
            verdict.reason.take().unwrap_or_default()
        ));
        verdict.retry_at = None;
    }
    verdict
}

/// The state of a post once `result` is acknowledged on the results topic: final outcomes are
/// done; an `attempt` is ambiguous, reconciled at once if the poster dies before the answer is
/// recorded, or after `reconcile_delay` when it carries a reason (the answer was lost); a
/// `retry` is due at its `retry_at`.
pub fn state_after(result: &PostResult, reconcile_delay: Duration) -> State {
    match result.outcome {
        outcome if outcome.is_final() => State::Done(outcome),
        Outcome::Attempt if result.reason.is_some() => {
            State::Ambiguous(result.at + reconcile_delay)
        }
        Outcome::Attempt => State::Ambiguous(result.at),
        _ => State::RetryAt(result.retry_at.unwrap_or(result.at)),
    }
}

/// The state of a post whose last result, read back at assignment, is `result`: a previous
/// owner's `attempt` is resolved at once (`now`), whatever the reason: reconciled on X, sent
/// again with the same key on Bluesky and Mastodon ([`decide`]).
pub fn state_on_load(now: DateTime<Utc>, result: &PostResult) -> State {
    match result.outcome {
        outcome if outcome.is_final() => State::Done(outcome),
        Outcome::Attempt => State::Ambiguous(now),
        _ => State::RetryAt(result.retry_at.unwrap_or(result.at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_000_000 + seconds, 0).unwrap()
    }

    fn policy(catch_up: CatchUp) -> Policy {
        Policy {
            catch_up,
            catch_up_tolerance: Duration::seconds(900),
            max_attempts: 3,
            reconcile_delay: Duration::milliseconds(2000),
        }
    }

    fn view(state: State, due_at: DateTime<Utc>) -> PostView {
        PostView {
            destination: Destination::X,
            state,
            attempt_at: None,
            due_at,
            ready: true,
        }
    }

    fn at(destination: Destination, state: State, due_at: DateTime<Utc>) -> PostView {
        PostView {
            destination,
            ..view(state, due_at)
        }
    }

    fn decide_at(now: i64, post: PostView, limited: Option<i64>) -> Action {
        decide(t(now), &post, limited.map(t), &policy(CatchUp::MarkMissed))
    }

    fn result(outcome: Outcome, at: DateTime<Utc>) -> PostResult {
        PostResult {
            id: "sp-1".into(),
            destination: Destination::X,
            outcome,
            at,
            due_at: at,
            attempt: 1,
            post_id: None,
            lateness_seconds: None,
            reason: None,
            retry_at: None,
            reconciled: false,
            by: "t".into(),
        }
    }

    #[test]
    fn nothing_is_decided_before_the_partition_is_ready() {
        let mut post = view(State::Waiting, t(0));
        post.ready = false;
        assert_eq!(decide_at(100, post, None), Action::Wait(None));
        let mut ambiguous = view(State::Ambiguous(t(0)), t(0));
        ambiguous.ready = false;
        assert_eq!(decide_at(100, ambiguous, None), Action::Wait(None));
    }

    #[test]
    fn done_posts_never_wake() {
        for outcome in [
            Outcome::Posted,
            Outcome::Duplicate,
            Outcome::Failed,
            Outcome::Missed,
        ] {
            let post = view(State::Done(outcome), t(0));
            assert_eq!(decide_at(10_000, post, None), Action::Wait(None));
        }
    }

    #[test]
    fn a_waiting_post_waits_for_its_due_time_then_posts() {
        let post = view(State::Waiting, t(60));
        assert_eq!(decide_at(0, post, None), Action::Wait(Some(t(60))));
        assert_eq!(decide_at(60, post, None), Action::Post);
        // Within the catch-up tolerance (900 s): posted late.
        assert_eq!(decide_at(60 + 900, post, None), Action::Post);
    }

    #[test]
    fn a_post_too_late_when_first_tried_is_missed_with_mark_missed() {
        let post = view(State::Waiting, t(0));
        assert_eq!(
            decide_at(901, post, None),
            Action::MarkMissed {
                late_by: Duration::seconds(901)
            }
        );
    }

    #[test]
    fn a_post_too_late_when_first_tried_is_posted_with_post_late() {
        let post = view(State::Waiting, t(0));
        let action = decide(t(5000), &post, None, &policy(CatchUp::PostLate));
        assert_eq!(action, Action::Post);
    }

    #[test]
    fn a_retry_is_posted_at_its_time_however_late() {
        let post = view(State::RetryAt(t(5000)), t(0));
        assert_eq!(decide_at(4999, post, None), Action::Wait(Some(t(5000))));
        // Far past the tolerance, but it was on time when first tried: never missed.
        assert_eq!(decide_at(5000, post, None), Action::Post);
    }

    #[test]
    fn a_rate_limit_holds_waiting_and_retrying_posts_until_its_reset() {
        let waiting = view(State::Waiting, t(0));
        assert_eq!(decide_at(10, waiting, Some(30)), Action::Wait(Some(t(30))));
        let retry = view(State::RetryAt(t(5)), t(0));
        assert_eq!(decide_at(10, retry, Some(30)), Action::Wait(Some(t(30))));
        // A post due after the reset waits for its own time.
        let later = view(State::Waiting, t(40));
        assert_eq!(decide_at(10, later, Some(30)), Action::Wait(Some(t(40))));
    }

    #[test]
    fn an_expired_rate_limit_holds_nothing() {
        let post = view(State::Waiting, t(0));
        assert_eq!(decide_at(30, post, Some(30)), Action::Post);
        assert_eq!(decide_at(31, post, Some(30)), Action::Post);
    }

    #[test]
    fn a_rate_limit_does_not_keep_a_missed_post_from_being_recorded_after_it() {
        let post = view(State::Waiting, t(0));
        assert_eq!(
            decide_at(950, post, Some(1000)),
            Action::Wait(Some(t(1000)))
        );
        assert_eq!(
            decide_at(1000, post, Some(1000)),
            Action::MarkMissed {
                late_by: Duration::seconds(1000)
            }
        );
    }

    #[test]
    fn an_ambiguous_attempt_is_reconciled_at_its_time_even_while_rate_limited() {
        let post = view(State::Ambiguous(t(20)), t(0));
        assert_eq!(decide_at(10, post, None), Action::Wait(Some(t(20))));
        assert_eq!(decide_at(20, post, None), Action::Reconcile);
        assert_eq!(decide_at(20, post, Some(500)), Action::Reconcile);
        // Never missed: it may already be on the account.
        assert_eq!(decide_at(10_000, post, None), Action::Reconcile);
    }

    #[test]
    fn the_gate_defers_past_the_budget_and_during_a_rate_limit() {
        let budget = StdDuration::from_secs(30);
        assert_eq!(gate(t(0), StdDuration::ZERO, budget, None), Gate::Send);
        assert_eq!(gate(t(0), budget, budget, Some(t(0))), Gate::Send);
        assert_eq!(
            gate(t(0), budget + StdDuration::from_millis(1), budget, None),
            Gate::Defer {
                retry_at: t(0),
                reason: "batch time budget used up; not sent"
            }
        );
        assert_eq!(
            gate(t(0), StdDuration::ZERO, budget, Some(t(60))),
            Gate::Defer {
                retry_at: t(60),
                reason: "rate limited (429)"
            }
        );
    }

    #[test]
    fn answers_posted_duplicate_refused_and_lost() {
        let p = policy(CatchUp::MarkMissed);
        let posted = answer(t(2), PostReply::Created("42".into()), 1, t(0), &p);
        assert_eq!(posted.outcome, Outcome::Posted);
        assert_eq!(posted.post_id.as_deref(), Some("42"));
        assert_eq!(posted.lateness_seconds, Some(2.0));
        let duplicate = answer(t(2), PostReply::Duplicate, 1, t(0), &p);
        assert_eq!(duplicate.outcome, Outcome::Duplicate);
        let refused = answer(t(2), PostReply::Refused(400, "bad".into()), 1, t(0), &p);
        assert_eq!(refused.outcome, Outcome::Failed);
        assert_eq!(refused.reason.as_deref(), Some("HTTP 400: bad"));
        // A lost answer is never retried directly, even at the last attempt.
        let lost = answer(t(2), PostReply::Ambiguous("timeout".into()), 3, t(0), &p);
        assert_eq!(lost.outcome, Outcome::Attempt);
        assert_eq!(lost.reason.as_deref(), Some("answer lost: timeout"));
        assert_eq!(lost.retry_at, None);
    }

    #[test]
    fn answers_retry_with_backoff_until_the_last_attempt() {
        let p = policy(CatchUp::MarkMissed);
        let first = answer(t(0), PostReply::ServerError(503), 1, t(0), &p);
        assert_eq!(first.outcome, Outcome::Retry);
        assert_eq!(first.retry_at, Some(t(1)));
        let second = answer(t(0), PostReply::NotSent("refused".into()), 2, t(0), &p);
        assert_eq!(second.retry_at, Some(t(2)));
        assert_eq!(second.reason.as_deref(), Some("not sent: refused"));
        let last = answer(t(0), PostReply::ServerError(500), 3, t(0), &p);
        assert_eq!(last.outcome, Outcome::Failed);
        assert_eq!(last.reason.as_deref(), Some("HTTP 500 after 3 attempts"));
        assert_eq!(last.retry_at, None);
        assert_eq!(backoff(7), Duration::seconds(60));
        assert_eq!(backoff(u32::MAX), Duration::seconds(60));
    }

    #[test]
    fn answers_rate_limited_until_the_reset_or_a_minute() {
        let p = policy(CatchUp::MarkMissed);
        let with_reset = answer(t(0), PostReply::RateLimited(Some(t(300))), 1, t(0), &p);
        assert_eq!(with_reset.outcome, Outcome::Retry);
        assert_eq!(with_reset.rate_limited_until, Some(t(300)));
        assert_eq!(with_reset.retry_at, Some(t(300)));
        // A reset in the past (clock skew) or none: a minute.
        let stale = answer(t(0), PostReply::RateLimited(Some(t(-5))), 1, t(0), &p);
        assert_eq!(stale.rate_limited_until, Some(t(60)));
        let none = answer(t(0), PostReply::RateLimited(None), 3, t(0), &p);
        assert_eq!(none.outcome, Outcome::Failed);
        assert_eq!(none.rate_limited_until, Some(t(60)));
    }

    #[test]
    fn states_after_an_acknowledged_result() {
        let delay = Duration::seconds(2);
        assert_eq!(
            state_after(&result(Outcome::Posted, t(0)), delay),
            State::Done(Outcome::Posted)
        );
        assert_eq!(
            state_after(&result(Outcome::Attempt, t(0)), delay),
            State::Ambiguous(t(0))
        );
        let mut lost = result(Outcome::Attempt, t(0));
        lost.reason = Some("answer lost: timeout".into());
        assert_eq!(state_after(&lost, delay), State::Ambiguous(t(2)));
        let mut retry = result(Outcome::Retry, t(0));
        assert_eq!(state_after(&retry, delay), State::RetryAt(t(0)));
        retry.retry_at = Some(t(9));
        assert_eq!(state_after(&retry, delay), State::RetryAt(t(9)));
    }

    #[test]
    fn states_on_load_reconcile_a_previous_owners_attempt_at_once() {
        let mut attempt = result(Outcome::Attempt, t(0));
        attempt.reason = Some("answer lost: timeout".into());
        assert_eq!(state_on_load(t(50), &attempt), State::Ambiguous(t(50)));
        assert_eq!(
            state_on_load(t(50), &result(Outcome::Missed, t(0))),
            State::Done(Outcome::Missed)
        );
        let mut retry = result(Outcome::Retry, t(0));
        retry.retry_at = Some(t(9));
        assert_eq!(state_on_load(t(50), &retry), State::RetryAt(t(9)));
    }

    #[test]
    fn an_attempt_on_load_is_reconciled_on_x_and_sent_again_on_bluesky_and_mastodon() {
        let mut attempt = result(Outcome::Attempt, t(0));
        attempt.reason = Some("answer lost: timeout".into());
        let state = state_on_load(t(50), &attempt);
        assert_eq!(state, State::Ambiguous(t(50)));
        let x = at(Destination::X, state, t(0));
        assert_eq!(decide_at(50, x, None), Action::Reconcile);
        // Bluesky: the same call again; the record key is a function of the post alone
        // (bluesky::record_key), so it cannot create a second record.
        let mut bluesky = at(Destination::Bluesky, state, t(0));
        bluesky.attempt_at = Some(t(0));
        assert_eq!(decide_at(50, bluesky, None), Action::Post);
        // Never missed, however late: it may already be posted.
        assert_eq!(decide_at(100_000, bluesky, None), Action::Post);
        // Mastodon: the same call again, with the same Idempotency-Key
        // (mastodon::idempotency_key), while Mastodon keeps the key.
        let mut mastodon = at(Destination::Mastodon, state, t(0));
        mastodon.attempt_at = Some(t(0));
        assert_eq!(decide_at(50, mastodon, None), Action::Post);
        assert_eq!(
            decide_at(MASTODON_RESEND_WINDOW_SECS, mastodon, None),
            Action::Post
        );
        assert!(matches!(
            decide_at(MASTODON_RESEND_WINDOW_SECS + 1, mastodon, None),
            Action::Abandon { .. }
        ));
        // A resend is a post: it waits for the network's rate limit.
        assert_eq!(decide_at(50, bluesky, Some(80)), Action::Wait(Some(t(80))));
    }

    #[test]
    fn one_destination_failing_while_another_posts() {
        let p = policy(CatchUp::MarkMissed);
        // Both are due; each gets its own attempt and answer.
        let bluesky = at(Destination::Bluesky, State::Waiting, t(0));
        let mastodon = at(Destination::Mastodon, State::Waiting, t(0));
        assert_eq!(decide_at(0, bluesky, None), Action::Post);
        assert_eq!(decide_at(0, mastodon, None), Action::Post);
        let posted = answer(
            t(1),
            PostReply::Created("at://did:plc:x/app.bsky.feed.post/3k".into()),
            1,
            t(0),
            &p,
        );
        let failing = answer(t(1), PostReply::ServerError(500), 1, t(0), &p);
        assert_eq!(posted.outcome, Outcome::Posted);
        assert_eq!(failing.outcome, Outcome::Retry);
        let mut bluesky_result = result(Outcome::Posted, t(1));
        bluesky_result.destination = Destination::Bluesky;
        let mut mastodon_result = result(Outcome::Retry, t(1));
        mastodon_result.destination = Destination::Mastodon;
        mastodon_result.retry_at = failing.retry_at;
        let bluesky = at(
            Destination::Bluesky,
            state_after(&bluesky_result, p.reconcile_delay),
            t(0),
        );
        let mastodon = at(
            Destination::Mastodon,
            state_after(&mastodon_result, p.reconcile_delay),
            t(0),
        );
        // Mastodon retries; Bluesky never wakes again, whatever Mastodon does.
        assert_eq!(decide_at(2, mastodon, None), Action::Post);
        assert_eq!(decide_at(2, bluesky, None), Action::Wait(None));
        let last = answer(t(3), PostReply::ServerError(500), 3, t(0), &p);
        assert_eq!(last.outcome, Outcome::Failed);
        assert_eq!(decide_at(10_000, bluesky, None), Action::Wait(None));
        // The same, on load by the next owner: each destination from its own result.
        assert_eq!(
            state_on_load(t(9), &bluesky_result),
            State::Done(Outcome::Posted)
        );
        assert_eq!(state_on_load(t(9), &mastodon_result), State::RetryAt(t(2)));
    }

    #[test]
    fn an_earlier_attempts_post_found_again_is_posted_and_reconciled() {
        let p = policy(CatchUp::MarkMissed);
        let found = answer(
            t(5),
            PostReply::AlreadyPosted("at://did:plc:x/app.bsky.feed.post/3k".into()),
            2,
            t(0),
            &p,
        );
        assert_eq!(found.outcome, Outcome::Posted);
        assert!(found.reconciled);
        assert_eq!(found.lateness_seconds, None);
        assert_eq!(
            found.post_id.as_deref(),
            Some("at://did:plc:x/app.bsky.feed.post/3k")
        );
    }
}
