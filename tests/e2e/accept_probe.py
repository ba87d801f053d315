#!/usr/bin/env python3
"""A scrape target of the end-to-end test that records what Prometheus asks for: each GET writes
the request's Accept header to DIR/<last path segment>.accept (the latest request wins) and
answers a one-line classic text exposition. Prometheus scrapes it with the same scrape protocols
as the hubble-noise jobs (one metrics_path per job), so the test can fetch hubble-noise's
/metrics with exactly the header Prometheus sends.

    accept_probe.py PORT DIR        # listens on 127.0.0.1:PORT until killed
"""
import http.server
import os
import sys

BODY = b"# TYPE e2e_accept_probe gauge\ne2e_accept_probe 1\n"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "root"
            if not name.replace("-", "").replace("_", "").isalnum():
                self.send_error(404)
                return
            tmp = os.path.join(out, f".{name}.tmp")
            with open(tmp, "w") as f:
                f.write(self.headers.get("Accept", ""))
            os.replace(tmp, os.path.join(out, f"{name}.accept"))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
