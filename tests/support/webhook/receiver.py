"""A webhook receiver for Sverka's tests: an HTTP server on 127.0.0.1 that checks each
POST's X-Sverka-Signature with the shared secret, the way a region's system would
(HMAC-SHA256 of "TIMESTAMP.BODY", compared in constant time), and writes what it got
as one JSON line per request to --out. It answers 200, or misbehaves on request:
--fail-first N answers 500 to the first N requests, --hang-first N never answers the
first N (it holds the connection until the test ends). Python's standard library
only; prints "ready PORT" once it listens."""

import argparse
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--secret", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--fail-first", type=int, default=0)
parser.add_argument("--hang-first", type=int, default=0)
args = parser.parse_args()

lock = threading.Lock()
seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        timestamp = self.headers.get("X-Sverka-Timestamp", "")
        given = self.headers.get("X-Sverka-Signature", "")
        expected = "sha256=" + hmac.new(
            args.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        with lock:
            seen += 1
            number = seen
        if number <= args.hang_first:
            answer = "hang"
        elif number <= args.hang_first + args.fail_first:
            answer = 500
        else:
            answer = 200
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        record = {
            "number": number,
            "path": self.path,
            "notification": self.headers.get("X-Sverka-Notification"),
            "timestamp": timestamp,
            "signature_ok": hmac.compare_digest(given, expected),
            "content_type": self.headers.get("Content-Type"),
            "body": parsed,
            "answer": answer,
            "received_at": time.time(),
        }
        with lock, open(args.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        if answer == "hang":
            time.sleep(3600)
            return
        self.send_response(answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"ready {server.server_address[1]}", flush=True)
server.serve_forever()
