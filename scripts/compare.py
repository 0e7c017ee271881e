"""`make compare`: the processor beside plain Python and Node.js handlers doing
the same decode + parse + classify, on the same generated batches, in one run.

The processor is measured whole, through the Lambda runtime: its release
`bootstrap` polls a minimal Runtime API served here on loopback, and an
invocation is timed from the moment its event is handed out to the moment its
response arrives. Storage and alerts are switched off (STORE_CATEGORIES=none),
so no AWS call is made: the figure is decode + parse + classify + runtime.
"""
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "reference"))
import handler as python_handler  # noqa: E402

RUNS = int(os.environ.get("COMPARE_RUNS", "30"))
RELEASE = os.path.join(ROOT, "target", "release")


class RuntimeApi:
    """Just enough of the Lambda Runtime API to time invocations."""

    def __init__(self):
        self.events = queue.Queue()
        self.done = queue.Queue()
        self.first_poll = threading.Event()
        self.sent_at = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as the real Runtime API: no new connection and
            # server thread per request inside the timed span.
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                api.first_poll.set()
                request_id, body = api.events.get()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:compare")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                api.sent_at[request_id] = time.perf_counter()

            def do_POST(self):
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length", 0))
                payload = self.rfile.read(length)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                request_id = self.path.split("/")[-2]
                api.done.put((request_id, arrived, self.path.endswith("/response"), payload))

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # The processor's connections reset when it is stopped at the end.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, n, body):
        request_id = f"compare-{n}"
        self.events.put((request_id, body))
        got_id, arrived, ok, payload = self.done.get(timeout=60)
        if not ok:
            sys.exit(f"the processor failed: {payload[:300]!r}")
        return (arrived - self.sent_at[got_id]) * 1000, json.loads(payload)


def processor(events):
    api = RuntimeApi()
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "AWS_LAMBDA_FUNCTION_NAME": "compare",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/compare",
        "AWS_LAMBDA_LOG_STREAM_NAME": "compare",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "compare",
        "AWS_SECRET_ACCESS_KEY": "compare",
        "AWS_EC2_METADATA_DISABLED": "true",
        # Required by the function, never touched: nothing is stored.
        "ENTRIES_TABLE": "unused",
        "INCIDENTS_TABLE": "unused",
        "SILENCES_TABLE": "unused",
        "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:unused",
        "STORE_CATEGORIES": "none",
        "ALERT_CATEGORIES": "none",
        "RUST_LOG": "warn",
    }
    started = time.perf_counter()
    proc = subprocess.Popen([os.path.join(RELEASE, "iot-log-processor")], env=env, stdout=subprocess.DEVNULL)
    try:
        if not api.first_poll.wait(10):
            sys.exit("the processor never polled the Runtime API")
        startup_ms = (time.perf_counter() - started) * 1000
        results = {}
        n = 0
        for name, body in events.items():
            times, decode, parse = [], [], []
            for i in range(RUNS + 3):
                ms, summary = api.invoke(n, body)
                n += 1
                if i >= 3:
                    times.append(ms)
                    if "decodeUs" in summary:
                        decode.append(summary["decodeUs"] / 1000)
                        parse.append(summary["parseUs"] / 1000)
            if decode:
                summary["decodeMs"] = statistics.median(decode)
                summary["parseMs"] = statistics.median(parse)
            results[name] = (statistics.median(times), summary)
        peak_kb = peak_rss_kb(proc.pid)
        # A gzip bomb (256 MiB of zeros) must be refused at the cap and leave memory bounded.
        bomb = bomb_event()
        api.events.put(("bomb", bomb))
        _, _, ok, payload = api.done.get(timeout=60)
        if ok or b"Decode.TooLarge" not in payload:
            sys.exit(f"the bomb was not refused: {payload[:200]!r}")
        ms, _ = api.invoke(n, events[next(iter(events))])
        return startup_ms, results, peak_kb, peak_rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def bomb_event():
    import base64
    import zlib
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    data = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    return json.dumps({"awslogs": {"data": base64.b64encode(data).decode()}}).encode()


def python_times(events):
    out = {}
    for name, body in events.items():
        event = json.loads(body)
        times = []
        for i in range(RUNS + 3):
            t0 = time.perf_counter()
            result = python_handler.handler(event)
            if i >= 3:
                times.append((time.perf_counter() - t0) * 1000)
        out[name] = (statistics.median(times), result)
    return out


def node_times(paths):
    out = {}
    for name, path in paths.items():
        done = subprocess.run(["node", os.path.join(ROOT, "scripts", "reference", "handler.js"), path, str(RUNS)],
                              check=True, capture_output=True, text=True)
        doc = json.loads(done.stdout)
        out[name] = (doc["medianMs"], doc["result"])
    return out


def main():
    cli = os.path.join(RELEASE, "iot-incidents")
    work = os.path.join(ROOT, "target", "compare")
    os.makedirs(work, exist_ok=True)
    shapes = {"1k": (1000, 0, 1), "7k": (7000, 0, 2), "7k-5pct-failures": (7000, 5, 3)}
    paths, events = {}, {}
    for name, (entries, failures, seed) in shapes.items():
        path = os.path.join(work, f"{name}.json")
        with open(path, "w") as f:
            subprocess.run([cli, "local", "synth", "--entries", str(entries), "--failure-percent", str(failures),
                            "--seed", str(seed)], check=True, stdout=f)
        paths[name] = path
        with open(path, "rb") as f:
            events[name] = f.read().strip()

    # The Kinesis path: ten 1,000-entry subscription batches as the records of one invocation.
    batches = []
    for seed in range(10, 20):
        batch = os.path.join(work, f"kinesis-record-{seed}.json")
        with open(batch, "w") as f:
            subprocess.run([cli, "local", "synth", "--entries", "1000", "--failure-percent", "0", "--seed", str(seed)],
                           check=True, stdout=f)
        batches.append(batch)
    kinesis = subprocess.run([cli, "kinesis", *batches], check=True, capture_output=True).stdout.strip()
    rust_events = dict(events, **{"kinesis-10x1k": kinesis})

    startup_ms, rust, peak_kb, peak_after_bomb_kb = processor(rust_events)
    python = python_times(events)
    node = node_times(paths)

    for name in shapes:
        r, p, n = rust[name][1], python[name][1], node[name][1]
        incidents = sum(r["byCategory"].values())
        if not (r["entries"] == p["entries"] == n["entries"] and incidents == p["incidents"] == n["incidents"]):
            sys.exit(f"{name}: the handlers disagree: {r['entries']}/{incidents} {p} {n}")

    print(f"median of {RUNS} runs per cell, one process each, same payloads, same machine\n")
    print(f"{'batch':<18} {'gzipped':>9} {'processor':>10} {'python':>9} {'node':>9} {'python/processor':>17} {'node/processor':>15}")
    for name in shapes:
        raw = json.loads(events[name])["awslogs"]["data"]
        size_kb = len(raw) * 3 / 4 / 1024
        rm, pm, nm = rust[name][0], python[name][0], node[name][0]
        print(f"{name:<18} {size_kb:>7.0f}KB {rm:>8.2f}ms {pm:>7.2f}ms {nm:>7.2f}ms {pm / rm:>16.1f}x {nm / rm:>14.1f}x")
    print("\nwhere the processor's time goes (medians; the function times its own stages):")
    print(f"{'batch':<18} {'whole':>9} {'base64+gunzip':>14} {'envelope+classify':>18} {'runtime and rest':>17} {'whole/gunzip':>13}")
    for name in shapes:
        rm, r = rust[name]
        decode, parse = r["decodeMs"], r["parseMs"]
        print(f"{name:<18} {rm:>7.2f}ms {decode:>12.2f}ms {parse:>16.2f}ms {rm - decode - parse:>15.2f}ms {rm / decode:>12.1f}x")
    km, kr = rust["kinesis-10x1k"]
    if kr != {"batchItemFailures": []}:
        sys.exit(f"the Kinesis batch was not fully processed: {kr}")
    print(f"\nKinesis path, one invocation of 10 records x 1,000 entries: {km:.2f} ms "
          f"({10_000 / km * 1000:,.0f} entries/s; 10 direct invocations of 1k: {10 * rust['1k'][0]:.2f} ms)")
    print(f"processor start-up to first Runtime API poll: {startup_ms:.1f} ms")
    print(f"processor peak RSS over all invocations: {peak_kb / 1024:.1f} MiB")
    print(f"processor peak RSS after a 256 MiB gzip bomb (refused at the 32 MiB cap), then one more batch: {peak_after_bomb_kb / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
