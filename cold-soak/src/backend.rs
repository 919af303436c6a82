//! Which backend the soak runs against, and how to reach it.

use std::{fmt, path::PathBuf, str::FromStr};

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

/// `url` with any password replaced by `***`, for every line the soak
/// prints: the userinfo password (up to the *last* `@`, so an unencoded `/`,
/// `?` or `@` in it stays hidden) and `password=` query values. When in
/// doubt it hides too much rather than too little.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (rest.as_str(), None),
    };
    let mut out = format!("{scheme}://{base}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The secrets [`redact`] hides, to scrub them from error messages too.
pub(crate) fn secrets(url: &str) -> Vec<&str> {
    let Some((_, rest)) = url.split_once("://") else { return Vec::new() };
    let mut found = Vec::new();
    if let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        found.push(password);
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                found.push(value);
            }
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

/// A `--backend` value that is none of `mem`, `sqlite:PATH`, `postgres://…`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?}: expected mem, sqlite:PATH or postgres://…")]
pub struct UnknownBackend(String);

impl FromStr for BackendSpec {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "mem" {
            Ok(Self::Mem)
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(UnknownBackend(s.to_owned()));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_owned()))
        } else {
            Err(UnknownBackend(redact(s)))
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
