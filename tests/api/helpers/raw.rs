//! Requests written byte by byte, for what a well-behaved client will not send: odd or missing
//! Host headers, header values that are not UTF-8; and one connection kept alive across
//! requests, written to as a simple client writes.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::Reply;

/// Sends `request_line` (like `GET /v1/me HTTP/1.1`) with `headers` (whole raw lines, no CRLF)
/// and `Connection: close`, and reads the reply to the end.
pub async fn raw_request(addr: SocketAddr, request_line: &str, headers: &[&[u8]]) -> Reply {
    let mut request = format!("{request_line}\r\n").into_bytes();
    for line in headers {
        request.extend_from_slice(line);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    let bytes = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(&request).expect("write request");
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).expect("read reply");
        bytes
    })
    .await
    .unwrap();
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Reply {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                headers.append(name, value);
            }
        }
    }
    let body = serde_json::from_slice(&bytes[split + 4..]).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// One HTTP/1.1 connection kept alive across requests, as a pooling client keeps it, written
/// to like Python's `http.client`: the whole request (head and body) first, then the answer.
pub struct KeepAlive {
    stream: TcpStream,
    pending: Vec<u8>,
}

/// An answer read off a [`KeepAlive`] connection.
pub struct Answer {
    pub reply: Reply,
    /// The answer said `Connection: close`.
    pub closes: bool,
}

impl KeepAlive {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// Sends `head` (the request line and header lines, without the blank line; a
    /// `Content-Length` for `body` is added) and `body`, then reads the answer. A connection
    /// error (a broken pipe, a reset, the connection closed before an answer) is an `Err`.
    pub fn send(&mut self, head: &str, body: &[u8]) -> std::io::Result<Answer> {
        let mut request = format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request)?;
        self.read_answer()
    }

    /// Writes raw bytes (part of a request) without reading.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one answer: the head, then a body of its `Content-Length`.
    pub fn read_answer(&mut self) -> std::io::Result<Answer> {
        let split = loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.pending[..split]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map(|value| value.trim().parse().expect("a Content-Length"))
            .unwrap_or(0);
        let closes = head
            .lines()
            .any(|line| line.starts_with("connection:") && line.contains("close"));
        while self.pending.len() < split + length {
            self.fill()?;
        }
        let bytes: Vec<u8> = self.pending.drain(..split + length).collect();
        Ok(Answer {
            reply: parse(&bytes),
            closes,
        })
    }

    /// Whether the server has closed the connection: the next read finds its end (or a reset)
    /// before the read timeout.
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk)? {
            0 => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection was closed before an answer",
            )),
            n => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}
