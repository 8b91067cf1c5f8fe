//! The consumer-group roles that run on the at-least-once loop ([`crate::runner`]): what each
//! reads, how its handler is made, and the summary of its run. One module per role:
//! [`analysis`] (language, sentiment, the store, deletes) and [`archive`] (raw records into
//! gzip files). The poster runs its own loop (`tweet_pipeline_scheduler::poster`), and so does
//! [`web`] (a live view that commits nothing).

pub mod analysis;
pub mod archive;
pub mod web;

use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use tweet_pipeline_common::config::TopicNames;
use tweet_pipeline_common::metrics::ConsumerMetrics;

use crate::cli::{Cli, Role};
use crate::runner::lag::LagGauge;
use crate::runner::{self, RebalanceContext, RunnerConfig};

/// The topics `role` reads: the tweets, retweets and control topics, and for the archive the
/// dead-letter topic too.
pub fn topics(role: Role, names: &TopicNames) -> Vec<&str> {
    let mut topics = vec![
        names.tweets.as_str(),
        names.retweets.as_str(),
        names.control.as_str(),
    ];
    if role == Role::Archive {
        topics.push(names.deadletter.as_str());
    }
    topics
}

/// The batching and stopping flags of `cli`.
pub fn runner_config(cli: &Cli) -> RunnerConfig {
    RunnerConfig {
        batch_max_records: cli.batch_size as usize,
        batch_max_wait: Duration::from_millis(cli.batch_wait_ms),
        exit_at_end: cli.exit_at_end,
    }
}

/// The group's consumer for `role`, its lag in `metrics`; checks at start that the role's
/// topics and the dead-letter topic exist.
///
/// # Errors
/// An invalid client configuration (`-X`), or a topic missing on the broker.
pub fn consumer(
    cli: &Cli,
    role: Role,
    metrics: &ConsumerMetrics,
) -> anyhow::Result<BaseConsumer<RebalanceContext>> {
    let lag = LagGauge::new(metrics.lag_records.clone(), &cli.group, cli.topics.clone());
    let checked = [
        &topics(role, &cli.topics)[..],
        &[cli.topics.deadletter.as_str()],
    ]
    .concat();
    runner::create_consumer(
        &cli.kafka,
        &cli.group,
        cli.membership,
        cli.instance_id.as_deref(),
        lag,
        &checked,
    )
}
