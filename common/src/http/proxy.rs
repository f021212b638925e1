//! Which proxy a request goes through: the environment, read the way curl reads it.
//!
//! Handlers run inside monitoring systems on servers that often reach the internet only through
//! an HTTP proxy, configured the way every Unix tool is: environment variables. ureq's own
//! reading (`Proxy::try_from_env`) takes the first of `ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`
//! for *every* scheme, silently ignores an invalid value, and matches `NO_PROXY` entries only
//! exactly as written (`example.com` does not cover `api.example.com`, `" 10.0.0.1"` with a
//! space matches nothing, no CIDR). Operators expect curl's rules, so this module applies them
//! and hands ureq the chosen proxy per request:
//!
//! - `https://` URLs use `https_proxy`, else `HTTPS_PROXY`; `http://` URLs use `http_proxy`
//!   (curl reads only the lower-case one, because CGI puts a request's `Proxy:` header into
//!   `HTTP_PROXY`); either falls back to `all_proxy`, else `ALL_PROXY`. An empty value counts
//!   as unset.
//! - A value without a scheme means `http://`; `http://` and `https://` proxies are supported
//!   (HTTP CONNECT, TLS end to end through the tunnel); `user:password@` is sent as
//!   `Proxy-Authorization: Basic`. Anything else is a configuration error naming the variable.
//! - `no_proxy`, else `NO_PROXY`: a comma- or space-separated list; `*` bypasses the proxy for
//!   every host; `example.com`, `.example.com` and `*.example.com` all match `example.com` and
//!   every name under it; an IP address matches itself, `10.0.0.0/8` or `fd00::/8` a network;
//!   an entry with `:port` matches only that port. Matching is case-insensitive and ignores a
//!   trailing dot.
//!
//! Proxy credentials are never shown: a route prints as `proxy 10.0.0.1:3128 (HTTPS_PROXY)`.

use std::net::IpAddr;

/// The proxy variables of an environment, read once (see the module doc for the rules).
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    https: Option<(&'static str, String)>,
    http: Option<(&'static str, String)>,
    no_proxy: Vec<NoProxyEntry>,
}

/// How one request reaches its server.
#[derive(Debug, Clone)]
pub enum Route {
    /// Straight to the server.
    Direct,
    /// Through an HTTP CONNECT proxy.
    Proxy {
        /// The proxy, for ureq.
        proxy: ureq::Proxy,
        /// `proxy 10.0.0.1:3128 (HTTPS_PROXY)`: for messages, without credentials.
        shown: String,
        /// The variable it came from, e.g. `HTTPS_PROXY`.
        var: &'static str,
    },
}

impl Route {
    /// ` via proxy 10.0.0.1:3128 (HTTPS_PROXY)`, or nothing when direct: appended to messages.
    pub fn suffix(&self) -> String {
        match self {
            Route::Direct => String::new(),
            Route::Proxy { shown, .. } => format!(" via {shown}"),
        }
    }
}

impl ProxyEnv {
    /// Read this process's environment.
    pub fn from_env() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read variables through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let first =
            |names: &[&'static str]| names.iter().find_map(|&n| get(n).map(|v| (n, v.trim().to_string())).filter(|(_, v)| !v.is_empty()));
        let no_proxy = first(&["no_proxy", "NO_PROXY"]).map(|(_, v)| parse_no_proxy(&v)).unwrap_or_default();
        ProxyEnv {
            https: first(&["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
            http: first(&["http_proxy", "all_proxy", "ALL_PROXY"]),
            no_proxy,
        }
    }

    /// The route for `url`. Errors (one line, naming the variable, no credentials): the proxy
    /// variable that applies holds something that is not an `http://` or `https://` proxy URL.
    pub fn route(&self, url: &str) -> Result<Route, String> {
        let Ok(uri) = url.parse::<ureq::http::Uri>() else { return Ok(Route::Direct) };
        let https = uri.scheme_str().is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let Some((var, value)) = (if https { &self.https } else { &self.http }) else { return Ok(Route::Direct) };
        let host = uri.host().unwrap_or("");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if self.no_proxy.iter().any(|e| e.matches(host, port)) {
            return Ok(Route::Direct);
        }
        let with_scheme = if value.contains("://") { value.clone() } else { format!("http://{value}") };
        let scheme = with_scheme.split("://").next().unwrap_or("").to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("{var} names a {scheme}:// proxy; only http:// and https:// proxies are supported"));
        }
        let invalid = || format!("{var} is not a valid proxy URL (expected http://[user:password@]host:port)");
        // ureq reads a port it cannot parse (`:99999`, `:31x8`) as the scheme's default, which
        // would send every request to another port than the one named: refused instead.
        // The URL is parsed as `http` does (the `Uri` ureq itself uses), whose `port()` is `None`
        // for one it cannot parse: a port is named when the authority runs on past its host.
        let uri = with_scheme.parse::<ureq::http::Uri>().map_err(|_| invalid())?;
        if let Some(authority) = uri.authority() {
            let host_port = authority.as_str().rsplit_once('@').map_or(authority.as_str(), |(_, hp)| hp);
            if host_port.len() > authority.host().len() && authority.port_u16().is_none() {
                return Err(invalid());
            }
        }
        let proxy = ureq::Proxy::new(&with_scheme).map_err(|_| invalid())?;
        let shown = format!("proxy {}:{} ({var})", proxy.host(), proxy.port());
        Ok(Route::Proxy { proxy, shown, var })
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// `*`.
    All,
    /// A domain (lower case, no leading or trailing dot) and an optional port.
    Domain(String, Option<u16>),
    /// An address or network (`prefix` bits) and an optional port.
    Net(IpAddr, u8, Option<u16>),
}

fn parse_no_proxy(list: &str) -> Vec<NoProxyEntry> {
    list.split(|c: char| c == ',' || c.is_whitespace()).filter_map(parse_entry).collect()
}

fn parse_entry(raw: &str) -> Option<NoProxyEntry> {
    let e = raw.trim();
    if e.is_empty() {
        return None;
    }
    if e == "*" {
        return Some(NoProxyEntry::All);
    }
    // [v6]:port, [v6], host:port (one colon), else the whole entry is the host (bare v6 too).
    let (host, port) = if let Some(rest) = e.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':').and_then(|p| p.parse().ok()))
    } else if e.matches(':').count() == 1 {
        let (h, p) = e.split_once(':')?;
        (h, Some(p.parse().ok()?))
    } else {
        (e, None)
    };
    let (addr, bits) = match host.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (host, None),
    };
    if let Ok(ip) = addr.parse::<IpAddr>() {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|&b| b <= max)?,
            None => max,
        };
        return Some(NoProxyEntry::Net(ip, bits, port));
    }
    let domain = host.trim_start_matches('*').trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
    (!domain.is_empty() && bits.is_none()).then_some(NoProxyEntry::Domain(domain, port))
}

impl NoProxyEntry {
    fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
        match self {
            NoProxyEntry::All => true,
            NoProxyEntry::Domain(d, p) => {
                p.is_none_or(|p| p == port)
                    && (host == *d || (host.len() > d.len() && host.ends_with(d.as_str()) && host[..host.len() - d.len()].ends_with('.')))
            }
            NoProxyEntry::Net(net, bits, p) => {
                p.is_none_or(|p| p == port) && host.parse::<IpAddr>().is_ok_and(|ip| in_network(ip, *net, *bits))
            }
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProxyEnv::from_lookup(|k| m.get(k).cloned())
    }

    fn via(e: &ProxyEnv, url: &str) -> Option<String> {
        match e.route(url).expect("valid proxy") {
            Route::Direct => None,
            Route::Proxy { shown, .. } => Some(shown),
        }
    }

    #[test]
    fn scheme_specific_variables_win_over_all_proxy_lower_case_first() {
        let e = env(&[("ALL_PROXY", "all:1"), ("HTTPS_PROXY", "upper:2"), ("https_proxy", "lower:3")]);
        assert_eq!(via(&e, "https://events.pagerduty.com/v2/enqueue").as_deref(), Some("proxy lower:3 (https_proxy)"));
        let e = env(&[("ALL_PROXY", "all:1"), ("HTTPS_PROXY", "upper:2")]);
        assert_eq!(via(&e, "https://x/").as_deref(), Some("proxy upper:2 (HTTPS_PROXY)"));
        let e = env(&[("ALL_PROXY", "all:1"), ("https_proxy", "")]);
        assert_eq!(via(&e, "https://x/").as_deref(), Some("proxy all:1 (ALL_PROXY)"), "empty counts as unset");
    }

    #[test]
    fn http_proxy_is_for_http_urls_only_and_only_lower_case() {
        let e = env(&[("HTTP_PROXY", "upper:2"), ("http_proxy", "lower:3")]);
        assert_eq!(via(&e, "https://x/"), None, "HTTP_PROXY/http_proxy never carry https");
        assert_eq!(via(&e, "http://x/").as_deref(), Some("proxy lower:3 (http_proxy)"));
        let e = env(&[("HTTP_PROXY", "upper:2")]);
        assert_eq!(via(&e, "http://x/"), None, "upper-case HTTP_PROXY is CGI's, as curl says");
    }

    #[test]
    fn no_proxy_matches_domains_addresses_networks_and_ports() {
        let e = env(&[
            ("HTTPS_PROXY", "http://p:3128"),
            ("NO_PROXY", "internal.example, .corp.example,*.lan 127.0.0.1, 10.0.0.0/8,[::1], fd00::/8 ,hooks.example:8443"),
        ]);
        for direct in [
            "https://internal.example/",
            "https://API.Internal.Example./x",
            "https://corp.example/",
            "https://a.b.corp.example/",
            "https://printer.lan/",
            "https://127.0.0.1:9999/",
            "https://10.20.30.40/",
            "https://[::1]:8443/",
            "https://[fd00::5]/",
            "https://hooks.example:8443/",
        ] {
            assert_eq!(via(&e, direct), None, "{direct} should bypass the proxy");
        }
        for proxied in [
            "https://events.pagerduty.com/",
            "https://notinternal.example/",
            "https://127.0.0.2/",
            "https://11.0.0.1/",
            "https://[::2]/",
            "https://hooks.example/",
        ] {
            assert!(via(&e, proxied).is_some(), "{proxied} should use the proxy");
        }
        assert_eq!(via(&env(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "*")]), "https://x/"), None);
        assert_eq!(
            via(&env(&[("HTTPS_PROXY", "p:1"), ("no_proxy", "x"), ("NO_PROXY", "*")]), "https://y/").as_deref(),
            Some("proxy p:1 (HTTPS_PROXY)")
        );
    }

    #[test]
    fn bad_proxy_values_are_named_without_credentials() {
        let e = env(&[("HTTPS_PROXY", "socks5://user:s3cret@p:1080")]);
        let err = e.route("https://x/").unwrap_err();
        assert!(err.contains("HTTPS_PROXY") && err.contains("socks5"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let e = env(&[("https_proxy", "http://user:s3cret@[bad")]);
        let err = e.route("https://x/").unwrap_err();
        assert!(err.contains("https_proxy") && !err.contains("s3cret"), "{err}");
        let e = env(&[("HTTPS_PROXY", "http://user:s3cret@p:3128")]);
        let shown = via(&e, "https://x/").unwrap();
        assert_eq!(shown, "proxy p:3128 (HTTPS_PROXY)");
        for bad in ["http://user:s3cret@p:99999", "p:31x8", "http://[::1]:65536/"] {
            let err = env(&[("HTTPS_PROXY", bad)]).route("https://x/").unwrap_err();
            assert!(err.contains("HTTPS_PROXY is not a valid proxy URL") && !err.contains("s3cret"), "{bad}: {err}");
        }
        assert_eq!(via(&env(&[("HTTPS_PROXY", "http://[::1]:3128")]), "https://x/").as_deref(), Some("proxy [::1]:3128 (HTTPS_PROXY)"));
        // An invalid proxy only matters to the scheme that would use it.
        assert_eq!(via(&env(&[("http_proxy", "ftp://p")]), "https://x/"), None);
    }
}
