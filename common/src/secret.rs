//! Credentials: a newtype that never prints its value, loaded from the environment or from a
//! file that only its owner can read.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{bail, Context as _};

/// A secret string (bearer token, OAuth key). `Debug` and `Display` print `***`; the value
/// is reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it (an HTTP header, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The four OAuth 1.0a credentials of a user context (RFC 5849; X calls them API key and
/// secret, access token and secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthKeys {
    /// `oauth_consumer_key` (API key).
    pub consumer_key: Secret,
    /// Consumer secret (API key secret).
    pub consumer_secret: Secret,
    /// `oauth_token` (access token).
    pub access_token: Secret,
    /// Access token secret.
    pub access_token_secret: Secret,
}

/// Reads a credentials file of `NAME=value` lines (blank lines and `#` comments allowed, like
/// a systemd `EnvironmentFile`).
///
/// # Errors
/// When the file cannot be read, is readable by its group or others (Unix), or has a line
/// without `=`. The error names the file and line, never a value.
pub fn read_credentials_file(path: &Path) -> anyhow::Result<HashMap<String, Secret>> {
    check_private(path)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read credentials file {}", path.display()))?;
    let mut values = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: expected NAME=value (e.g. X_BEARER_TOKEN=...)",
                path.display(),
                number + 1
            );
        };
        let value = value.trim().trim_matches('"');
        values.insert(name.trim().to_owned(), Secret::new(value));
    }
    Ok(values)
}

/// Looks a credential up: the environment variable `name` first, then the credentials file.
///
/// # Errors
/// When neither has it: the message names the variable and how to provide it.
pub fn credential(
    name: &str,
    file: Option<&HashMap<String, Secret>>,
    what: &str,
) -> anyhow::Result<Secret> {
    if let Ok(value) = std::env::var(name) {
        if !value.is_empty() {
            return Ok(Secret::new(value));
        }
    }
    if let Some(secret) = file.and_then(|values| values.get(name)) {
        return Ok(secret.clone());
    }
    bail!("missing {what}: set the environment variable {name}, or put {name}=... in a file passed with --credentials-file (mode 0600)")
}

#[cfg(unix)]
pub(crate) fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read credentials file {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "credentials file {} is readable by other users (mode {:o}); run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("s3cr3t-value");
        assert_eq!(format!("{secret}"), "***");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert_eq!(secret.expose(), "s3cr3t-value");
    }

    #[cfg(unix)]
    #[test]
    fn credentials_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.env");
        std::fs::write(&path, "# x\nX_BEARER_TOKEN=abc\n\nX_CONSUMER_KEY = \"k\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_credentials_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("chmod 600") && !error.contains("abc"),
            "{error}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let values = read_credentials_file(&path).unwrap();
        assert_eq!(values["X_BEARER_TOKEN"].expose(), "abc");
        assert_eq!(values["X_CONSUMER_KEY"].expose(), "k");
        let missing = credential(
            "TWEET_PIPELINE_TEST_UNSET_VAR",
            Some(&values),
            "bearer token",
        )
        .unwrap_err();
        assert!(missing
            .to_string()
            .contains("TWEET_PIPELINE_TEST_UNSET_VAR"));
    }

    #[test]
    fn bad_lines_name_the_line_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.env");
        std::fs::write(&path, "X_BEARER_TOKEN=abc\nsupersecretwithoutequals\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let error = read_credentials_file(&path).unwrap_err().to_string();
        assert!(
            error.contains(":2:") && !error.contains("supersecret"),
            "{error}"
        );
    }
}
