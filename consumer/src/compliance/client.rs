//! The HTTP side of X API v2 batch compliance: create a job, upload its ids, read its status,
//! download its results (shapes and sources: `tweet_pipeline_common::compliance`).

use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;
use tweet_pipeline_common::compliance::ComplianceEvent;
use tweet_pipeline_common::secret::Secret;

/// How long one compliance request may take (uploads of 500,000 ids included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A compliance job as X describes it (`data` of `POST /2/compliance/jobs` and
/// `GET /2/compliance/jobs/:id`).
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    /// The job id.
    pub id: String,
    /// `created`, `in_progress`, `complete`, `failed` or `expired`.
    pub status: String,
    /// Where the ids go (`PUT`, pre-signed).
    pub upload_url: String,
    /// Where the results are once complete (`GET`, pre-signed).
    pub download_url: String,
}

#[derive(Deserialize)]
struct JobEnvelope {
    data: Job,
}

/// A client of the compliance endpoints under `base_url` with an app-only bearer token.
pub struct JobsClient {
    http: reqwest::Client,
    base_url: String,
    bearer: Secret,
}

impl JobsClient {
    /// A client for `base_url` (e.g. `https://api.x.com`).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: &str, bearer: Secret) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer,
        })
    }

    /// `POST /2/compliance/jobs` with `{"type":"tweets"}`.
    ///
    /// # Errors
    /// A transport failure or a non-2xx answer (its status named; 401/403: the token).
    pub async fn create(&self) -> anyhow::Result<Job> {
        let response = self
            .http
            .post(format!("{}/2/compliance/jobs", self.base_url))
            .bearer_auth(self.bearer.expose())
            .json(&serde_json::json!({"type": "tweets"}))
            .send()
            .await
            .context("cannot reach the X API to create a compliance job")?;
        job_from(response, "creating a compliance job").await
    }

    /// `GET /2/compliance/jobs/:id`.
    ///
    /// # Errors
    /// As [`JobsClient::create`].
    pub async fn status(&self, id: &str) -> anyhow::Result<Job> {
        let response = self
            .http
            .get(format!("{}/2/compliance/jobs/{id}", self.base_url))
            .bearer_auth(self.bearer.expose())
            .send()
            .await
            .context("cannot reach the X API to read a compliance job")?;
        job_from(response, "reading a compliance job").await
    }

    /// `PUT upload_url` with `ids`, one per line, as plain text (no credentials: the URL is
    /// pre-signed).
    ///
    /// # Errors
    /// A transport failure or a non-2xx answer.
    pub async fn upload(&self, job: &Job, ids: &[String]) -> anyhow::Result<()> {
        let mut body = ids.join("\n");
        body.push('\n');
        let response = self
            .http
            .put(&job.upload_url)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(body)
            .send()
            .await
            .context("cannot upload the ids of a compliance job")?;
        if !response.status().is_success() {
            bail!(
                "uploading the ids of compliance job {}: answered {}",
                job.id,
                response.status()
            );
        }
        Ok(())
    }

    /// `GET download_url`: the result lines (blank lines skipped; a line that is not a
    /// compliance event is counted in the second value and skipped).
    ///
    /// # Errors
    /// A transport failure or a non-2xx answer.
    pub async fn download(&self, job: &Job) -> anyhow::Result<(Vec<ComplianceEvent>, u64)> {
        let response = self
            .http
            .get(&job.download_url)
            .send()
            .await
            .context("cannot download the results of a compliance job")?;
        if !response.status().is_success() {
            bail!(
                "downloading the results of compliance job {}: answered {}",
                job.id,
                response.status()
            );
        }
        let text = response
            .text()
            .await
            .context("cannot read the results of a compliance job")?;
        Ok(parse_results(&text))
    }
}

/// The events of a results body and the count of lines that are not events.
pub fn parse_results(text: &str) -> (Vec<ComplianceEvent>, u64) {
    let (mut events, mut bad) = (Vec::new(), 0);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match serde_json::from_str(line) {
            Ok(event) => events.push(event),
            Err(_) => bad += 1,
        }
    }
    (events, bad)
}

async fn job_from(response: reqwest::Response, what: &str) -> anyhow::Result<Job> {
    let status = response.status();
    match status.as_u16() {
        200..=299 => {}
        401 | 403 => bail!("{what}: the X API refused the bearer token ({status}); check X_BEARER_TOKEN (an app-only bearer token of an app in a Project)"),
        _ => bail!("{what}: the X API answered {status}"),
    }
    let envelope: JobEnvelope = response
        .json()
        .await
        .with_context(|| format!("{what}: the answer is not a compliance job"))?;
    Ok(envelope.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse_and_bad_ones_are_counted() {
        let text = "\n{\"id\":\"1\",\"action\":\"delete\",\"reason\":\"protected\"}\nnot json\n";
        let (events, bad) = parse_results(text);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].reason.as_deref(), Some("protected"));
        assert_eq!(bad, 1);
    }
}
