"""Small helpers shared by the benchmarks (not part of the app)."""

import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, ".venv", "bin")
PYTHON = os.path.join(BIN, "python") if os.path.exists(os.path.join(BIN, "python")) else sys.executable


def migrate(database_url):
    """Run the real `tecken-pyramid migrate` against database_url."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECKEN_")}
    env["TECKEN_DATABASE_URL"] = database_url
    out = subprocess.run(
        [os.path.join(BIN, "tecken-pyramid"), "migrate", os.path.join(ROOT, "development.ini")],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"migrate failed: {out.stderr.strip()[-2000:]}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20.0, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(proc, timeout=10.0):
    """SIGTERM the process we started (by its pid), then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def rss_kib(pid):
    """(VmRSS, VmHWM) in KiB from /proc/PID/status."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":", 1)
                    values[name] = int(value.split()[0])
    except OSError:
        pass
    return values.get("VmRSS"), values.get("VmHWM")


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values):
    return statistics.median(values) if values else float("nan")


def fmt_ms(seconds):
    if seconds != seconds:  # NaN
        return "-"
    ms = seconds * 1000.0
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    return f"{ms * 1000:.0f} µs"


def table(headers, rows, aligns=None):
    """A plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if aligns is None:
        aligns = ["<"] + [">"] * (len(headers) - 1)
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, aligns, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- the services the benchmarks start -----------------------------------------------------------
class ServiceStack:
    """A context manager of started services: ``_start()`` on enter (``close()`` when it
    fails part-way, so nothing started is left running), ``close()`` on exit."""

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()


def set_test_aws_credentials():
    """moto accepts any credentials; boto3 (in the bench and the app) needs some."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def memcached_argv(port):
    """A memcached on loopback, no UDP (as root it must be told which user to run as)."""
    argv = [shutil.which("memcached") or "memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return argv


def start_memcached():
    """(process, port) of a fresh memcached; stop it with stop_process."""
    port = free_port()
    proc = subprocess.Popen(memcached_argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_port(port, proc=proc):
        stop_process(proc)
        raise RuntimeError("memcached did not start")
    return proc, port


def start_moto():
    """(server, port) of moto's S3 server over HTTP, in this process, without its access log."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    if not wait_for_port(port):
        raise RuntimeError("moto server did not start")
    return server, port
