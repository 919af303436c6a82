//! Which backend the soak runs against, and how to reach it.
//!
//! Database URLs are parsed with the `url` crate (the WHATWG rules sqlx
//! itself applies): a password holding `@`, `/`, `?`, `#` or `:` must be
//! percent-encoded, or the URL is malformed and `--backend` says so.

use std::{fmt, path::PathBuf, str::FromStr};
use url::{Host, Url};

/// A backend named on the command line.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// signet-cold's in-memory backend.
    Mem,
    /// A SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A Postgres URL (`postgres://` or `postgresql://`). Needs the
    /// `postgres` cargo feature.
    Postgres(String),
}

/// What stands for a URL that does not parse: nothing of it is shown,
/// since where its password ends is unknown.
pub const MALFORMED: &str = "<malformed URL, not shown>";

/// `url` with its password replaced by `***`, for every line the soak
/// prints: the userinfo password and `password=` query values. A URL that
/// does not parse is replaced whole by [`MALFORMED`].
pub fn redact(url: &str) -> String {
    let Ok(mut url) = Url::parse(url) else { return MALFORMED.to_owned() };
    if url.password().is_some() {
        // Fails only for URLs that cannot have a password, which then
        // have none.
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(key, _)| is_password_key(&key)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_password_key(&key) { "***".into() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// `text` (an error message, say) with every secret of `url` replaced by
/// `***`: its password and `password=` query values, encoded as in a URL
/// and decoded.
pub fn scrub(text: &str, url: &str) -> String {
    let Ok(url) = Url::parse(url) else { return text.to_owned() };
    let mut secrets: Vec<String> = Vec::new();
    if let Some(password) = url.password() {
        secrets.push(password.to_owned());
        if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
            secrets.push(decoded.into_owned());
        }
    }
    for (key, value) in url.query_pairs() {
        if is_password_key(&key) {
            secrets.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
            secrets.push(value.into_owned());
        }
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so that a secret containing another is hidden whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut text = text.to_owned();
    for secret in secrets {
        text = text.replace(&secret, "***");
    }
    text
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password")
}

/// The TCP host and port a `postgres://` URL names (port 5432 when not
/// given): `(shown, connect)`, where `shown` is how the URL writes the host
/// (`[::1]`) and `connect` what a socket takes (`::1`). `None` when the URL
/// names no TCP host (a Unix socket directory, or `host=` in the query), in
/// which case sqlx reports what it finds.
pub fn tcp_target(url: &str) -> Option<(String, String, u16)> {
    let url = Url::parse(url).ok()?;
    if url.query_pairs().any(|(key, _)| key == "host" || key == "hostaddr") {
        return None;
    }
    let port = url.port().unwrap_or(5432);
    let connect = match url.host()? {
        Host::Domain("") => return None,
        Host::Domain(domain) => domain.to_owned(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    };
    Some((url.host_str()?.to_owned(), connect, port))
}

/// A `--backend` value that cannot be used. Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBackend {
    /// None of `mem`, `sqlite:PATH`, `postgres://…`.
    #[error("unknown backend {0:?}: expected mem, sqlite:PATH or postgres://…")]
    Unknown(String),
    /// An in-memory SQLite database: each connection of the soak's pool
    /// would see a database of its own.
    #[error(
        "{0:?} is an in-memory SQLite database, one per connection of the pool: use `mem`, \
         or sqlite:PATH for a file"
    )]
    InMemorySqlite(String),
    /// A `postgres://` URL that does not parse.
    #[error(
        "malformed database URL ({0}); a password holding @ / ? # or : must be \
         percent-encoded (%40 %2F %3F %23 %3A)"
    )]
    MalformedUrl(url::ParseError),
}

impl FromStr for BackendSpec {
    type Err = BadBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mem" {
            return Ok(Self::Mem);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(BadBackend::Unknown(s.to_owned()));
            }
            if path == ":memory:" || path.contains("mode=memory") {
                return Err(BadBackend::InMemorySqlite(s.to_owned()));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        let postgres = s.starts_with("postgres://") || s.starts_with("postgresql://");
        match Url::parse(s) {
            Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => {
                Ok(Self::Postgres(s.to_owned()))
            }
            Err(err) if postgres => Err(BadBackend::MalformedUrl(err)),
            // Nothing that could carry a password: show it as typed.
            _ if !s.contains("://") && !s.contains('@') => Err(BadBackend::Unknown(s.to_owned())),
            _ => Err(BadBackend::Unknown(redact(s))),
        }
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mem => f.write_str("mem"),
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
