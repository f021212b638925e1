//! The agent's connections, with their waits cut where a lease's renewal falls due
//! ([`crate::lease`]): a holder waiting for a slow service starts the renewal of its hold
//! when a third of the lease has passed, and a quick exchange never starts it.
//!
//! [`Watch`] wraps ureq's [`TcpConnector`] in the agent's connector chain (ahead of TLS, so
//! that a TLS handshake's and a proxy's `CONNECT` waits are watched too): the connection is
//! made within the first slice, else made again with the rest of the timeout (nothing was
//! sent on one that was not made), and the transport it returns is [`Watched`]: a wait for
//! input stops at the slice, starts the renewal and goes on waiting for the rest of its
//! timeout (each rest cut again where a renewal falls due: `in_slices`); a write larger
//! than [`WRITE_WITHOUT_WAIT`] starts, before it begins, whatever falls due within its
//! timeout (a write cannot be resumed part-way).
//!
//! ureq calls these interfaces `unversioned` (they may change in a minor release): Cargo.lock
//! pins the version.

use std::fmt;

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, TcpConnector, Transport};
use ureq::{Error, Timeout};

use crate::lease;

/// The largest write that goes out without waiting for the peer (bytes): 4 KiB, the least a
/// TCP socket's send buffer holds (`tcp_wmem`'s minimum), so such a write on a connection of
/// one request and its answer never blocks. A request's head and a usual event body are
/// well under it.
pub const WRITE_WITHOUT_WAIT: usize = 4096;

/// ureq's TCP connector whose connecting and transport are watched (module docs).
#[derive(Default)]
pub struct Watch(TcpConnector);

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Watch(TcpConnector)")
    }
}

impl<In: Transport> Connector<In> for Watch {
    type Out = Watched<<TcpConnector as Connector<In>>::Out>;

    /// Errors: those of [`TcpConnector`] (refused, timed out after the whole timeout).
    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, Error> {
        if chained.is_some() {
            // Already connected further up the chain: nothing to make here.
            return Ok(self.0.connect(details, chained)?.map(Watched));
        }
        let made = in_slices(details.timeout, |part| self.0.connect(&with_timeout(details, part), None));
        Ok(made?.map(Watched))
    }
}

/// The agent's whole connector chain (a proxy's `CONNECT`, TCP, the TLS handshake, which
/// ureq's rustls connector completes before it returns): nothing of the request has been sent
/// while it runs, so a timeout in it is told as [`Timeout::Connect`]. ureq names the deadline
/// that ran out, the global one here (the connection's own is no earlier), which would read
/// as a request that may have reached the service ([`crate::outcome::Fate::Unknown`]): sent
/// again only with a whole attempt to spare, and a Twilio call looked up first. For the same
/// reason a TLS error of the handshake (an `https://` URL to a plain-HTTP port, whose `400`
/// page rustls reads as a corrupt record) and any other I/O error of the chain (a connection
/// reset or closed in the middle of the handshake, by a firewall that filters on the server
/// name, a TLS front with no backend) come out wrapped in [`InConnect`].
#[derive(Debug)]
pub struct Connecting<C>(pub C);

impl<C: Connector<()>> Connector<()> for Connecting<C> {
    type Out = C::Out;

    /// Errors: the chain's, a timeout as [`Timeout::Connect`].
    fn connect(&self, details: &ConnectionDetails, chained: Option<()>) -> Result<Option<Self::Out>, Error> {
        self.0.connect(details, chained).map_err(|e| match e {
            Error::Timeout(_) => Error::Timeout(Timeout::Connect),
            Error::Rustls(tls) => InConnect::wrap(std::io::Error::new(std::io::ErrorKind::InvalidData, tls)),
            Error::Io(io) => InConnect::wrap(io),
            other => other,
        })
    }
}

/// An error met while [`Connecting`]: the TCP connection, the proxy's `CONNECT`, or the TLS
/// handshake (a TLS error, which stays inside as the I/O error's inner error, or the
/// handshake cut short: `Connection reset by peer`, `unexpected end of file`), before a byte
/// of the request was sent. Carried as the I/O error's inner error, of the same kind and with
/// the same message; `crate::http` reads it back to know that nothing was sent.
#[derive(Debug)]
pub struct InConnect(pub std::io::Error);

impl InConnect {
    fn wrap(io: std::io::Error) -> Error {
        Error::Io(std::io::Error::new(io.kind(), InConnect(io)))
    }
}

impl fmt::Display for InConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for InConnect {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A transport whose waits for input stop where a renewal falls due (module docs).
#[derive(Debug)]
pub struct Watched<T>(T);

impl<T: Transport> Transport for Watched<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        if amount > WRITE_WITHOUT_WAIT {
            lease::before_wait(std_duration(timeout.after));
        }
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        in_slices(timeout, |part| self.0.await_input(part))
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

/// `wait` for up to `timeout`, cut where renewals fall due: a part that times out starts what
/// is due ([`lease::now_due`]) and the wait goes on for what is left of `timeout`, cut again
/// at the next renewal's time. Cut again, not whole: a part may time out a little before the
/// time it was cut at (a connection's timeout is whole milliseconds, and shared among the
/// host's addresses), when nothing is due yet. A timeout with nothing left is `wait`'s timeout
/// error without another wait (ureq would wait a second for a timeout of zero).
pub(crate) fn in_slices<T>(timeout: NextTimeout, mut wait: impl FnMut(NextTimeout) -> Result<T, Error>) -> Result<T, Error> {
    let mut left = timeout;
    loop {
        let Some(cut) = cut(left) else { return wait(left) };
        match wait(cut.first) {
            Err(Error::Timeout(_)) => {
                lease::now_due();
                left = cut.rest(left);
                if left.after.is_zero() {
                    return Err(Error::Timeout(left.reason));
                }
            }
            done => return done,
        }
    }
}

/// A wait cut where a renewal falls due: its first part, and when it began.
pub(crate) struct Cut {
    /// The wait up to the renewal's time.
    pub(crate) first: NextTimeout,
    started: std::time::Instant,
}

impl Cut {
    /// What is left of `whole` (the timeout that was cut) after the first part.
    pub(crate) fn rest(&self, whole: NextTimeout) -> NextTimeout {
        NextTimeout { after: rest_of(whole.after, self.started), ..whole }
    }
}

/// `timeout` cut at the next renewal's time, or `None` when none falls due within it (a
/// renewal already due is started now, and the wait is whole).
pub(crate) fn cut(timeout: NextTimeout) -> Option<Cut> {
    let whole = std_duration(timeout.after);
    let slice = lease::slice(whole);
    if slice >= whole {
        return None;
    }
    if slice.is_zero() {
        // ureq waits a second for a timeout of zero: start what is due instead of cutting.
        lease::now_due();
        return None;
    }
    Some(Cut { first: NextTimeout { after: UreqDuration::Exact(slice), ..timeout }, started: std::time::Instant::now() })
}

/// What is left of a wait of `after` begun at `started` (none left: zero, which ureq reports as
/// its timeout).
fn rest_of(after: UreqDuration, started: std::time::Instant) -> UreqDuration {
    match after {
        UreqDuration::Exact(d) => UreqDuration::Exact(d.saturating_sub(started.elapsed())),
        other => other,
    }
}

/// A ureq duration as the standard one (no timeout: the longest).
pub(crate) fn std_duration(d: UreqDuration) -> std::time::Duration {
    match d {
        UreqDuration::Exact(d) => d,
        _ => std::time::Duration::MAX,
    }
}

/// `details` with another timeout, measured from now.
fn with_timeout<'a>(details: &ConnectionDetails<'a>, timeout: NextTimeout) -> ConnectionDetails<'a> {
    ConnectionDetails {
        uri: details.uri,
        addrs: details.addrs.clone(),
        config: details.config,
        request_level: details.request_level,
        resolver: details.resolver,
        now: (details.current_time)(),
        timeout,
        current_time: details.current_time.clone(),
        run_connector: details.run_connector.clone(),
        register_shutdown: details.register_shutdown.clone(),
    }
}
