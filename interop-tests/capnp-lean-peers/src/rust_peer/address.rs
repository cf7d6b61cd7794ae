//! Where peers meet: `host:port` (TCP) or `unix:/path` (unix socket).
//!
//! Hides the difference between the two socket families behind [`Listener`] and [`Stream`], so the
//! RPC helpers and the wiretap treat both the same way.

use std::fmt;
use std::io;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A parsed peer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A TCP `host:port` (the port may be 0 when binding).
    Tcp(String),
    /// A unix socket path (written `unix:/path`).
    Unix(PathBuf),
}

impl Address {
    /// Parses `unix:/path` or `host:port`.
    pub fn parse(text: &str) -> io::Result<Address> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(invalid(text, "the unix socket path is empty"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Address::Tcp(text.to_string()))
            }
            _ => Err(invalid(text, "expected host:port or unix:/path")),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(host_port) => f.write_str(host_port),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

fn invalid(text: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {text:?}: {why}"))
}

/// A bound listening socket of either family.
pub enum Listener {
    /// Listening on TCP.
    Tcp(TcpListener),
    /// Listening on a unix socket; the path is removed again when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `address`. A stale unix socket file at the path is replaced.
    pub async fn bind(address: &Address) -> io::Result<Listener> {
        match address {
            Address::Tcp(host_port) => Ok(Listener::Tcp(TcpListener::bind(host_port).await?)),
            Address::Unix(path) => {
                // A socket file left by a killed process would make bind fail with EADDRINUSE.
                let _ = std::fs::remove_file(path);
                Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
            }
        }
    }

    /// The address clients should use (with the real port when bound to port 0).
    pub fn local_address(&self) -> io::Result<Address> {
        match self {
            Listener::Tcp(listener) => Ok(Address::Tcp(listener.local_addr()?.to_string())),
            Listener::Unix(_, path) => Ok(Address::Unix(path.clone())),
        }
    }

    /// Waits for the next incoming connection.
    pub async fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            Listener::Unix(listener, _) => Ok(Stream::Unix(listener.accept().await?.0)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A connected socket of either family.
pub enum Stream {
    /// A TCP connection (Nagle disabled: RPC messages are small and latency-bound).
    Tcp(TcpStream),
    /// A unix socket connection.
    Unix(UnixStream),
}

/// The read half of a [`Stream`].
pub type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a [`Stream`].
pub type WriteHalf = Box<dyn AsyncWrite + Unpin + Send>;

impl Stream {
    /// Connects to `address`.
    pub async fn connect(address: &Address) -> io::Result<Stream> {
        match address {
            Address::Tcp(host_port) => {
                let stream = TcpStream::connect(host_port).await?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
            Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// Splits into independently owned read and write halves.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(stream) => {
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
            Stream::Unix(stream) => {
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_address_forms_and_prints_them_back() {
        let tcp = Address::parse("127.0.0.1:4000").unwrap();
        assert_eq!(tcp, Address::Tcp("127.0.0.1:4000".into()));
        let unix = Address::parse("unix:/tmp/x.sock").unwrap();
        assert_eq!(unix, Address::Unix("/tmp/x.sock".into()));
        assert_eq!(unix.to_string(), "unix:/tmp/x.sock");
        assert_eq!(tcp.to_string(), "127.0.0.1:4000");
    }

    #[test]
    fn rejects_addresses_without_port_or_path() {
        assert!(Address::parse("localhost").is_err());
        assert!(Address::parse("unix:").is_err());
        assert!(Address::parse("host:notaport").is_err());
    }
}
