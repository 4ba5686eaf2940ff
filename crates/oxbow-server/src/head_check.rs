//! The first request head of a connection is read and checked here before hyper sees it, so
//! that a request the HTTP layer must refuse (a malformed request line or header, a URI or
//! head too large, conflicting body lengths) gets an AWS-shaped error with a request id
//! rather than hyper's bare, empty 400/414/431. Later requests on a keep-alive connection
//! come from clients that already spoke valid HTTP and are left to hyper's own checks.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use oxbow_core::{ids, ApiError, ErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The largest request head accepted (request line and headers). SigV4 heads, presigned
/// URLs with session tokens included, stay far below it.
pub const MAX_HEAD: usize = 64 << 10;
/// A request line longer than this makes an oversized head a URI problem (414).
const MAX_REQUEST_LINE: usize = 16 << 10;
const MAX_HEADERS: usize = 128;

/// Reads the first head from `io`. `Some`: the connection, with what was read put back in
/// front, for hyper to serve. `None`: the client left, or was answered with an error and the
/// connection closed.
pub async fn check_first_head<S>(mut io: S, timeout: Duration) -> Option<Rewind<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096);
    let verdict = tokio::time::timeout(timeout, async {
        loop {
            if let Some(end) = find_head_end(&buf) {
                if end > MAX_HEAD || line_len(&buf) > MAX_REQUEST_LINE {
                    return Some(Err(too_large(&buf)));
                }
                return Some(judge(&buf[..end]));
            }
            if buf.len() > MAX_HEAD {
                return Some(Err(too_large(&buf)));
            }
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await;
    let refusal = match verdict {
        Ok(None) => return None,
        Ok(Some(Ok(()))) => return Some(Rewind { prefix: buf, io }),
        Ok(Some(Err(e))) => e,
        Err(_) if buf.is_empty() => return None,
        Err(_) => ApiError::new(
            ErrorKind::RequestTimeout,
            "The request head did not arrive in time.",
        ),
    };
    let request_id = ids::request_id();
    tracing::debug!(%request_id, error = %refusal, "refused a malformed request head");
    let _ = io.write_all(&error_reply(&refusal, &request_id)).await;
    let _ = io.shutdown().await;
    None
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn line_len(buf: &[u8]) -> usize {
    buf.iter().position(|b| *b == b'\n').unwrap_or(buf.len())
}

fn too_large(buf: &[u8]) -> ApiError {
    if line_len(buf) > MAX_REQUEST_LINE {
        ApiError::new(
            ErrorKind::UriTooLong,
            format!("The request URI is longer than {MAX_REQUEST_LINE} bytes."),
        )
    } else {
        ApiError::new(
            ErrorKind::HeadersTooLarge,
            format!("The request headers are larger than {MAX_HEAD} bytes."),
        )
    }
}

/// Whether hyper could serve this head: it parses, and its body length is unambiguous.
fn judge(head: &[u8]) -> Result<(), ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(bad_request("The request head is incomplete."));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(
                ErrorKind::HeadersTooLarge,
                format!("The request has more than {MAX_HEADERS} headers."),
            ));
        }
        Err(e) => return Err(bad_request(&format!("Malformed HTTP request: {e}."))),
    }
    let mut length: Option<&[u8]> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let value = trim(h.value);
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(bad_request("Content-Length is not a number."));
            }
            if length.is_some_and(|l| l != value) {
                return Err(bad_request("Conflicting Content-Length headers."));
            }
            length = Some(value);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && length.is_some() {
        return Err(bad_request(
            "A request may not carry both Transfer-Encoding and Content-Length.",
        ));
    }
    Ok(())
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

fn bad_request(msg: &str) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, msg)
}

/// The whole HTTP response for a refused head, in the shape of every other Oxbow error.
fn error_reply(e: &ApiError, request_id: &str) -> Vec<u8> {
    let body = e.body(request_id);
    let status = e.kind.status();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-amzn-RequestId: {request_id}\r\nx-amzn-ErrorType: {}\r\naccess-control-allow-origin: *\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        e.kind.name()
    )
    .into_bytes()
}

/// A connection with bytes already read put back in front of it.
pub struct Rewind<S> {
    prefix: BytesMut,
    io: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_hyper_must_refuse_are_judged() {
        let ok = b"POST /listStreams HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n";
        assert!(judge(ok).is_ok());
        let kind = |h: &[u8]| judge(h).unwrap_err().kind;
        assert_eq!(kind(b"GARBAGE\r\n\r\n"), ErrorKind::BadRequest);
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n"),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n"),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n"),
            ErrorKind::BadRequest
        );
        let same = b"POST / HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n";
        assert!(judge(same).is_ok());
        let long_uri = format!("GET /{} HTTP/1.1\r\n", "a".repeat(100_000));
        assert_eq!(too_large(long_uri.as_bytes()).kind, ErrorKind::UriTooLong);
        let big_header = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(100_000));
        assert_eq!(
            too_large(big_header.as_bytes()).kind,
            ErrorKind::HeadersTooLarge
        );
    }

    #[tokio::test]
    async fn a_good_head_is_put_back_in_front() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\nrest")
            .await
            .unwrap();
        let mut conn = check_first_head(server, Duration::from_secs(1))
            .await
            .unwrap();
        let sent = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\nrest";
        let mut got = vec![0u8; sent.len()];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, sent);
    }

    #[tokio::test]
    async fn a_bad_head_gets_an_aws_shaped_error() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
        assert!(check_first_head(server, Duration::from_secs(1))
            .await
            .is_none());
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert!(reply.contains("x-amzn-RequestId: "), "{reply}");
        assert!(
            reply.contains(r#""__type":"BadRequestException""#),
            "{reply}"
        );
    }
}
