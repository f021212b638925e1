//! Host name resolution for the agent: an IP address in a URL is used as it is.
//!
//! ureq's own resolver runs `getaddrinfo` on a thread of its own whenever a request has a
//! timeout (ours always do), so that a hanging DNS server cannot outlast the deadline. For a
//! host that is already an address (`api_url = "http://10.0.0.5:8080"`, a proxy at
//! `http://192.0.2.10:3128`, the loopback fakes) that thread has nothing to wait for, but
//! starting it costs every delivery a thread, its stack and its own malloc arena
//! (bench/HISTORY.md). [`Literal`] answers such hosts directly and hands every name
//! to ureq's [`DefaultResolver`], timeout thread included.
//!
//! ureq calls this interface `unversioned` (it may change in a minor release): Cargo.lock pins
//! the version. When ureq is updated, check again where it calls the resolver (its `run.rs`,
//! and `connect.rs` for a proxy's own host): a change of when or with which URL it asks would
//! not show as a build error.

use std::net::SocketAddr;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::watch;

/// The agent's resolver: an IPv4 or bracketed IPv6 literal host becomes its one socket
/// address (the URL's port, else the scheme's default), honouring the request's IP family;
/// anything else goes to [`DefaultResolver`].
#[derive(Debug, Default)]
pub struct Literal {
    names: DefaultResolver,
}

impl Resolver for Literal {
    /// Errors: `HostNotFound` when the literal is of a family the agent does not use; for
    /// names, whatever [`DefaultResolver`] returns (timeout, not found, bad URL).
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(addr) = literal(uri) else {
            // A lookup still going when a lease's renewal falls due is cut there and asked again
            // (watch.rs): its thread goes on alone, and the second one is usually answered from
            // the resolver's cache.
            return watch::in_slices(timeout, |part| self.names.resolve(uri, config, part));
        };
        let mut found = self.empty();
        config.ip_family().keep_wanted(std::iter::once(addr)).for_each(|a| found.push(a));
        if found.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(found) }
    }
}

/// The socket address `uri` names when its host is an IP address (`127.0.0.1`, `[::1]`), with
/// its port or the scheme's default; `None` for a name, or a URL without scheme or host.
fn literal(uri: &Uri) -> Option<SocketAddr> {
    let (scheme, authority) = (uri.scheme()?, uri.authority()?);
    DefaultResolver::host_and_port(scheme, authority)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(url: &str) -> Option<SocketAddr> {
        literal(&url.parse().expect("test URLs parse"))
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
