"""Helpers for the scale-out test: real ``pserve production.ini`` processes, Debian's
haproxy with ``deploy/haproxy.cfg``, memcached ``stats``, a tiny cookie-keeping console
client, and the real ``tecken-pyramid`` command line. No mocks: real sockets only.
"""

import csv
import html.parser
import http.client
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

from tests.conftest import ROOT, free_port

BIN = os.path.dirname(sys.executable)
PSERVE = os.path.join(BIN, "pserve")
CLI = os.path.join(BIN, "tecken-pyramid")
HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy.cfg")


def clean_env(**extra):
    """The test's environment without any TECKEN_/DJANGO_ setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TECKEN_", "DJANGO_")) or k.startswith("TECKEN_TEST_")
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(predicate, timeout, interval=0.05):
    """Poll ``predicate`` until it returns a truthy value; returns it, or None at the deadline."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def request(port, method, path, headers=None, body=None, timeout=20):
    """One request on a fresh connection: (status, {lower-case header: value}, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


class Process:
    """A subprocess whose output goes to a log file; killed in close() whatever happened."""

    name = "process"

    def __init__(self, log_dir):
        self.log_dir = str(log_dir)
        self.proc = None
        self.log = None
        self.log_path = None

    def _spawn(self, argv, env, label):
        self.log_path = os.path.join(self.log_dir, f"{label}.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def output(self):
        if self.log is not None:
            self.log.flush()
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def tail(self, lines=40):
        return "\n".join(self.output.splitlines()[-lines:])

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_port(self, port, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            if port_open(port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {port} within {timeout} s:\n{self.tail()}")

    def close(self, timeout=8.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log is not None:
            self.log.close()
            self.log = None


class AppProcess(Process):
    """``pserve production.ini http_port=N`` with the given environment."""

    def __init__(self, log_dir, env, label):
        super().__init__(log_dir)
        self.env = env
        self.port = free_port()
        self.name = f"pserve {label} (:{self.port})"
        self.label = label

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self._spawn([PSERVE, "production.ini", f"http_port={self.port}"], self.env, self.label)
        return self

    def wait_listening(self, timeout=30.0):
        self.wait_port(self.port, timeout)
        return self


class Haproxy(Process):
    """Debian's haproxy running deploy/haproxy.cfg, addresses from the environment."""

    name = "haproxy"

    def __init__(self, log_dir, apps):
        super().__init__(log_dir)
        self.port = free_port()
        self.stats_socket = os.path.join(self.log_dir, "haproxy-admin.sock")
        self.env = clean_env(
            TECKEN_LB_ADDRESS="127.0.0.1",
            TECKEN_LB_PORT=self.port,
            TECKEN_LB_LOG="stdout",
            TECKEN_LB_STATS_SOCKET=self.stats_socket,
            TECKEN_LB_UNPRIVILEGED="1",
            **{f"TECKEN_APP{n}": app.address for n, app in enumerate(apps, 1)},
        )

    @staticmethod
    def binary():
        if shutil.which("haproxy"):
            return shutil.which("haproxy")
        return "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None

    def check_config(self):
        out = subprocess.run(
            [self.binary(), "-c", "-f", HAPROXY_CFG], env=self.env, capture_output=True, text=True, timeout=30
        )
        return out.returncode, out.stdout + out.stderr

    def start(self):
        # -db: stay in the foreground (the test owns the process); -W: master-worker
        # as under systemd's -Ws.
        self._spawn([self.binary(), "-W", "-db", "-f", HAPROXY_CFG], self.env, "haproxy")
        self.wait_port(self.port, 15)
        return self

    def admin(self, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.stats_socket)
            s.sendall(command.encode() + b"\n")
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self):
        """{server name: row of `show stat`} for the tecken backend's servers."""
        text = self.admin("show stat").lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row
            for row in rows
            if row.get("pxname") == "tecken" and row.get("svname") not in ("BACKEND", "FRONTEND")
        }

    def all_up(self):
        servers = self.servers()
        return bool(servers) and all(row["status"] == "UP" for row in servers.values())


def memcached_stats(port):
    """memcached's ``stats`` as a dict of ints (where numeric)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    stats = {}
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            try:
                stats[parts[1]] = int(parts[2])
            except ValueError:
                stats[parts[1]] = parts[2]
    return stats


def memcached_get(port, key):
    """The raw value of ``key`` on one memcached server, or None."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(f"get {key}\r\n".encode())
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"VALUE "):
        return None
    header, _, rest = data.partition(b"\r\n")
    length = int(header.split()[3])
    return rest[:length]


def run_cli(env, *args, input=None, timeout=60):
    """The real ``tecken-pyramid`` command line: a CompletedProcess (text)."""
    return subprocess.run(
        [CLI, *args], cwd=ROOT, env=env, input=input, capture_output=True, text=True, timeout=timeout
    )


# -- the console over real HTTP --------------------------------------------------------------------
class _Forms(html.parser.HTMLParser):
    """Collects each form's action and its hidden inputs."""

    def __init__(self):
        super().__init__()
        self.forms = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": attrs.get("action", ""), "method": attrs.get("method", "get"), "fields": {}}
            )
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value") or ""


def forms_of(page):
    parser = _Forms()
    parser.feed(page.decode("utf-8", "replace"))
    return parser.forms


class ConsoleClient:
    """Keeps the session cookie across requests to any of the given ports (host-only
    cookies ignore the port, as browsers do)."""

    def __init__(self):
        self.cookies = {}

    def _headers(self, extra=None):
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, response_headers_list):
        for name, value in response_headers_list:
            if name.lower() != "set-cookie":
                continue
            pair = value.split(";", 1)[0]
            key, _, val = pair.partition("=")
            attrs = value.lower()
            if "max-age=0" in attrs or "expires=thu, 01 jan 1970" in attrs or not val:
                self.cookies.pop(key.strip(), None)
            else:
                self.cookies[key.strip()] = val.strip()

    def send(self, port, method, path, form=None):
        body = None
        headers = {}
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=self._headers(headers))
            response = conn.getresponse()
            data = response.read()
            self._keep(response.getheaders())
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def login(self, port, username, password):
        status, _, page = self.send(port, "GET", "/admin/login")
        assert status == 200, (status, page[:300])
        form = next(f for f in forms_of(page) if f["action"].endswith("/admin/login"))
        fields = dict(form["fields"])
        fields.update(username=username, password=password)
        return self.send(port, "POST", "/admin/login", fields)

    def post_form(self, port, page_path, action_suffix, values):
        """GET ``page_path``, take the form whose action ends with ``action_suffix``
        (its hidden inputs, CSRF token included), fill ``values`` and POST it."""
        status, _, page = self.send(port, "GET", page_path)
        assert status == 200, (status, page[:300])
        form = next(f for f in forms_of(page) if f["action"].endswith(action_suffix))
        fields = dict(form["fields"])
        fields.update(values)
        return self.send(port, "POST", form["action"], fields)
