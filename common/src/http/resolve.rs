//! Host name resolution for the agent: an IP address in a URL is used as it is.
//!
//! ureq's own resolver runs `getaddrinfo` on a thread of its own whenever a request has a
//! timeout (ours always do), so that a hanging DNS server cannot outlast the deadline. For a
//! host that is already an address (`api_url = "http://10.0.0.5:8080"`, a proxy at
//! `http://192.0.2.10:3128`, the loopback fakes) that thread has nothing to wait for, but
//! starting it costs every delivery a thread, its stack and its own malloc arena
//! (bench/HISTORY.md). [`Literal`] answers such hosts directly, and looks a name up as
//! ureq's [`DefaultResolver`] does (`getaddrinfo` on a thread of its own, the request's IP
//! family kept), but waits for that thread in parts cut where a Redis lease's renewal falls
//! due (watch.rs), not in one wait that would outlast the lease.
//!
//! ureq calls this interface `unversioned` (it may change in a minor release): Cargo.lock pins
//! the version. When ureq is updated, check again where it calls the resolver (its `run.rs`,
//! and `connect.rs` for a proxy's own host): a change of when or with which URL it asks would
//! not show as a build error.

use std::net::{SocketAddr, ToSocketAddrs as _};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::http::uri::Authority;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::watch;

/// The agent's resolver: an IPv4 or bracketed IPv6 literal host becomes its one socket
/// address (the URL's port, else the scheme's default), honouring the request's IP family;
/// a name is looked up on a thread (`look_up`); a URL [`DefaultResolver`] refuses (no host,
/// a scheme it knows no port for) and a lookup without a timeout go to it.
#[derive(Debug, Default)]
pub struct Literal {
    names: DefaultResolver,
}

impl Resolver for Literal {
    /// Errors: `HostNotFound` when no address of a family the agent uses is found; for a name,
    /// the lookup's error or a timeout (`look_up`); a bad URL as [`DefaultResolver`] says.
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // A URL ureq cannot take, it refuses.
        let Some(name) = name_and_port(uri) else { return self.names.resolve(uri, config, timeout) };
        let addrs = match name.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) if !timeout.after.is_not_happening() => look_up(name, timeout)?,
            // Without a timeout ureq looks up in place.
            Err(_) => return self.names.resolve(uri, config, timeout),
        };
        let mut found = self.empty();
        config.ip_family().keep_wanted(addrs.into_iter()).take(MAX_ADDRS).for_each(|a| found.push(a));
        if found.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(found) }
    }
}

/// The most addresses a lookup gives the connector (ureq's `ResolvedSocketAddrs` holds 16).
const MAX_ADDRS: usize = 16;

/// `host:port` of `uri` for `getaddrinfo` (the scheme's port when the URL has none); `None`
/// for a URL [`DefaultResolver`] refuses: without a scheme or a host, or of a scheme ureq
/// knows no port for (not `http`, `https` nor a proxy's `socks…`), even with a port.
fn name_and_port(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme()?;
    // ureq tells a scheme it knows by its default port, which an authority without one asks for.
    DefaultResolver::host_and_port(scheme, &Authority::from_static("scheme.check"))?;
    DefaultResolver::host_and_port(scheme, uri.authority()?)
}

/// Look `name` (`host:port`) up on a thread of its own, as ureq's resolver does, so that a
/// hanging DNS server cannot outlast `timeout`; the wait for its answer is cut where a lease's
/// renewal falls due (watch.rs) and goes on waiting for the same lookup.
///
/// Errors: the lookup's (`Io`: not found, no DNS server), or `Timeout(Resolve)` when it did
/// not answer within `timeout`.
fn look_up(name: String, timeout: NextTimeout) -> Result<Vec<SocketAddr>, ureq::Error> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new().spawn(move || tx.send(name.to_socket_addrs().map(Iterator::collect::<Vec<_>>)).ok())?;
    // Told as the lookup's timeout whatever deadline ran out (ureq names the global one): the
    // request was not sent (`http::transport_error`).
    let found = watch::in_slices(timeout, |part| match rx.recv_timeout(watch::std_duration(part.after)) {
        Ok(found) => Ok(found),
        Err(_) => Err(ureq::Error::Timeout(part.reason)),
    })
    .map_err(|e| match e {
        ureq::Error::Timeout(_) => ureq::Error::Timeout(ureq::Timeout::Resolve),
        other => other,
    })?;
    Ok(found?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket address `url` names when its host is an IP address, as the resolver takes
    /// it without a lookup.
    fn addr(url: &str) -> Option<SocketAddr> {
        name_and_port(&url.parse().expect("test URLs parse"))?.parse().ok()
    }

    #[test]
    fn an_address_is_used_as_it_is_with_its_port_or_the_schemes() {
        assert_eq!(addr("http://127.0.0.1:8080/v2/enqueue"), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(addr("https://192.0.2.1/x"), Some("192.0.2.1:443".parse().unwrap()));
        assert_eq!(addr("http://[::1]/"), Some("[::1]:80".parse().unwrap()));
        assert_eq!(addr("http://user:pw@10.1.2.3:3128"), Some("10.1.2.3:3128".parse().unwrap()));
    }

    #[test]
    fn a_name_is_left_to_the_resolver() {
        assert_eq!(addr("https://events.pagerduty.com/v2/enqueue"), None);
        assert_eq!(addr("http://localhost:8080/"), None);
        // Not an address, however much it looks like one: getaddrinfo decides.
        assert_eq!(addr("http://127.1:8080/"), None);
    }

    #[test]
    fn a_name_is_looked_up_with_the_urls_port_and_family() {
        // localhost is in /etc/hosts: no DNS server is asked.
        let got = answer(&Literal::default(), "http://localhost:8080/", ureq::config::IpFamily::Ipv4Only);
        assert_eq!(got, Ok(vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]));
    }

    /// What a resolver answers, comparable: the addresses, or the error as printed.
    fn answer(resolver: &dyn Resolver, url: &str, family: ureq::config::IpFamily) -> Result<Vec<SocketAddr>, String> {
        let config = ureq::Agent::config_builder().ip_family(family).build();
        let timeout = NextTimeout { after: ureq::unversioned::transport::time::Duration::from_secs(5), ..NextTimeout::default() };
        let uri: Uri = url.parse().expect("test URLs parse");
        resolver.resolve(&uri, &config, timeout).map(|found| found.to_vec()).map_err(|e| e.to_string())
    }

    /// Whatever ureq may hand the resolver (a request's URL, checked first; a CONNECT or SOCKS
    /// proxy's own URL, with credentials), names and addresses answer as ureq's resolver does
    /// (`localhost` is in /etc/hosts: no DNS server is asked).
    #[test]
    fn every_url_resolves_as_with_ureqs_resolver() {
        use ureq::config::IpFamily::{Any, Ipv4Only, Ipv6Only};
        let urls = [
            "http://localhost:8080/v2/enqueue",
            "https://localhost/",
            "http://user:pw@localhost:3128",
            "socks5://localhost",
            "http://127.0.0.1:8080/",
            "https://[::1]/",
            "foo://localhost:42/",
            "foo://127.0.0.1:42/",
            "foo://localhost/",
            "/v2/enqueue",
        ];
        for url in urls {
            for family in [Any, Ipv4Only, Ipv6Only] {
                let ours = answer(&Literal::default(), url, family);
                let ureqs = answer(&DefaultResolver::default(), url, family);
                assert_eq!(ours, ureqs, "{url} ({family:?})");
            }
        }
    }

    #[test]
    fn a_literal_of_an_unwanted_family_is_not_found() {
        let config = ureq::Agent::config_builder().ip_family(ureq::config::IpFamily::Ipv4Only).build();
        let uri: Uri = "http://[::1]:80/".parse().unwrap();
        let got = Literal::default().resolve(&uri, &config, NextTimeout::default());
        assert!(matches!(got, Err(ureq::Error::HostNotFound)), "{got:?}");
        let uri: Uri = "http://127.0.0.1:80/".parse().unwrap();
        let got = Literal::default().resolve(&uri, &config, NextTimeout::default()).expect("IPv4 is wanted");
        assert_eq!(&got[..], ["127.0.0.1:80".parse::<SocketAddr>().unwrap()]);
    }
}
