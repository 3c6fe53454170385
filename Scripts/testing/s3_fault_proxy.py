#!/usr/bin/env python3
"""An HTTP/1.1 proxy in front of an S3 server (moto) that injects faults at seeded moments, for the S3 tests.

    s3_fault_proxy.py --upstream http://127.0.0.1:PORT [--port 0] [--seed N] [--fault-rate 0.1]
                      [--faults drop,500,503,slowdown,stall,truncate | none] [--stall-seconds S]
                      [--warmup N] [--fault-methods PUT,POST] [--log FILE]

The first line on stdout is the port it listens on (127.0.0.1; --port 0 picks a free one); nothing else goes to
stdout. Requests (keep-alive, bodies by Content-Length) are forwarded with their headers untouched, Host among
them, so a SigV4 signature made for the proxy's address still holds upstream. Each request is, with probability
--fault-rate (never among the first --warmup requests, and only for the --fault-methods if given), answered with
one of the --faults instead:

    drop      the connection is closed before anything is answered (the request never reaches upstream)
    500       500 InternalError, an S3 XML error body (not forwarded)
    503       503 ServiceUnavailable (not forwarded)
    slowdown  503 SlowDown (not forwarded)
    stall     nothing is sent for --stall-seconds, then the connection is closed (not forwarded)
    truncate  forwarded; upstream's status and headers (the full Content-Length) and only part of the body are
              sent, then the connection is closed (an answer without a body is cut before its headers)

The choice comes from one random generator seeded with --seed and drawn once per request in arrival order, so a
sequential client sees the same faults for the same seed. `GET /__proxy/stats` answers a JSON summary (requests
by method, statuses sent, faults by kind, PUT/POST requests without Content-MD5), never counted itself. --log
writes one JSON line per request (method, path, status sent, Content-MD5 present on PUT/POST, fault, time, Range) and the
summary last, when SIGTERM stops the proxy.
"""
import argparse
import http.client
import json
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("drop", "500", "503", "slowdown", "stall", "truncate")

# Hop-by-hop headers: about one connection, not passed on.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class Proxy:
    """The shared state: the fault generator, the counters and the log, behind one lock."""

    def __init__(self, args):
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.rate = args.fault_rate
        self.faults = [] if args.faults in ("", "none") else args.faults.split(",")
        for fault in self.faults:
            if fault not in FAULTS:
                raise SystemExit(f"unknown fault {fault!r}: choose from {', '.join(FAULTS)} or none")
        self.stall_seconds = args.stall_seconds
        self.warmup = args.warmup
        self.fault_methods = set(args.fault_methods.split(",")) if args.fault_methods else None
        self.random = random.Random(args.seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.methods = {}
        self.statuses = {}
        self.injected = {}
        self.without_md5 = 0
        self.log = open(args.log, "a", buffering=1) if args.log else None
        self.stopping = threading.Event()

    def arrive(self, method, has_md5):
        """Counts a request and decides its fault (None: forward it)."""
        with self.lock:
            self.requests += 1
            number = self.requests
            self.methods[method] = self.methods.get(method, 0) + 1
            if method in ("PUT", "POST") and not has_md5:
                self.without_md5 += 1
            # Two draws per request whatever the settings, so the sequence does not shift with them.
            hit = self.random.random()
            pick = self.random.random()
            fault = None
            eligible = self.fault_methods is None or method in self.fault_methods
            if self.faults and eligible and number > self.warmup and hit < self.rate:
                fault = self.faults[int(pick * len(self.faults))]
                self.injected[fault] = self.injected.get(fault, 0) + 1
            return number, fault

    def record(self, number, method, path, status, has_md5, fault, byte_range=None):
        with self.lock:
            key = str(status) if status is not None else "none"
            self.statuses[key] = self.statuses.get(key, 0) + 1
            if self.log:
                line = {"n": number, "method": method, "path": path, "status": status, "fault": fault,
                        "time": round(time.time(), 4)}
                if byte_range:
                    line["range"] = byte_range
                if method in ("PUT", "POST"):
                    line["content_md5"] = has_md5
                self.log.write(json.dumps(line) + "\n")

    def summary(self):
        with self.lock:
            return {
                "requests": self.requests,
                "methods": dict(self.methods),
                "statuses": dict(self.statuses),
                "faults": dict(self.injected),
                "faults_total": sum(self.injected.values()),
                "puts_without_md5": self.without_md5,
            }


def error_body(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>polyad-fault-proxy</RequestId></Error>"
    ).encode()


CANNED = {
    "500": (500, "Internal Server Error", error_body("InternalError", "Injected by the fault proxy.")),
    "503": (503, "Service Unavailable", error_body("ServiceUnavailable", "Injected by the fault proxy.")),
    "slowdown": (503, "Slow Down", error_body("SlowDown", "Please reduce your request rate (injected).")),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: Proxy = None  # set before the server starts

    def log_message(self, format, *args):  # quiet: stdout carries only the port, stderr only real trouble
        pass

    def setup(self):
        super().setup()
        self.upstream = None  # one upstream connection per client connection, kept alive like it

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def do_GET(self):
        self.handle_any()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def handle_any(self):
        if self.command == "GET" and self.path.split("?")[0] == "/__proxy/stats":
            stats = json.dumps(self.proxy.summary()).encode()
            return self.send_raw(200, "OK", [("Content-Type", "application/json")], stats)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return self.send_raw(501, "Not Implemented", [], b"chunked request bodies are not supported\n")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        has_md5 = "Content-MD5" in self.headers
        number, fault = self.proxy.arrive(self.command, has_md5)

        def record(status):  # before the answer goes out, so a client that read it finds it counted
            self.proxy.record(number, self.command, self.path, status, has_md5, fault, self.headers.get("Range"))

        if fault == "drop":
            record(None)
            return self.cut()
        if fault == "stall":
            record(None)
            self.proxy.stopping.wait(self.proxy.stall_seconds)
            return self.cut()
        if fault in CANNED:
            code, reason, text = CANNED[fault]
            record(code)
            return self.send_raw(code, reason, [("Content-Type", "application/xml")], text)
        try:
            response, data = self.forward(body)
        except (http.client.HTTPException, OSError) as e:
            record(502)
            text = error_body("BadGateway", f"The fault proxy could not reach upstream: {e}")
            return self.send_raw(502, "Bad Gateway", [("Content-Type", "application/xml")], text)
        headers = [(n, v) for n, v in response.getheaders() if n.lower() not in HOP_BY_HOP]
        if self.command != "HEAD":
            headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
            headers.append(("Content-Length", str(len(data))))
        record(response.status)
        if fault == "truncate":
            if data and self.command != "HEAD":
                self.send_raw(response.status, response.reason, headers, data[: len(data) // 2])
            return self.cut()
        self.send_raw(response.status, response.reason, headers, data)

    def forward(self, body):
        """Sends the request upstream (once more on a fresh connection if the kept one was closed)."""
        for attempt in (1, 2):
            if self.upstream is None:
                target = self.proxy.upstream
                self.upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=300)
            try:
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "expect":
                        self.upstream.putheader(name, value)
                if body and "Content-Length" not in self.headers:
                    self.upstream.putheader("Content-Length", str(len(body)))
                self.upstream.endheaders(body if body else None)
                response = self.upstream.getresponse()
                data = response.read()
                if response.will_close:
                    self.upstream.close()
                    self.upstream = None
                return response, data
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise

    def send_raw(self, status, reason, headers, data):
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in headers]
        if not any(n.lower() == "content-length" for n, _ in headers):
            lines.append(f"Content-Length: {len(data)}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def cut(self):
        """Closes the client's connection at once (whatever was written so far is sent first)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled or kept-alive connection does not hold up the exit
    request_queue_size = 128  # clients that connect many at once are not kept waiting

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up is no news
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the S3 server, http://host:port")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated kinds, or none")
    parser.add_argument("--stall-seconds", type=float, default=30)
    parser.add_argument("--warmup", type=int, default=0, help="requests passed through before any fault")
    parser.add_argument("--fault-methods", help="comma-separated methods that may meet a fault (default: all)")
    parser.add_argument("--log", help="JSON lines: one per request, the summary last")
    args = parser.parse_args()

    proxy = Proxy(args)
    Handler.proxy = proxy
    server = Server(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: proxy.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: proxy.stopping.set())
    print(server.server_address[1], flush=True)
    while not proxy.stopping.wait(1):
        pass
    server.shutdown()
    server.server_close()
    if proxy.log:
        proxy.log.write(json.dumps({"summary": proxy.summary()}) + "\n")
        proxy.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
