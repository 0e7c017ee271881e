//! A fault-injecting HTTP/1.1 proxy between the function's AWS clients and
//! moto. It recognises DynamoDB (JSON protocol, `X-Amz-Target`) and SNS
//! (query protocol, `Action=`) requests and, by plan, answers some of them
//! with a fault instead of (or after) forwarding them.
//!
//! Blocking threads, one per client connection: nothing here shares the
//! test's async runtime, so a slow answer never stalls the code under test.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    DynamoDb,
    Sns,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// 400 `ProvisionedThroughputExceededException` (DynamoDB) or `Throttling` (SNS); not forwarded.
    Throttle,
    /// 400 `ThrottlingException` (DynamoDB's control-plane-style throttle); not forwarded.
    ThrottlingException,
    /// 500 `InternalServerError` / `InternalError`; not forwarded.
    ServerError,
    /// BatchWriteItem: half the writes forwarded, the rest answered as
    /// `UnprocessedItems`; BatchGetItem (by a `First` or `Nth` rule): half
    /// the keys, the rest as `UnprocessedKeys`.
    PartialBatch,
    /// Connection reset before forwarding: nothing happened upstream.
    ResetBeforeForward,
    /// Forwarded, then the connection reset: it happened, the client cannot know.
    ResetAfterForward,
    /// Forwarded, answered only after the plan's delay (past the client's attempt timeout).
    SlowResponse,
}

impl Fault {
    /// Faults after which the request may have taken effect upstream.
    pub fn is_ambiguous(self) -> bool {
        matches!(self, Self::ResetAfterForward | Self::SlowResponse)
    }
}

/// Which requests fail, and how.
#[derive(Debug, Clone)]
pub enum Rule {
    /// Each request of `service` (and `op`, if given) fails with
    /// probability `rate`, decided by the seed and the request's number
    /// within its operation (not by arrival order across operations), with
    /// each of `faults` in turn per operation, so that every kind is
    /// injected once an operation has had as many faults as kinds.
    Random {
        service: Service,
        op: Option<&'static str>,
        rate: f64,
        faults: Vec<Fault>,
    },
    /// The first `count` requests of `service` whose operation is `op` fail with `fault`.
    First {
        service: Service,
        op: &'static str,
        count: u32,
        fault: Fault,
    },
    /// The `n`-th request (from 1) of `service` whose operation is `op` fails with `fault`.
    Nth {
        service: Service,
        op: &'static str,
        n: u32,
        fault: Fault,
    },
}

/// A number in [0, 1) fixed by the seed, the rule, the operation and the
/// request's number within that operation (splitmix64).
fn unit_interval(seed: u64, rule: usize, op: &str, n: u32) -> f64 {
    let mut x = seed ^ (rule as u64).rotate_left(48) ^ u64::from(n).rotate_left(16);
    for b in op.bytes() {
        x = x.rotate_left(5) ^ u64::from(b);
    }
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug)]
struct State {
    rules: Vec<Rule>,
    seed: u64,
    /// Per (rule, operation), how many faults it has placed: the next kind.
    turns: BTreeMap<(usize, String), u32>,
    /// Per rule, how many requests it has failed so far.
    used: Vec<u32>,
    injected: BTreeMap<(Service, Fault), u32>,
    requests: BTreeMap<(Service, String), u32>,
}

pub struct FaultProxy {
    pub endpoint: String,
    slow: Duration,
    state: Arc<Mutex<State>>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (`http://host:port`). `slow` is how long
    /// a `SlowResponse` is held back.
    pub fn start(upstream: &str, rules: Vec<Rule>, seed: u64, slow: Duration) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            used: vec![0; rules.len()],
            rules,
            seed,
            turns: BTreeMap::new(),
            injected: BTreeMap::new(),
            requests: BTreeMap::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(client, &upstream, &state, slow));
            }
        });
        Self {
            endpoint,
            slow,
            state,
        }
    }

    /// The faults injected so far, by service and kind.
    pub fn injected(&self) -> BTreeMap<(Service, Fault), u32> {
        self.state.lock().unwrap().injected.clone()
    }

    /// Requests seen so far, by service and operation.
    pub fn requests(&self) -> BTreeMap<(Service, String), u32> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Stops injecting faults (the proxy keeps forwarding).
    pub fn heal(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn slow(&self) -> Duration {
        self.slow
    }
}

struct Request {
    head: Vec<(String, String)>,
    request_line: String,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The service and operation this request is for.
    fn operation(&self) -> (Service, String) {
        if let Some(target) = self.header("x-amz-target") {
            if let Some(op) = target.strip_prefix("DynamoDB_20120810.") {
                return (Service::DynamoDb, op.to_owned());
            }
        }
        let body = String::from_utf8_lossy(&self.body);
        let action = body
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned);
        match action {
            Some(op) if body.contains("TopicArn=") || op.contains("Topic") => (Service::Sns, op),
            Some(op) => (Service::Other, op),
            None => (Service::Other, String::new()),
        }
    }

    fn to_bytes(&self, body: &[u8]) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.request_line).into_bytes();
        for (k, v) in &self.head {
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("connection") {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
        out
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("x-amzn-requestid".into(), "fault-proxy".into()),
            ],
            body: body.into(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} X\r\n", self.status).into_bytes();
        for (k, v) in &self.headers {
            let skip = ["content-length", "connection", "transfer-encoding"];
            if skip.iter().any(|s| k.eq_ignore_ascii_case(s)) {
                continue;
            }
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP message: its first line, headers and body.
type Message = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 message head and body (Content-Length or chunked;
/// with neither, a response's body runs to the end of the stream).
fn read_message(stream: &mut TcpStream, is_response: bool) -> Option<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let first = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut body = buf[head_end + 4..].to_vec();
    if let Some(length) = get("content-length") {
        let length: usize = length.parse().ok()?;
        while body.len() < length {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
    } else if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        while find(&body, b"0\r\n\r\n").is_none() {
            let n = stream.read(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body = dechunk(&body)?;
    } else if is_response {
        stream.read_to_end(&mut body).ok()?;
    }
    Some((first, headers, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

fn forward(upstream: &str, request: &Request, body: &[u8]) -> Option<Response> {
    let mut up = TcpStream::connect(upstream).ok()?;
    up.write_all(&request.to_bytes(body)).ok()?;
    let (status_line, headers, body) = read_message(&mut up, true)?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    Some(Response {
        status,
        headers,
        body,
    })
}

fn reset(stream: TcpStream) {
    // Linger 0: close with RST, as a failing load balancer or NAT would.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

fn error_response(service: Service, fault: Fault) -> Response {
    let (status, dynamo_type, sns_code) = match fault {
        Fault::ThrottlingException => (400, "ThrottlingException", "Throttling"),
        Fault::ServerError => (500, "InternalServerError", "InternalError"),
        _ => (400, "ProvisionedThroughputExceededException", "Throttling"),
    };
    match service {
        Service::DynamoDb => Response::new(
            status,
            "application/x-amz-json-1.0",
            format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{dynamo_type}","message":"injected by the fault proxy"}}"#
            ),
        ),
        _ => Response::new(
            status,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{sns_code}</Code><Message>injected by the fault proxy</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                if status == 500 { "Receiver" } else { "Sender" }
            ),
        ),
    }
}

/// Splits a BatchWriteItem body: how many writes to forward, the body that
/// forwards them, and those to answer as unprocessed.
fn split_batch(body: &[u8]) -> Option<(usize, Vec<u8>, serde_json::Value)> {
    let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = request.get_mut("RequestItems")?.as_object_mut()?;
    let (table, writes) = items.iter_mut().next()?;
    let writes = writes.as_array_mut()?;
    let kept = writes.len() / 2;
    let unprocessed: Vec<_> = writes.drain(kept..).collect();
    let unprocessed = serde_json::json!({ table.clone(): unprocessed });
    Some((kept, serde_json::to_vec(&request).ok()?, unprocessed))
}

/// Splits a BatchGetItem body the same way: how many keys to forward, the
/// body that asks for them, and the rest as `UnprocessedKeys`.
fn split_get(body: &[u8]) -> Option<(usize, Vec<u8>, serde_json::Value)> {
    let mut request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = request.get_mut("RequestItems")?.as_object_mut()?;
    let (table, asked) = items.iter_mut().next()?;
    let keys = asked.get_mut("Keys")?.as_array_mut()?;
    let kept = keys.len() / 2;
    let unprocessed: Vec<_> = keys.drain(kept..).collect();
    let unprocessed = serde_json::json!({ table.clone(): { "Keys": unprocessed } });
    Some((kept, serde_json::to_vec(&request).ok()?, unprocessed))
}

fn choose(state: &Mutex<State>, service: Service, op: &str) -> Option<Fault> {
    let mut state = state.lock().unwrap();
    let state = &mut *state;
    *state.requests.entry((service, op.to_owned())).or_default() += 1;
    let mut chosen = None;
    for (i, rule) in state.rules.iter().enumerate() {
        match rule {
            Rule::First {
                service: s,
                op: o,
                count,
                fault,
            } if *s == service && *o == op && state.used[i] < *count => {
                state.used[i] += 1;
                chosen = Some(*fault);
                break;
            }
            Rule::Nth {
                service: s,
                op: o,
                n,
                fault,
            } if *s == service && *o == op && state.requests[&(service, op.to_owned())] == *n => {
                state.used[i] += 1;
                chosen = Some(*fault);
                break;
            }
            // Decided by the request's number within its operation, not by
            // the order operations interleave: the n-th BatchWriteItem meets
            // the same fate whatever the other requests in flight are.
            Rule::Random {
                service: s,
                op: o,
                rate,
                faults,
            } if *s == service
                && o.is_none_or(|o| o == op)
                && unit_interval(state.seed, i, op, state.requests[&(service, op.to_owned())])
                    < *rate =>
            {
                let applicable: Vec<Fault> = faults
                    .iter()
                    .copied()
                    .filter(|f| *f != Fault::PartialBatch || op == "BatchWriteItem")
                    .collect();
                if applicable.is_empty() {
                    continue;
                }
                // Each applicable kind in turn, per operation.
                let turn = state.turns.entry((i, op.to_owned())).or_default();
                let fault = applicable[*turn as usize % applicable.len()];
                *turn += 1;
                state.used[i] += 1;
                chosen = Some(fault);
                break;
            }
            _ => {}
        }
    }
    if let Some(fault) = chosen {
        *state.injected.entry((service, fault)).or_default() += 1;
    }
    chosen
}

fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>, slow: Duration) {
    loop {
        let Some((request_line, head, body)) = read_message(&mut client, false) else {
            return;
        };
        let request = Request {
            head,
            request_line,
            body,
        };
        let (service, op) = request.operation();
        let fault = choose(state, service, &op);
        let response = match fault {
            None => forward(upstream, &request, &request.body),
            Some(Fault::ResetBeforeForward) => return reset(client),
            Some(Fault::ResetAfterForward) => {
                forward(upstream, &request, &request.body);
                return reset(client);
            }
            Some(Fault::SlowResponse) => {
                let response = forward(upstream, &request, &request.body);
                std::thread::sleep(slow);
                response
            }
            Some(Fault::PartialBatch) => {
                let (split, field) = if op == "BatchGetItem" {
                    (split_get(&request.body), "UnprocessedKeys")
                } else {
                    (split_batch(&request.body), "UnprocessedItems")
                };
                match split {
                    Some((0, _, unprocessed)) => Some(Response::new(
                        200,
                        "application/x-amz-json-1.0",
                        serde_json::json!({ field: unprocessed }).to_string(),
                    )),
                    Some((_, forwarded, unprocessed)) => forward(upstream, &request, &forwarded)
                        .map(|mut response| {
                            let mut answer: serde_json::Value =
                                serde_json::from_slice(&response.body).unwrap_or_default();
                            answer[field] = unprocessed;
                            response.body = serde_json::to_vec(&answer).unwrap();
                            response
                        }),
                    None => forward(upstream, &request, &request.body),
                }
            }
            Some(other) => Some(error_response(service, other)),
        };
        let Some(response) = response else {
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        if client.write_all(&response.to_bytes()).is_err() {
            return;
        }
    }
}
