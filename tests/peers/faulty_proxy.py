#!/usr/bin/env python3
"""A reverse proxy in front of a real registry, for faults a real registry cannot be
made to show (core/tests/registry_faults.rs). Standard library only.

    faulty_proxy.py --upstream 127.0.0.1:PORT [--port 0] [--fail-uploads N] [--delay S]

--fail-uploads N  answers the first N blob-upload requests (PATCH or PUT under
                  /v2/<name>/blobs/uploads/) with HTTP 500 and an OCI error body, after
                  reading their body; every other request is passed through.
--delay S         sleeps S seconds before forwarding each request.

Requests are forwarded with their method, path and query, headers (Host included, so
the registry's Location headers point back at the proxy) and body (Content-Length or
chunked); responses are streamed back. The first line on stdout is `PORT <port>`; each
request is logged to stderr as `METHOD PATH -> STATUS [note]`.
"""

import argparse
import http.client
import http.server
import json
import re
import sys
import threading
import time

# Headers that belong to one connection, not to the request or response.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
UPLOAD_PATH = re.compile(r"^/v2/.+/blobs/uploads/")
PIECE = 64 * 1024


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class ClientGone(Exception):
    """The client closed its connection or stopped sending."""


def client_reads(pieces):
    """`pieces`, with the socket errors of reading from the client as ClientGone."""
    try:
        yield from pieces
    except OSError as err:
        raise ClientGone(repr(err)) from err


def read_chunked(rfile):
    """Yields the decoded pieces of a chunked request body, trailers skipped."""
    while True:
        size_line = rfile.readline(65537)
        if not size_line:
            raise ClientGone("the client closed the connection mid-body")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return
        remaining = size
        while remaining:
            data = rfile.read(min(PIECE, remaining))
            if not data:
                raise ClientGone("the client closed the connection mid-chunk")
            remaining -= len(data)
            yield data
        rfile.readline(3)  # the CRLF after the chunk


def read_sized(rfile, length):
    """Yields `length` bytes of a request body, in pieces."""
    remaining = length
    while remaining:
        data = rfile.read(min(PIECE, remaining))
        if not data:
            raise ClientGone("the client closed the connection mid-body")
        remaining -= len(data)
        yield data


class Faults:
    def __init__(self, fail_uploads, delay):
        self.fail_uploads = fail_uploads
        self.delay = delay
        self.failed = 0
        self.lock = threading.Lock()

    def take_upload_failure(self):
        """The number of this injected failure (1-based), or None to pass through."""
        with self.lock:
            if self.failed < self.fail_uploads:
                self.failed += 1
                return self.failed
            return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faulty_proxy"
    upstream = None  # "host:port", set in main
    faults = None  # Faults, set in main
    timeout = 300  # idle keep-alive connections are dropped after this

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_request(self):
        try:
            self.proxy()
        except ClientGone as err:
            log(f"{self.command} {self.path} -> client gone ({err})")
            self.close_connection = True
        except Exception as err:  # the upstream or the client dropped mid-response
            log(f"{self.command} {self.path} -> aborted ({err!r})")
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_request

    def body(self):
        """The request body as an iterator of pieces, and its length if known."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return client_reads(read_chunked(self.rfile)), None
        length = int(self.headers.get("Content-Length") or 0)
        return client_reads(read_sized(self.rfile, length)), length

    def proxy(self):
        pieces, length = self.body()
        path = self.path.split("?", 1)[0]
        if self.command in ("PATCH", "PUT") and UPLOAD_PATH.match(path):
            number = self.faults.take_upload_failure()
            if number is not None:
                for _ in pieces:  # read the body, so the client sees an answer, not a reset
                    pass
                self.answer_error(
                    500,
                    "UNKNOWN",
                    f"faulty_proxy: injected upload failure {number} of "
                    f"{self.faults.fail_uploads}",
                    note="injected",
                )
                return
        if self.faults.delay:
            time.sleep(self.faults.delay)

        upstream = http.client.HTTPConnection(self.upstream, timeout=120)
        try:
            try:
                upstream.putrequest(
                    self.command, self.path, skip_host=True, skip_accept_encoding=True
                )
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        upstream.putheader(name, value)
                if length is None:
                    upstream.putheader("Transfer-Encoding", "chunked")
                elif length or self.command in ("POST", "PUT", "PATCH"):
                    upstream.putheader("Content-Length", str(length))
                upstream.endheaders()
                for data in pieces:
                    if length is None:
                        upstream.send(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        upstream.send(data)
                if length is None:
                    upstream.send(b"0\r\n\r\n")
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException) as err:
                # The registry is down or dropped the connection: answer as a gateway does.
                self.answer_error(502, "UNAVAILABLE", f"faulty_proxy: upstream: {err}", note=str(err))
                self.close_connection = True
                return
            self.relay(response)
        finally:
            upstream.close()

    def relay(self, response):
        """Streams `response` back to the client."""
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        length = response.getheader("Content-Length")
        chunked = not no_body and length is None
        if length is not None:
            self.send_header("Content-Length", length)
        elif no_body:
            self.send_header("Content-Length", "0")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        log(f"{self.command} {self.path} -> {response.status}")
        if no_body:
            return
        while True:
            data = response.read1(PIECE) if chunked else response.read(PIECE)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def answer_error(self, status, code, message, note):
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": {}}]}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        log(f"{self.command} {self.path} -> {status} ({note})")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        log(f"connection from {client_address}: {sys.exc_info()[1]!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the registry")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (0: any)")
    parser.add_argument("--fail-uploads", type=int, default=0, metavar="N")
    parser.add_argument("--delay", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args()

    Handler.upstream = args.upstream
    Handler.faults = Faults(args.fail_uploads, args.delay)
    server = Server(("127.0.0.1", args.port), Handler)
    sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
