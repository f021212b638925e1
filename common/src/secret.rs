//! Masking of credentials for logs, errors and `--dry-run` output.
//!
//! Routing keys, auth tokens and API keys must never be printed whole. A masked value keeps its
//! last four characters (when it is at least 16 long) so that an operator can still tell which
//! key was used; anything shorter is fully masked.

use serde_json::Value;

/// Mask one secret: `****************************cdef` (length kept, last 4 shown when the
/// secret has 16 characters or more), `****` for short values.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n >= 16 {
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("{}{tail}", "*".repeat(n - 4))
    } else {
        "****".to_string()
    }
}

/// Replace every occurrence of each secret of 4 bytes or more in `text` by its mask ([`mask`]).
/// A shorter one is left: replacing every "ab" would garble the line and show what the secret
/// is. (A Redis URL's password, whatever its length, is masked by the store's own messages.)
pub fn mask_all(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s) {
            out = out.replace(s, &mask(s));
        }
    }
    out
}

/// [`mask_all`] over every string (and object key) in a JSON value.
pub fn mask_json(v: &Value, secrets: &[&str]) -> Value {
    match v {
        Value::String(s) => Value::String(mask_all(s, secrets)),
        Value::Array(items) => Value::Array(items.iter().map(|i| mask_json(i, secrets)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (mask_all(k, secrets), mask_json(v, secrets))).collect()),
        other => other.clone(),
    }
}

/// The user information of `url` (`user:password` in `scheme://user:password@host/…`), as
/// written; `None` without `://` or `@`.
pub fn url_userinfo(url: &str) -> Option<&str> {
    Some(url.split_once("://")?.1.rsplit_once('@')?.0)
}

/// The password of a URL's userinfo (`redis://user:password@host/0` → `password`), for
/// registering it as a secret; `None` when there is none.
///
/// The userinfo is everything before the last `@`, not only up to the first `/`, `?` or `#`:
/// a generated password is often written with those unencoded (`redis://:ab/cd@host`), and
/// the URL is then refused in a message that quotes it, which must mask all of it. (A URL
/// with an `@` after its host masks a little too much, never too little.)
pub fn url_password(url: &str) -> Option<&str> {
    let userinfo = url_userinfo(url)?;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then_some(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_a_short_tail() {
        assert_eq!(mask("0123456789abcdef0123456789abcdef"), format!("{}cdef", "*".repeat(28)));
        assert_eq!(mask("short"), "****");
        assert_eq!(mask_all("key=0123456789abcdefXYZW!", &["0123456789abcdefXYZW"]), format!("key={}XYZW!", "*".repeat(16)));
        assert_eq!(mask_all("nothing here", &["", "abc"]), "nothing here");
    }

    #[test]
    fn url_passwords_are_found_and_masked() {
        assert_eq!(url_password("redis://:s3cret@127.0.0.1:6379/0"), Some("s3cret"));
        assert_eq!(url_password("rediss://user:p@ss@host/1"), Some("p@ss"));
        assert_eq!(url_password("redis://host:6379/0"), None);
        assert_eq!(url_password("redis://:ab/cd?e#f@host:6379/0"), Some("ab/cd?e#f"));
    }
}
