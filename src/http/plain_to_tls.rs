//! Plain HTTP sent to a TLS port gets an HTTP answer saying so, as Go's servers give it, rather
//! than a TLS alert that Prometheus reports as "malformed HTTP response": with this the scrape
//! error reads "server returned HTTP status 400 Bad Request" and the body says why.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The answer; its body is Go's `net/http` text word for word.
pub const ANSWER: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Most of the request read before answering, and for how long.
const READ_LIMIT: (usize, Duration) = (8192, Duration::from_secs(1));

/// If the client opened with plain text (an HTTP method) rather than a TLS record, answers it
/// with [`ANSWER`] and returns true: close the connection. Only peeks otherwise, so a TLS
/// client's bytes stay for the handshake. A TLS record starts with 0x16, and no HTTP method
/// does; other bytes are left to the TLS library to refuse.
pub async fn answered_plain_http(stream: &mut TcpStream) -> bool {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0].is_ascii_uppercase() => {}
        _ => return false,
    }
    // Take in the request head first: closing a socket with unread data resets it, and the
    // client could lose the answer.
    let (limit, wait) = READ_LIMIT;
    let mut head = vec![0u8; limit];
    let mut got = 0;
    let _ = tokio::time::timeout(wait, async {
        while got < limit {
            match stream.read(&mut head[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
            if head[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    let _ = stream.write_all(ANSWER).await;
    let _ = stream.shutdown().await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn exchange(sent: &'static [u8]) -> (bool, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(sent).await.expect("send");
            let mut back = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(300), s.read_to_end(&mut back)).await;
            back
        });
        let (mut stream, _) = listener.accept().await.expect("accept");
        let answered = answered_plain_http(&mut stream).await;
        if !answered {
            let mut kept = vec![0u8; sent.len()];
            stream
                .read_exact(&mut kept)
                .await
                .expect("bytes still there");
            assert_eq!(kept, sent, "only peeked");
        }
        drop(stream);
        (answered, client.await.expect("client"))
    }

    #[tokio::test]
    async fn http_gets_the_400_and_tls_is_left_alone() {
        let (answered, back) = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answered);
        let text = String::from_utf8_lossy(&back);
        assert!(text.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"));
        // The start of a TLS ClientHello record.
        let (answered, back) = exchange(&[0x16, 0x03, 0x01, 0x00, 0x05]).await;
        assert!(!answered && back.is_empty());
    }
}
