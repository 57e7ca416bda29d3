"""HTTPS server, authentication and request dispatch like pveproxy/pvedaemon."""
from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import hmac
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import access as A
# access_api and cluster_api register the routes when imported
from . import access_api, cluster_api  # noqa: F401  pylint: disable=unused-import
from . import tls
from .resources import RawBody, ResourceCache
from .routes import ApiError, Context, find, validate

TICKET_LIFETIME = 7200
GRACE = 300
MAX_POST = 64 * 1024
COOKIE = "PVEAuthCookie"
TOKEN_PREFIX = "PVEAPIToken"
FORMAT_RE = re.compile(r"^/api2/+([a-z][a-z0-9]+)(/.*)?$")
WORLD_PATHS = {("GET", "/access/ticket"), ("POST", "/access/ticket"), ("GET", "/access/domains")}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def extract_auth_value(header: str | None, key: str) -> str | None:
    """PVE::APIServer::Formatter::extract_auth_value."""
    if not header:
        return None
    match = re.search(r"(?:^|\s)" + re.escape(key) + r"(?:=|:)([^;]*)", header)
    if not match or not match.group(1):
        return None
    return urllib.parse.unquote(match.group(1))


def decode_urlencoded(data: str) -> dict:
    result: dict = {}
    if not data:
        return result
    for pair in re.split(r"[&;]", data):
        if not pair:
            continue
        key, _sep, value = pair.partition("=")
        key = urllib.parse.unquote_plus(key)
        value = urllib.parse.unquote_plus(value)
        result[key] = f"{result[key]}\0{value}" if key in result else value
    return result


class Answer:  # pylint: disable=too-few-public-methods
    """What goes back to the client."""

    def __init__(self, status: int, reason: str, body: bytes | None, gzipped: bytes | None = None):
        self.status = status
        self.reason = reason
        self.body = body
        self.gzipped = gzipped
        self.drop = False
        self.delay = 0.0


def _reason(message: str) -> str:
    first = (message or "").split("\n", 1)[0]
    return first.encode("latin-1", "replace").decode("latin-1")


def json_answer(status: int, reason: str, payload) -> Answer:
    return Answer(status, reason, json.dumps(payload, separators=(",", ":")).encode())


def error_answer(exc: ApiError) -> Answer:
    if not exc.body:
        return Answer(exc.status, _reason(exc.message), None)
    payload = {"data": None, "message": exc.message}
    if exc.errors:
        payload["errors"] = exc.errors
    return json_answer(exc.status, _reason(exc.message), payload)


class Simulator:  # pylint: disable=too-many-instance-attributes
    """Everything behind the socket: state, auth, routing, faults."""

    def __init__(self, state):
        self.state = state
        self.resources = ResourceCache(state)
        self.fingerprint = tls.fingerprint(state.data["server"]["cert"])
        secrets_ = state.data["secrets"]
        self._ticket_key = bytes.fromhex(secrets_["ticket"])
        self._csrf_key = bytes.fromhex(secrets_["csrf"])
        self._faults_lock = threading.Lock()

    # -- tickets -------------------------------------------------------------
    def make_ticket(self, username: str) -> str:
        data = f"PVE:{username}:{int(time.time()):08X}"
        return f"{data}::{_b64(hmac.new(self._ticket_key, data.encode(), hashlib.sha256).digest())}"

    def verify_ticket(self, ticket: str | None):
        match = re.match(r"^(PVE:(\S+?):([0-9A-F]{8}))::(\S+)$", ticket or "")
        if not match:
            return None
        expected = _b64(hmac.new(self._ticket_key, match.group(1).encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, match.group(4)):
            return None
        age = time.time() - int(match.group(3), 16)
        if age < -GRACE or age > TICKET_LIFETIME:
            return None
        return match.group(2)

    def make_csrf(self, username: str) -> str:
        stamp = f"{int(time.time()):08X}"
        return f"{stamp}:{_b64(hmac.new(self._csrf_key, f'{stamp}:{username}'.encode(), hashlib.sha256).digest())}"

    def verify_csrf(self, username: str, token: str | None) -> bool:
        match = re.match(r"^([A-Z0-9]{8}):(\S+)$", token or "")
        if not match:
            return False
        digest = hmac.new(self._csrf_key, f"{match.group(1)}:{username}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_b64(digest), match.group(2)):
            return False
        age = time.time() - int(match.group(1), 16)
        return -GRACE <= age <= TICKET_LIFETIME

    def check_user_enabled(self, username: str) -> None:
        user = self.state.access["users"].get(username)
        if user is None:
            raise ApiError(401, f"no such user ('{username}')\n", body=False)
        if not user.get("enable"):
            raise ApiError(401, f"user '{username}' is disabled\n", body=False)
        if user.get("expire") and user["expire"] < time.time():
            raise ApiError(401, f"user '{username}' access expired\n", body=False)

    def verify_token(self, api_token: str) -> str:
        match = re.match(r"^(.*)=(.*)$", api_token)
        if not match:
            raise ApiError(401, "no tokenid specified\n", body=False)
        tokenid, value = match.group(1), match.group(2)
        parts = re.match(r"^(" + r"[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+" + r")!([A-Za-z][A-Za-z0-9.\-_]+)$", tokenid)
        if not parts:
            raise ApiError(401, f"'{tokenid}' is not a valid token ID - not able to split into user and token parts\n",
                           body=False)
        username, token = parts.group(1), parts.group(2)
        self.check_user_enabled(username)
        info = self.state.access["users"][username].get("tokens", {}).get(token)
        if info is None:
            raise ApiError(401, f"no such token '{token}' for user '{username}'\n", body=False)
        if info.get("expire") and info["expire"] < time.time():
            raise ApiError(401, f"token '{token}' access expired\n", body=False)
        if not hmac.compare_digest(info.get("hash", ""), A.hash_secret(value)):
            raise ApiError(401, "invalid token value!\n", body=False)
        return tokenid

    def authenticate(self, method: str, rel: str, headers) -> tuple:
        """auth_handler: returns (authid, is_token)."""
        cookie, auth = headers.get("Cookie"), headers.get("Authorization")
        ticket = extract_auth_value(cookie, COOKIE) or extract_auth_value(auth, COOKIE)
        api_token = None if ticket else extract_auth_value(auth, TOKEN_PREFIX)
        if (method, rel) in WORLD_PATHS:
            return None, bool(api_token)
        if api_token:
            return self.verify_token(api_token), True
        if not ticket:
            raise ApiError(401, "No ticket\n", body=False)
        username = self.verify_ticket(ticket)
        if username is None:
            raise ApiError(401, "permission denied - invalid PVE ticket\n", body=False)
        self.check_user_enabled(username)
        if method != "GET" and not self.verify_csrf(username, headers.get("CSRFPreventionToken")):
            raise ApiError(401, "Permission denied - invalid csrf token\n", body=False)
        return username, False

    # -- request faults ------------------------------------------------------
    def take_request_fault(self, method: str, rel: str):
        with self._faults_lock, self.state.lock:
            faults = self.state.data["faults"]["requests"]
            for fault in list(faults):
                if fault.get("method") and fault["method"].upper() != method:
                    continue
                if fault.get("path") and not re.search(fault["path"], rel):
                    continue
                fault["count"] = int(fault.get("count", 1)) - 1
                if fault["count"] <= 0:
                    faults.remove(fault)
                return dict(fault)
        return None

    # -- dispatch ------------------------------------------------------------
    def handle_api(self, method: str, path: str, query: str, body: bytes, headers) -> Answer:  # pylint: disable=too-many-return-statements,too-many-branches
        match = FORMAT_RE.match(path)
        if not match:
            return Answer(501, "no such uri", None)
        fmt, rel = match.group(1), match.group(2) or "/"
        if len(rel) > 1 and rel.endswith("/"):
            rel = rel.rstrip("/") or "/"
        try:
            authid, is_token = self.authenticate(method, rel, headers)
        except ApiError as exc:
            return error_answer(exc)
        if body and method not in ("PUT", "POST"):
            return Answer(501, f"Unexpected content for method '{method}'", None)
        if len(body) > MAX_POST:
            return Answer(501, "for data too large", None)
        if fmt != "json":
            return Answer(501, f"no formatter for uri {rel}, {fmt}", None)
        fault = self.take_request_fault(method, rel)
        if fault is not None:
            answer = self._fault_answer(fault)
            if answer is not None:
                return answer
        try:
            params = self._params(method, query, body, headers)
        except ValueError:
            return Answer(400, "bad request", None)
        latency = float(self.state.data["faults"].get("latency") or 0)
        if latency:
            time.sleep(latency)
        try:
            data = self.dispatch(method, rel, params, authid, is_token)
        except ApiError as exc:
            return error_answer(exc)
        if isinstance(data, RawBody):
            return Answer(200, "OK", bytes(data), data.gzipped)
        return json_answer(200, "OK", {"data": data})

    def _fault_answer(self, fault: dict):
        mode = fault.get("mode", "error")
        if mode == "timeout":
            time.sleep(float(fault.get("delay", 30)))
            answer = Answer(0, "", None)
            answer.drop = True
            return answer
        if mode == "drop":
            answer = Answer(0, "", None)
            answer.drop = True
            return answer
        if mode == "delay":
            time.sleep(float(fault.get("delay", 1)))
            return None
        status = int(fault.get("status", 500))
        message = fault.get("message") or "simulated failure"
        return error_answer(ApiError(status, message + "\n"))

    @staticmethod
    def _params(method: str, query: str, body: bytes, headers) -> dict:
        params: dict = {}
        if method in ("PUT", "POST") and body:
            ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json":
                loaded = json.loads(body.decode("utf-8"))
                if not isinstance(loaded, dict):
                    raise ValueError("json body must be an object")
                params = {k: v for k, v in loaded.items() if v is not None}
            else:
                params = decode_urlencoded(body.decode("utf-8"))
        params.update(decode_urlencoded(query))
        params.pop("_dc", None)
        return params

    def dispatch(self, method: str, rel: str, params: dict, authid, is_token: bool):
        entry, uri_params = find(method, rel)
        if entry is None:
            raise ApiError(501, f"Method '{method} {rel}' not implemented")
        for key in sorted(params):
            if key in uri_params and str(uri_params[key]) != str(params[key]):
                raise ApiError(400, "Parameter verification failed.\n",
                               {key: "duplicate parameter (already defined in URI) with conflicting values!"})
            uri_params[key] = params[key]
        if is_token and not entry.allowtoken:
            raise ApiError(403, f"Permission check failed (URI '{rel}' not available with API token, "
                                "need proper ticket.\n)\n")
        with self.state.lock:
            ctx = Context(self, authid, is_token)
            ctx.check_api2_permissions(entry.perm or {}, uri_params)
            if entry.proxyto:
                cluster_api.require_node(ctx, str(uri_params.get(entry.proxyto, "")))
            values = validate(entry, uri_params)
            return entry.handler(ctx, values)

    # -- simulator control (outside /api2) -------------------------------------
    def handle_control(self, method: str, path: str, body: bytes, headers) -> Answer:  # pylint: disable=too-many-return-statements
        try:
            authid, _is_token = self.authenticate("GET", "/pvesim", headers)
        except ApiError as exc:
            return error_answer(exc)
        if authid.split("!", 1)[0] != A.ROOT:
            return error_answer(ApiError(403, "Permission check failed (simulator control needs root@pam)\n"))
        try:
            payload = json.loads(body.decode("utf-8")) if body else {}
        except ValueError:
            return error_answer(ApiError(400, "invalid JSON body\n"))
        from . import control  # pylint: disable=import-outside-toplevel
        try:
            data = control.handle(self, method, path, payload)
        except ApiError as exc:
            return error_answer(exc)
        return json_answer(200, "OK", {"data": data})


class Handler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive with Content-Length like pveproxy."""

    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    timeout = 30
    sim: Simulator = None  # set by make_server

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self):
        method = self.command
        if method not in ("GET", "POST", "PUT", "DELETE"):
            self._send(Answer(501, f"method '{method}' not available", None))
            return
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding"):
            self._send(Answer(501, "chunked transfer encoding not supported", None))
            return
        body = self.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        if path.startswith("/api2"):
            answer = self.sim.handle_api(method, path, parsed.query, body, self.headers)
        elif path.startswith("/pvesim/"):
            answer = self.sim.handle_control(method, path, body, self.headers)
        else:
            answer = Answer(501, f"no such file '{path}'", None)
        self._send(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _serve

    def _send(self, answer: Answer):
        if answer.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        content = answer.body
        encoding = None
        accept = self.headers.get("Accept-Encoding") or ""
        if content and len(content) > 1024 and "gzip" in accept:
            level = 6 if len(content) < 256 * 1024 else 1  # big filtered answers: speed over ratio
            content = answer.gzipped or gzip.compress(content, compresslevel=level, mtime=0)
            encoding = "gzip"
        keep = answer.status < 400 and (self.headers.get("Connection") or "").lower() != "close"
        self.send_response_only(answer.status, answer.reason)
        now = email.utils.formatdate(usegmt=True)
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Connection", "Keep-Alive" if keep else "close")
        self.send_header("Date", now)
        self.send_header("Pragma", "no-cache")
        self.send_header("Server", self.server_version)
        if content:
            self.send_header("Content-Length", str(len(content)))
            self.send_header("Content-Type", "application/json;charset=UTF-8")
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Expires", now)
        # headers and body in one write: no Nagle/delayed-ACK stall between them
        self._headers_buffer.append(b"\r\n")
        payload = b"".join(self._headers_buffer) + (content or b"")
        self._headers_buffer = []
        self.wfile.write(payload)
        self.close_connection = not keep


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, sim: Simulator, context: ssl.SSLContext, verbose=False):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        self.verbose = verbose
        handler = type("BoundHandler", (Handler,), {"sim": sim})
        super().__init__(address, handler, bind_and_activate=False)
        self.context = context
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)
