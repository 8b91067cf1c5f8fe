//! OAuth 1.0a request verification (HMAC-SHA1) for the v1.1 endpoint, as X API v1.1 required
//! for `statuses/filter` (X "Authorizing a request" and "Creating a signature" documents;
//! RFC 5849 section 3.4).
//!
//! The server recomputes the signature with the configured consumer and token secrets from the
//! request it received: the method, the base string URI (`http://host[:port]/path`, no query),
//! the `oauth_*` protocol parameters except `oauth_signature` (with the client's own
//! `oauth_nonce` and `oauth_timestamp`), and every query and form-body parameter. The signature
//! base string itself is built by the `oauth1-request` crate, which lets the nonce and timestamp
//! be set. Not checked: timestamp freshness and nonce reuse (recorded requests may be replayed in
//! tests).

use std::num::NonZeroU64;

use oauth1_request::{Builder, Credentials, ParameterList, Token, HMAC_SHA1};
use percent_encoding::percent_decode_str;
pub use tweet_pipeline_common::secret::{OAuthKeys, Secret};

/// Why a request's OAuth authorization was rejected. The message names the problem, never a
/// secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OAuthError {
    /// No `Authorization: OAuth ...` header and no `oauth_*` parameters.
    #[error("no OAuth authorization in the request")]
    Missing,
    /// A required protocol parameter is absent.
    #[error("missing OAuth parameter {0}")]
    MissingParameter(&'static str),
    /// `oauth_signature_method` is not `HMAC-SHA1`.
    #[error("unsupported oauth_signature_method {0:?} (only HMAC-SHA1)")]
    UnsupportedMethod(String),
    /// `oauth_version` is present but not `1.0`.
    #[error("unsupported oauth_version {0:?}")]
    UnsupportedVersion(String),
    /// `oauth_consumer_key` is not the configured one.
    #[error("unknown consumer key")]
    UnknownConsumerKey,
    /// `oauth_token` is not the configured one.
    #[error("unknown access token")]
    UnknownToken,
    /// `oauth_timestamp` is not a positive integer.
    #[error("invalid oauth_timestamp")]
    BadTimestamp,
    /// The signature does not match the one recomputed from the request.
    #[error("signature mismatch")]
    BadSignature,
}

/// Parses an `Authorization: OAuth k="v", ...` header value into decoded `(key, value)` pairs
/// (RFC 5849 section 3.5.1). Returns `None` when the scheme is not `OAuth`.
pub fn parse_authorization(header: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return None;
    }
    let pairs = rest
        .split(',')
        .filter_map(|item| {
            let (key, value) = item.trim().split_once('=')?;
            let value = value.trim().trim_matches('"');
            Some((decode(key.trim()), decode(value)))
        })
        .filter(|(key, _)| key != "realm")
        .collect();
    Some(pairs)
}

/// Splits an `application/x-www-form-urlencoded` string (a query or a form body) into decoded
/// pairs; `+` is a space.
pub fn parse_urlencoded(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                decode(&key.replace('+', " ")),
                decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn decode(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// Verifies an HMAC-SHA1 signed request.
///
/// - `method`: the HTTP method, e.g. `POST`.
/// - `base_uri`: the base string URI, `http://127.0.0.1:8089/1.1/statuses/filter.json`
///   (lower-case scheme and host, no default port, no query).
/// - `oauth`: the decoded protocol parameters (`oauth_*`, `oauth_signature` included).
/// - `params`: the decoded query and form-body parameters that are not `oauth_*`.
///
/// # Errors
/// [`OAuthError`] saying which check failed.
pub fn verify(
    keys: &OAuthKeys,
    method: &str,
    base_uri: &str,
    oauth: &[(String, String)],
    params: &[(String, String)],
) -> Result<(), OAuthError> {
    if oauth.is_empty() {
        return Err(OAuthError::Missing);
    }
    let get = |name: &'static str| {
        oauth
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let required = |name: &'static str| get(name).ok_or(OAuthError::MissingParameter(name));
    let consumer_key = required("oauth_consumer_key")?;
    let signature = required("oauth_signature")?;
    let nonce = required("oauth_nonce")?;
    let timestamp = required("oauth_timestamp")?;
    let signature_method = required("oauth_signature_method")?;
    let token = required("oauth_token")?;
    if signature_method != "HMAC-SHA1" {
        return Err(OAuthError::UnsupportedMethod(signature_method.to_owned()));
    }
    let version = get("oauth_version");
    if let Some(version) = version.filter(|v| *v != "1.0") {
        return Err(OAuthError::UnsupportedVersion(version.to_owned()));
    }
    if consumer_key != keys.consumer_key.expose() {
        return Err(OAuthError::UnknownConsumerKey);
    }
    if token != keys.access_token.expose() {
        return Err(OAuthError::UnknownToken);
    }
    let timestamp = timestamp
        .parse::<u64>()
        .ok()
        .and_then(NonZeroU64::new)
        .ok_or(OAuthError::BadTimestamp)?;

    let expected = sign(
        keys,
        method,
        base_uri,
        nonce,
        timestamp,
        version.is_some(),
        get("oauth_callback"),
        get("oauth_verifier"),
        params,
    );
    if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(OAuthError::BadSignature)
    }
}

/// The base64 HMAC-SHA1 signature (not percent-encoded) of a request.
#[allow(clippy::too_many_arguments)]
fn sign(
    keys: &OAuthKeys,
    method: &str,
    base_uri: &str,
    nonce: &str,
    timestamp: NonZeroU64,
    with_version: bool,
    callback: Option<&str>,
    verifier: Option<&str>,
    params: &[(String, String)],
) -> String {
    let token = Token::new(
        Credentials::new(keys.consumer_key.expose(), keys.consumer_secret.expose()),
        Credentials::new(
            keys.access_token.expose(),
            keys.access_token_secret.expose(),
        ),
    );
    let mut builder = Builder::with_token(token, HMAC_SHA1);
    builder
        .nonce(nonce)
        .timestamp(timestamp)
        .version(with_version)
        .callback(callback)
        .verifier(verifier);
    let request = ParameterList::new(
        params
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect::<Vec<_>>(),
    );
    let header = builder.authorize(method, base_uri, &request);
    // The header ends with `oauth_signature="<percent-encoded base64>"`.
    let encoded = header
        .rsplit_once("oauth_signature=\"")
        .map(|(_, tail)| tail.trim_end_matches('"'))
        .unwrap_or_default();
    decode(encoded)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of X's "Creating a signature" document (developer.x.com, OAuth 1.0a).
    fn doc_keys() -> OAuthKeys {
        OAuthKeys {
            consumer_key: Secret::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Secret::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
            access_token: Secret::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            access_token_secret: Secret::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
        }
    }

    fn doc_oauth(signature: &str) -> Vec<(String, String)> {
        [
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature", signature),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            (
                "oauth_token",
                "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
            ),
            ("oauth_version", "1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn doc_params() -> Vec<(String, String)> {
        vec![
            ("include_entities".into(), "true".into()),
            (
                "status".into(),
                "Hello Ladies + Gentlemen, a signed OAuth request!".into(),
            ),
        ]
    }

    /// The URL of the original document (API v1). Its published signature is
    /// `tnnArxj06cWHq44gCs1OSKk/jLY=`; the later copy of the document with the `/1.1/` URL
    /// publishes `hCtSmYh+iHYCEqBWrE7C7hYmtUk=` for the same parameters (both checked here).
    const DOC_URI: &str = "https://api.twitter.com/1/statuses/update.json";
    const DOC_URI_1_1: &str = "https://api.twitter.com/1.1/statuses/update.json";

    fn doc_signature(uri: &str) -> String {
        sign(
            &doc_keys(),
            "POST",
            uri,
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            NonZeroU64::new(1318622958).unwrap(),
            true,
            None,
            None,
            &doc_params(),
        )
    }

    #[test]
    fn x_documentation_vectors() {
        assert_eq!(doc_signature(DOC_URI), "tnnArxj06cWHq44gCs1OSKk/jLY=");
        assert_eq!(doc_signature(DOC_URI_1_1), "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
        let keys = doc_keys();
        let oauth = doc_oauth("tnnArxj06cWHq44gCs1OSKk/jLY=");
        assert_eq!(
            verify(&keys, "POST", DOC_URI, &oauth, &doc_params()),
            Ok(())
        );
        let oauth = doc_oauth("hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
        assert_eq!(
            verify(&keys, "POST", DOC_URI_1_1, &oauth, &doc_params()),
            Ok(())
        );
    }

    #[test]
    fn tampering_is_rejected() {
        let keys = doc_keys();
        let oauth = doc_oauth("tnnArxj06cWHq44gCs1OSKk/jLY=");
        let mut params = doc_params();
        params[1].1.push('!');
        assert_eq!(
            verify(&keys, "POST", DOC_URI, &oauth, &params),
            Err(OAuthError::BadSignature)
        );
        assert_eq!(
            verify(&keys, "GET", DOC_URI, &oauth, &doc_params()),
            Err(OAuthError::BadSignature)
        );
        let mut wrong = keys.clone();
        wrong.consumer_secret = Secret::new("not-the-secret");
        assert_eq!(
            verify(&wrong, "POST", DOC_URI, &oauth, &doc_params()),
            Err(OAuthError::BadSignature)
        );
        wrong.consumer_key = Secret::new("someone-else");
        assert_eq!(
            verify(&wrong, "POST", DOC_URI, &oauth, &doc_params()),
            Err(OAuthError::UnknownConsumerKey)
        );
        assert_eq!(
            verify(&keys, "POST", DOC_URI, &[], &doc_params()),
            Err(OAuthError::Missing)
        );
    }

    #[test]
    fn authorization_header_round_trip() {
        let header = "OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", \
            oauth_nonce=\"kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg\", \
            oauth_signature=\"tnnArxj06cWHq44gCs1OSKk%2FjLY%3D\", \
            oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1318622958\", \
            oauth_token=\"370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb\", \
            oauth_version=\"1.0\"";
        let mut oauth = parse_authorization(header).unwrap();
        oauth.sort();
        assert_eq!(oauth, doc_oauth("tnnArxj06cWHq44gCs1OSKk/jLY="));
        assert_eq!(parse_authorization("Bearer abc"), None);
    }

    #[test]
    fn urlencoded_pairs_are_decoded() {
        assert_eq!(
            parse_urlencoded("track=a%2Cb+c&stall_warnings=true&empty"),
            vec![
                ("track".to_owned(), "a,b c".to_owned()),
                ("stall_warnings".to_owned(), "true".to_owned()),
                ("empty".to_owned(), String::new()),
            ]
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let keys = doc_keys();
        let shown = format!("{keys:?} {}", keys.consumer_secret);
        assert!(!shown.contains("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"));
    }
}
