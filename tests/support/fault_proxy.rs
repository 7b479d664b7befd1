//! A fault-injecting front for the sandbox, over real TCP on loopback: it passes requests on
//! and then breaks the answer the way real networks do (lost after the server acted, stalled
//! or cut mid-body, another 2xx), and counts every request the client **sent**, whether or
//! not the sandbox accepted it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one request.
#[derive(Clone, Debug)]
#[allow(dead_code)] // each test binary uses some of them
pub enum Fault {
    /// Passes the request on and the answer back.
    Pass,
    /// Passes it on (the server acts), then closes the connection without a byte.
    ApplyThenDrop,
    /// Passes it on, then sends the answer's headers and half its body, and stalls.
    ApplyThenStallBody,
    /// Passes it on, then sends the answer's headers and half its body, and closes.
    ApplyThenCutBody,
    /// Passes it on, then never answers.
    ApplyThenHang,
    /// Passes it on, then answers with this status and the server's body (a 200 or a 204
    /// for a 201, say; a 204 carries no body).
    ApplyThenStatus(u16),
    /// Passes it on, then answers this instead.
    ApplyThenAnswer(Answer),
    /// Does not pass it on: answers this.
    Answer(Answer),
    /// Does not pass it on: sends this status's headers with a 100-byte body length, ten
    /// bytes of it, and stalls (a proxy's stalled error page).
    StallErrorBody(u16),
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    #[allow(dead_code)]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Rule = Box<dyn Fn(&str, u64) -> Fault + Send + Sync>;

#[derive(Default)]
struct Script {
    next: HashMap<String, VecDeque<Fault>>,
    rule: Option<Rule>,
    sent: HashMap<String, u64>,
    /// Paths whose create the upstream applied (answered 201).
    applied: std::collections::HashSet<String>,
    /// Creates sent to a path whose create was already applied.
    sent_after_applied: u64,
}

/// The proxy: `uri()` is what the client is pointed at.
pub struct FaultProxy {
    uri: String,
    script: Arc<Mutex<Script>>,
}

#[allow(dead_code)]
impl FaultProxy {
    /// Starts a proxy in front of `upstream` (the sandbox's URI).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script::default()));
        let upstream = upstream.to_owned();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let shared = Arc::clone(&script);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (script, upstream, http) =
                    (Arc::clone(&shared), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &script, &upstream, &http).await;
                });
            }
        });
        FaultProxy { uri, script }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The next requests with `method` (`"POST"`, `"GET"`) meet these faults, in order.
    pub fn next(&self, method: &str, faults: impl IntoIterator<Item = Fault>) {
        let mut script = self.script.lock().unwrap();
        script
            .next
            .entry(method.to_owned())
            .or_default()
            .extend(faults);
    }

    /// Requests no queued fault takes meet `rule(method, n)`, `n` counting that method's
    /// requests from 1.
    pub fn rule(&self, rule: impl Fn(&str, u64) -> Fault + Send + Sync + 'static) {
        self.script.lock().unwrap().rule = Some(Box::new(rule));
    }

    /// Creates the client sent for a wallet whose create the server had already applied.
    pub fn sent_after_applied(&self) -> u64 {
        self.script.lock().unwrap().sent_after_applied
    }

    /// How many requests with `method` the client sent.
    pub fn sent(&self, method: &str) -> u64 {
        self.script
            .lock()
            .unwrap()
            .sent
            .get(method)
            .copied()
            .unwrap_or(0)
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = parsed.parse(&buf).ok()? {
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let length: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let (method, target) = (parsed.method?.to_owned(), parsed.path?.to_owned());
            let mut body = buf[head..].to_vec();
            while body.len() < length {
                let n = socket.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            return Some(Request {
                method,
                target,
                headers,
                body,
            });
        }
    }
}

/// The upstream's answer: status, headers worth passing on, body.
struct Upstream {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn forward(request: &Request, upstream: &str, http: &reqwest::Client) -> Option<Upstream> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).ok()?;
    let mut builder = http.request(method, format!("{upstream}{}", request.target));
    for (name, value) in &request.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            builder = builder.header(name, value);
        }
    }
    let response = builder.body(request.body.clone()).send().await.ok()?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(n, _)| matches!(n.as_str(), "content-type" | "retry-after"))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.bytes().await.ok()?.to_vec();
    Some(Upstream {
        status,
        headers,
        body,
    })
}

fn head(status: u16, headers: &[(String, String)], length: Option<usize>) -> Vec<u8> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Status");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(length) = length {
        out.push_str(&format!("content-length: {length}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

async fn stall() {
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

async fn serve(
    mut socket: TcpStream,
    script: &Mutex<Script>,
    upstream: &str,
    http: &reqwest::Client,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut socket).await else {
        return Ok(());
    };
    let fault = {
        let mut script = script.lock().unwrap();
        let n = {
            let sent = script.sent.entry(request.method.clone()).or_default();
            *sent += 1;
            *sent
        };
        if request.method == "POST" && script.applied.contains(&request.target) {
            script.sent_after_applied += 1;
        }
        let queued = script
            .next
            .get_mut(&request.method)
            .and_then(VecDeque::pop_front);
        queued
            .or_else(|| script.rule.as_ref().map(|rule| rule(&request.method, n)))
            .unwrap_or(Fault::Pass)
    };
    let answered = |a: &Answer| {
        let mut out = head(a.status, &a.headers, Some(a.body.len()));
        out.extend_from_slice(a.body.as_bytes());
        out
    };
    match fault {
        Fault::Answer(a) => return socket.write_all(&answered(&a)).await,
        Fault::StallErrorBody(status) => {
            let headers = [("content-type".to_owned(), "text/html".to_owned())];
            socket.write_all(&head(status, &headers, Some(100))).await?;
            socket.write_all(b"<html><bo").await?;
            socket.flush().await?;
            stall().await;
            return Ok(());
        }
        _ => {}
    }
    let Some(answer) = forward(&request, upstream, http).await else {
        return Ok(());
    };
    if request.method == "POST" && answer.status == 201 {
        script
            .lock()
            .unwrap()
            .applied
            .insert(request.target.clone());
    }
    let full = {
        let mut out = head(answer.status, &answer.headers, Some(answer.body.len()));
        out.extend_from_slice(&answer.body);
        out
    };
    let half = |out: &mut Vec<u8>| {
        let mut partial = head(answer.status, &answer.headers, Some(answer.body.len()));
        partial.extend_from_slice(&answer.body[..answer.body.len() / 2]);
        *out = partial;
    };
    match fault {
        Fault::Pass => socket.write_all(&full).await,
        Fault::ApplyThenDrop => Ok(()),
        Fault::ApplyThenHang => {
            stall().await;
            Ok(())
        }
        Fault::ApplyThenStallBody => {
            let mut out = Vec::new();
            half(&mut out);
            socket.write_all(&out).await?;
            socket.flush().await?;
            stall().await;
            Ok(())
        }
        Fault::ApplyThenCutBody => {
            let mut out = Vec::new();
            half(&mut out);
            socket.write_all(&out).await
        }
        Fault::ApplyThenStatus(204) => socket.write_all(&head(204, &answer.headers, None)).await,
        Fault::ApplyThenStatus(status) => {
            let mut out = head(status, &answer.headers, Some(answer.body.len()));
            out.extend_from_slice(&answer.body);
            socket.write_all(&out).await
        }
        Fault::ApplyThenAnswer(a) => socket.write_all(&answered(&a)).await,
        Fault::Answer(_) | Fault::StallErrorBody(_) => Ok(()),
    }
}
