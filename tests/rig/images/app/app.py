#!/usr/bin/env python3
"""Railhead's Rails-shaped test app (test equipment, not a product feature).

HTTP/1.1 keep-alive server on $PORT (default 3000). The version is baked in as APP_VERSION.
Routes (every response carries an X-App-Version header):
  GET /up               200 "OK <version>" (500 "FAIL <version>" when APP_BROKEN is set)
  GET / , GET /version  the version
  GET /slow?s=N         sleeps N seconds (max 300), then answers "slept N <version>"
  GET /whoami           JSON: version, hostname, pid, uid
  POST /sqlite/write?n=K, GET /sqlite/count     SQLite (WAL) at $SQLITE_PATH
  POST /pg/write?n=K,     GET /pg/count         PostgreSQL at $DATABASE_URL
  POST /redis/incr?key=K, GET /redis/get?key=K  Redis at $REDIS_URL
  GET /env/NAME         JSON: whether env NAME is set and its sha256 (never the value)
SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to APP_SHUTDOWN_GRACE s, default 30),
exit 0. APP_BOOT_DELAY=N sleeps N s before listening (a slow boot). APP_ACCESS_LOG=1 logs requests.
"""
import hashlib
import json
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

VERSION = os.environ.get("APP_VERSION", "v0")
BROKEN = os.environ.get("APP_BROKEN", "").lower() not in ("", "0", "false", "no")
PORT = int(os.environ.get("PORT", "3000"))
GRACE = float(os.environ.get("APP_SHUTDOWN_GRACE", "30"))
ACCESS_LOG = os.environ.get("APP_ACCESS_LOG", "") not in ("", "0")
HOSTNAME = socket.gethostname()


def log(msg):
    sys.stdout.write(f"[app {VERSION}] {msg}\n")
    sys.stdout.flush()


class Inflight:
    def __init__(self):
        self.cond = threading.Condition()
        self.count = 0
        self.draining = False

    def enter(self):
        with self.cond:
            self.count += 1

    def leave(self):
        with self.cond:
            self.count -= 1
            if self.count == 0:
                self.cond.notify_all()

    def wait_idle(self, deadline):
        with self.cond:
            while self.count > 0 and time.monotonic() < deadline:
                self.cond.wait(0.1)
            return self.count


INFLIGHT = Inflight()


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def query_int(query, name, default, lo, hi):
    raw = query.get(name, [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, f"{name} must be an integer, got {raw!r}")
    if not lo <= value <= hi:
        raise HttpError(400, f"{name} must be in {lo}..{hi}, got {value}")
    return value


# --- data stores -----------------------------------------------------------------------------

def sqlite_conn():
    path = os.environ.get("SQLITE_PATH")
    if not path:
        raise HttpError(500, "SQLITE_PATH is not set")
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise HttpError(500, f"could not switch {path} to WAL (journal_mode={mode})")
    conn.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, version TEXT NOT NULL, at REAL NOT NULL)")
    return conn


def sqlite_write(n):
    conn = sqlite_conn()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO items (version, at) VALUES (?, ?)", [(VERSION, time.time())] * n)
        conn.execute("COMMIT")
        return {"inserted": n, "count": conn.execute("SELECT count(*) FROM items").fetchone()[0]}
    finally:
        conn.close()


def sqlite_count():
    conn = sqlite_conn()
    try:
        return {"count": conn.execute("SELECT count(*) FROM items").fetchone()[0]}
    finally:
        conn.close()


def pg_conn():
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise HttpError(500, "DATABASE_URL is not set")
    import psycopg2  # imported lazily: only the pg routes need it

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(4242)")  # concurrent first calls create the table once
        cur.execute("CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, version text NOT NULL, at timestamptz NOT NULL DEFAULT now())")
    conn.commit()
    return conn


def pg_write(n):
    conn = pg_conn()
    try:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO items (version) VALUES (%s)", [(VERSION,)] * n)
            cur.execute("SELECT count(*) FROM items")
            count = cur.fetchone()[0]
        conn.commit()
        return {"inserted": n, "count": count}
    finally:
        conn.close()


def pg_count():
    conn = pg_conn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM items")
            return {"count": cur.fetchone()[0]}
    finally:
        conn.close()


def redis_client():
    url = os.environ.get("REDIS_URL")
    if not url:
        raise HttpError(500, "REDIS_URL is not set")
    import redis  # imported lazily: only the redis routes need it

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def redis_incr(key):
    client = redis_client()
    try:
        return {"key": key, "value": int(client.incr(key))}
    finally:
        client.close()


def redis_get(key):
    client = redis_client()
    try:
        raw = client.get(key)
        return {"key": key, "value": None if raw is None else raw.decode()}
    finally:
        client.close()


# --- HTTP ------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "railhead-test-app"
    sys_version = ""
    disable_nagle_algorithm = True  # without it every response waits ~40 ms (Nagle + delayed ACK)
    timeout = 120  # idle keep-alive connections are closed after this

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's signature)
        if ACCESS_LOG:
            log(f"{self.client_address[0]} {format % args}")

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        INFLIGHT.enter()
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = self.route()
        except HttpError as err:
            status, body = err.status, {"error": str(err)}
        except Exception as err:  # a test app: report any failure as a 500 with its reason
            status, body = 500, {"error": f"{type(err).__name__}: {err}"}
        try:
            self.send(status, body)
        finally:
            INFLIGHT.leave()

    def route(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        method = "GET" if self.command == "HEAD" else self.command
        if method == "GET" and path == "/up":
            if BROKEN:
                log("health check failing on purpose (APP_BROKEN is set): GET /up -> 500")
                return 500, f"FAIL {VERSION}"
            return 200, f"OK {VERSION}"
        if method == "GET" and path in ("/", "/version"):
            return 200, VERSION
        if method == "GET" and path == "/slow":
            try:
                seconds = float(query.get("s", ["3"])[0])
            except ValueError:
                raise HttpError(400, "s must be a number")
            seconds = max(0.0, min(seconds, 300.0))
            time.sleep(seconds)
            return 200, f"slept {seconds:g} {VERSION}"
        if method == "GET" and path == "/whoami":
            return 200, {"version": VERSION, "hostname": HOSTNAME, "pid": os.getpid(), "uid": os.getuid()}
        if method == "POST" and path == "/sqlite/write":
            return 200, sqlite_write(query_int(query, "n", 1, 1, 100000))
        if method == "GET" and path == "/sqlite/count":
            return 200, sqlite_count()
        if method == "POST" and path == "/pg/write":
            return 200, pg_write(query_int(query, "n", 1, 1, 100000))
        if method == "GET" and path == "/pg/count":
            return 200, pg_count()
        if method == "POST" and path == "/redis/incr":
            return 200, redis_incr(query.get("key", ["counter"])[0])
        if method == "GET" and path == "/redis/get":
            return 200, redis_get(query.get("key", ["counter"])[0])
        if method == "GET" and path.startswith("/env/"):
            name = path[len("/env/"):]
            value = os.environ.get(name)
            digest = None if value is None else hashlib.sha256(value.encode()).hexdigest()
            return 200, {"name": name, "set": value is not None, "sha256": digest}
        return 404, {"error": f"no route for {self.command} {path}"}

    def send(self, status, body):
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), "application/json"
        else:
            data, ctype = str(body).encode(), "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        if INFLIGHT.draining:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops SYNs under proxy load
    daemon_threads = True
    allow_reuse_address = True


def main():
    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"received {signal.Signals(signum).name}")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    boot_delay = float(os.environ.get("APP_BOOT_DELAY", "0") or 0)
    if boot_delay > 0:
        log(f"booting slowly on purpose: {boot_delay:g}s")
        if stop.wait(boot_delay):
            log("stopped while booting; exiting 0")
            return 0

    server = Server(("0.0.0.0", PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    log(f"listening on 0.0.0.0:{PORT} (version {VERSION}, pid {os.getpid()}, uid {os.getuid()}"
        f"{', health check broken on purpose' if BROKEN else ''})")

    while not stop.wait(0.5):
        pass

    INFLIGHT.draining = True
    server.shutdown()  # stop the accept loop
    server.socket.close()  # new connections are refused from here on
    with INFLIGHT.cond:
        busy = INFLIGHT.count
    log(f"graceful shutdown: stopped accepting; waiting for {busy} in-flight request(s) (up to {GRACE:g}s)")
    left = INFLIGHT.wait_idle(time.monotonic() + GRACE)
    if left:
        log(f"grace period over with {left} request(s) still running; exiting 0")
    else:
        log("all in-flight requests finished; exiting 0")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
