//! The web view's access rules, as pure functions: which addresses need an access token, how
//! a request proves it has the token (header or cookie), and the CSRF check of every action.

use std::net::SocketAddr;
use std::path::Path;

use tweet_pipeline_common::secret::Secret;

/// The header an API client sends the access token in (`Authorization: Bearer <token>` works
/// too).
pub const TOKEN_HEADER: &str = "x-web-token";
/// The cookie the page keeps the access token in once `/?token=...` was opened.
pub const TOKEN_COOKIE: &str = "tweet_pipeline_web_token";
/// The header every `POST` must carry with the page's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why the server refuses to start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    /// A non-loopback address without an access token.
    #[error("--http-addr {0} is not a loopback address: anyone who can reach it could read the stream and change the schedule; set --auth-token (or TWEET_PIPELINE_WEB_TOKEN) or --auth-token-file, or bind 127.0.0.1")]
    TokenRequired(SocketAddr),
    /// An access token too short to resist guessing.
    #[error("--auth-token is shorter than 16 characters; use a long random value (e.g. openssl rand -hex 16)")]
    TokenTooShort,
}

/// Why the access-token file was refused. No variant ever holds the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file cannot be read (missing, a folder, no permission).
    #[error("cannot read --auth-token-file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// Its group or others may read or write it.
    #[error("--auth-token-file {path} has mode {mode:o}; it must be readable by its owner only: run chmod 600 {path}")]
    NotPrivate {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It holds nothing but whitespace.
    #[error("--auth-token-file {0} is empty; put the token on its first line")]
    Empty(String),
}

/// Whether permission bits `mode` keep a secret file private: no bit for the group or others
/// (0600 or 0400).
pub fn private_mode(mode: u32) -> bool {
    mode & 0o077 == 0
}

/// The access token in the file at `path`: its first line, trimmed. The file must be private
/// ([`private_mode`]); the mode is checked on the open file, so it cannot change in between.
///
/// # Errors
/// [`TokenFileError`].
pub fn read_token_file(path: &Path) -> Result<Secret, TokenFileError> {
    use std::io::Read as _;
    let name = path.display().to_string();
    let read = |source| TokenFileError::Read {
        path: name.clone(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file.metadata().map_err(read)?.permissions().mode() & 0o777;
        if !private_mode(mode) {
            return Err(TokenFileError::NotPrivate {
                path: name.clone(),
                mode,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(read)?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(TokenFileError::Empty(name));
    }
    Ok(Secret::new(token))
}

/// Checks the bind rule: a loopback address may run without a token; any other address needs
/// one; a given token has at least 16 characters.
///
/// # Errors
/// [`BindError`].
pub fn check_bind(addr: SocketAddr, token: Option<&Secret>) -> Result<(), BindError> {
    match token {
        Some(token) if token.expose().chars().count() < 16 => Err(BindError::TokenTooShort),
        Some(_) => Ok(()),
        None if addr.ip().is_loopback() => Ok(()),
        None => Err(BindError::TokenRequired(addr)),
    }
}

/// Compares two byte strings in time that depends only on their lengths, so a wrong token
/// does not leak how many of its first bytes were right.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in a `Cookie` header (RFC 6265 §4.2: `a=1; b=2`).
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// What a request presented: the token header, the `Authorization` header, the `Cookie`
/// header and the `token` query parameter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// [`TOKEN_HEADER`].
    pub header: Option<&'a str>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `Cookie`.
    pub cookie: Option<&'a str>,
    /// `?token=` (opening the page's link once; it then sets the cookie).
    pub query: Option<&'a str>,
}

/// Whether a request may proceed: always without a configured token, else when one of the
/// presented values equals it.
pub fn authorised(expected: Option<&Secret>, presented: &Presented<'_>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let expected = expected.expose().as_bytes();
    let bearer = presented
        .authorization
        .and_then(|value| value.strip_prefix("Bearer "));
    let from_cookie = presented.cookie.and_then(|c| cookie(c, TOKEN_COOKIE));
    [presented.header, bearer, from_cookie, presented.query]
        .into_iter()
        .flatten()
        .any(|value| same_secret(value.trim().as_bytes(), expected))
}

/// Whether an action carries the page's CSRF token in [`CSRF_HEADER`].
pub fn csrf_ok(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|value| same_secret(value.as_bytes(), expected.as_bytes()))
}

/// A fresh random token: 32 hex digits (128 bits) from the OS-seeded generator.
pub fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_file_must_be_private_and_is_read_from_its_first_line() {
        assert!(private_mode(0o600) && private_mode(0o400));
        assert!(!private_mode(0o640) && !private_mode(0o604) && !private_mode(0o660));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("token");
            std::fs::write(&path, "  secret-token-0123456789  \nignored\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = read_token_file(&path).unwrap_err().to_string();
            assert!(
                error.contains("mode 644") && error.contains("chmod 600"),
                "{error}"
            );
            assert!(!error.contains("secret-token"), "{error}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(
                read_token_file(&path).unwrap().expose(),
                "secret-token-0123456789"
            );
            std::fs::write(&path, "\n").unwrap();
            assert!(matches!(
                read_token_file(&path),
                Err(TokenFileError::Empty(_))
            ));
            assert!(matches!(
                read_token_file(&dir.path().join("missing")),
                Err(TokenFileError::Read { .. })
            ));
        }
    }

    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_loopback_runs_without_a_token() {
        let token = Secret::new("0123456789abcdef");
        assert_eq!(check_bind(addr("127.0.0.1:8080"), None), Ok(()));
        assert_eq!(check_bind(addr("[::1]:8080"), None), Ok(()));
        assert_eq!(
            check_bind(addr("0.0.0.0:8080"), None),
            Err(BindError::TokenRequired(addr("0.0.0.0:8080")))
        );
        assert_eq!(check_bind(addr("192.168.1.2:80"), Some(&token)), Ok(()));
        assert_eq!(
            check_bind(addr("0.0.0.0:8080"), Some(&Secret::new("short"))),
            Err(BindError::TokenTooShort)
        );
        let message = BindError::TokenRequired(addr("0.0.0.0:8080")).to_string();
        assert!(message.contains("--auth-token"), "{message}");
    }

    #[test]
    fn a_token_is_accepted_from_header_bearer_cookie_or_query() {
        let token = Secret::new("0123456789abcdef");
        let none = Presented::default();
        assert!(authorised(None, &none));
        assert!(!authorised(Some(&token), &none));
        let cases = [
            Presented {
                header: Some("0123456789abcdef"),
                ..none
            },
            Presented {
                authorization: Some("Bearer 0123456789abcdef"),
                ..none
            },
            Presented {
                cookie: Some("a=b; tweet_pipeline_web_token=0123456789abcdef"),
                ..none
            },
            Presented {
                query: Some("0123456789abcdef"),
                ..none
            },
        ];
        for presented in &cases {
            assert!(authorised(Some(&token), presented), "{presented:?}");
        }
        let wrong = [
            Presented {
                header: Some("0123456789abcdeX"),
                ..none
            },
            Presented {
                authorization: Some("0123456789abcdef"),
                ..none
            },
            Presented {
                cookie: Some("other=0123456789abcdef"),
                ..none
            },
            Presented {
                query: Some("0123456789abcde"),
                ..none
            },
        ];
        for presented in &wrong {
            assert!(!authorised(Some(&token), presented), "{presented:?}");
        }
    }

    #[test]
    fn actions_need_the_exact_csrf_token() {
        let token = random_token();
        assert_eq!(token.len(), 32);
        assert_ne!(token, random_token());
        assert!(csrf_ok(&token, Some(&token)));
        assert!(!csrf_ok(&token, None));
        assert!(!csrf_ok(&token, Some("")));
        assert!(!csrf_ok(&token, Some(&token[1..])));
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd"));
        assert_eq!(cookie("x=1; y=2", "y"), Some("2"));
        assert_eq!(cookie("x=1", "y"), None);
    }
}
