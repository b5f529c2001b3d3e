//! Keeping secrets out of every output: URLs are redacted with a real URL parser, secret values
//! live in [`Secret`] (whose `Debug`/`Display` print `***`), and [`scrub`] removes every secret
//! the process was given from text that leaves it (errors, logs), whatever library wrote it.

use std::sync::{OnceLock, RwLock};
use url::Url;

const HIDDEN: &str = "***";
/// Query parameters that carry credentials (`redis+unix:///sock?pass=…`, `?api-key=…`).
const SECRET_PARAMS: [&str; 9] = ["pass", "password", "pwd", "auth", "secret", "token", "api_key", "api-key", "apikey"];

/// `scheme://user:password@host/…?pass=…` → `scheme://user:***@host/…?pass=***`. A URL without a
/// scheme (`:pw@host:6379`, as Redis accepts) is read as `redis://`; text that is no URL at all is
/// hidden whole, since it cannot be told apart from a secret.
///
/// A mistyped URL can parse as something else than meant (`redis//:pw@host` reads as a host
/// `redis` with the rest as its path), so whatever looks like a secret in the text itself
/// ([`textual_secrets`]) is hidden as well.
pub fn redact_url(raw: &str) -> String {
    let raw = raw.trim();
    let shown = if let Some(url) = Url::parse(raw).ok().filter(|u| !u.cannot_be_a_base()) {
        redact(url)
    } else {
        match Url::parse(&format!("redis://{raw}")) {
            Ok(url) => redact(url).trim_start_matches("redis://").to_string(),
            Err(_) => return "<URL hidden: it could not be parsed>".into(),
        }
    };
    hide_all(shown, &textual_secrets(raw))
}

/// Every secret a URL-like text carries by its shape, parsed or not: the password of each
/// `user:password@` (with or without a scheme, even where the `:` after the scheme is missing),
/// and the values of credential query parameters (`?password=`, `&api-key=` …), each also
/// percent-decoded.
pub fn textual_secrets(raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in raw.match_indices('@') {
        let start = raw[..at].rfind(|c: char| c == '/' || c.is_whitespace()).map_or(0, |i| i + 1);
        if let Some((_, password)) = raw[start..at].split_once(':') {
            found.push(password.to_string());
        }
    }
    for pair in raw.split(['?', '&', ';']).skip(1) {
        if let Some((key, value)) = pair.split_once('=') {
            if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) {
                found.push(value.split(['#', ' ']).next().unwrap_or_default().to_string());
            }
        }
    }
    let decoded: Vec<String> = found.iter().filter_map(|s| percent_decoded(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty() && s != HIDDEN);
    found
}

/// `text` with each of `secrets` replaced by `***`, longest first (so one that contains another
/// goes whole).
fn hide_all(mut text: String, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in secrets {
        text = text.replace(s.as_str(), HIDDEN);
    }
    text
}

fn redact(mut url: Url) -> String {
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
    }
    let secret = |k: &str| SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s));
    if url.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { HIDDEN.to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string().replace("%2A%2A%2A", HIDDEN)
}

/// A secret value: readable only through [`Secret::expose`], printed as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(HIDDEN)
    }
}

static KNOWN: OnceLock<RwLock<Vec<String>>> = OnceLock::new();

/// Secrets shorter than this are not scrubbed from text (they would mangle ordinary words).
const MIN_SCRUB_LEN: usize = 4;

/// Adds a secret value (a password, an API key) to those [`scrub`] removes.
pub fn remember(value: &str) {
    remember_all([value.to_string()]);
}

/// Adds the password and secret query parameters of a URL to those [`scrub`] removes: those a
/// URL parser finds and those its text shows (see [`textual_secrets`]), so a URL too mistyped to
/// parse still has its password scrubbed from every error that quotes it.
pub fn remember_url(value: &str) {
    remember_all(textual_secrets(value));
    let parsed = Url::parse(value)
        .ok()
        .filter(|u| !u.cannot_be_a_base())
        .or_else(|| Url::parse(&format!("redis://{}", value.trim())).ok());
    let Some(url) = parsed else { return };
    let mut found: Vec<String> = url.password().map(str::to_string).into_iter().collect();
    found.extend(url.password().and_then(percent_decoded));
    found.extend(
        url.query_pairs()
            .filter(|(k, _)| SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)))
            .map(|(_, v)| v.into_owned()),
    );
    remember_all(found);
}

fn remember_all(values: impl IntoIterator<Item = String>) {
    let known = KNOWN.get_or_init(Default::default);
    let mut known = known.write().unwrap_or_else(|e| e.into_inner());
    for s in values.into_iter().filter(|s| s.len() >= MIN_SCRUB_LEN) {
        if !known.contains(&s) {
            known.push(s);
        }
    }
}

/// The percent-decoded form of a URL's password, when it differs.
fn percent_decoded(p: &str) -> Option<String> {
    let decoded: String = url::form_urlencoded::parse(format!("x={p}").as_bytes()).next()?.1.into_owned();
    (decoded != p).then_some(decoded)
}

/// `text` with every remembered secret replaced by `***`.
pub fn scrub(text: &str) -> String {
    let Some(known) = KNOWN.get() else { return text.to_string() };
    let known = known.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in known.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), HIDDEN);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(redact_url("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact_url("rediss://backup:s3cret@cache:6380/0"), "rediss://backup:***@cache:6380/0");
        assert_eq!(redact_url("bolt://neo4j:pw@db:7687"), "bolt://neo4j:***@db:7687");
        assert_eq!(redact_url("neo4j+s://neo4j:pw@x.databases.neo4j.io"), "neo4j+s://neo4j:***@x.databases.neo4j.io");
        assert_eq!(redact_url("https://u:key@q.cloud.qdrant.io:6333"), "https://u:***@q.cloud.qdrant.io:6333/");
        assert_eq!(redact_url("redis://cache:6379"), "redis://cache:6379");
    }

    #[test]
    fn urls_without_a_scheme_and_secret_parameters_are_hidden() {
        assert_eq!(redact_url(":s3cret@cache:6379"), ":***@cache:6379");
        assert_eq!(redact_url("user:s3cret@cache:6379/1"), "user:***@cache:6379/1");
        let unix = redact_url("redis+unix:///run/redis.sock?db=2&pass=s3cret");
        assert!(!unix.contains("s3cret") && unix.contains("db=2"), "{unix}");
        assert!(!redact_url("https://q:6333/?api-key=abcd").contains("abcd"));
        assert!(!redact_url("::s3cret@@ not a url").contains("s3cret"));
    }

    /// The three URLs of the hostile rerun (issue 28): a missing `:` after the scheme.
    #[test]
    fn mistyped_urls_hide_their_passwords() {
        for raw in [
            "redis//:PW-4711@127.0.0.1:notaport",
            "bolt//root:PW-4711@127.0.0.1:notaport",
            "http//user:PW-4711@qdrant:6333",
        ] {
            let shown = redact_url(raw);
            assert!(!shown.contains("PW-4711"), "{raw} shown as {shown}");
            assert!(textual_secrets(raw).contains(&"PW-4711".to_string()), "{raw}");
        }
    }

    #[test]
    fn secrets_print_as_stars_and_are_scrubbed_from_text() {
        let s = Secret::new("hunter2-long");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        remember_url("redis://:p%40ss-word@cache:6379");
        assert_eq!(scrub("failed with hunter2-long and p@ss-word"), "failed with *** and ***");
    }
}
