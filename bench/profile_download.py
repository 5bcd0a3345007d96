"""Profile the download path of a running ``pserve`` under load with py-spy.

    .venv/bin/python bench/profile_download.py [--duration 8] [--only c,d]

For each case -- (c) memcached hit -> 302, (d) cached miss -> 404 (guard already
set), (e) extension not allowed -- it starts the same server as bench/download.py,
loads it with wrk and samples it with ``py-spy record --format raw`` meanwhile,
then prints the top functions of waitress's request threads by inclusive and by
own (self) share of samples. Frames are shown as ``function (file)``.
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import download  # noqa: E402
from benchlib import BIN, table  # noqa: E402

CASES = {
    "c": ("memcached hit -> 302", download.FOUND_PATH, 302),
    "d": ("cached miss -> 404, guard already set", download.MISSING_PATH, 404),
    "e": ("extension not allowed -> 404", download.EXT_PATH, 404),
}
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frame_label(frame):
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "tecken_pyramid/", "lib/python3.11/"):
        if marker in path:
            path = (
                path.split(marker, 1)[1]
                if marker != "tecken_pyramid/"
                else "tecken_pyramid/" + path.split(marker, 1)[1]
            )
            break
    return f"{m['func']} ({path})"


def summarise(raw_path, top):
    inclusive, own = collections.Counter(), collections.Counter()
    total = 0
    with open(raw_path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit() or "handler_thread" not in stack:
                continue  # only waitress's request threads
            frames = [frame_label(fr) for fr in stack.split(";")]
            # Drop the idle wait of a worker between requests.
            if frames[-1].startswith(("wait (threading", "wait (waitress")):
                continue
            n = int(count)
            total += n
            own[frames[-1]] += n
            for fr in set(frames):
                inclusive[fr] += n
    rows_inc = [(f"{100 * n / total:.1f}%", fr) for fr, n in inclusive.most_common(top)]
    rows_own = [(f"{100 * n / total:.1f}%", fr) for fr, n in own.most_common(top)]
    return total, rows_inc, rows_own


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--only", default="c,d")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    pyspy = os.path.join(BIN, "py-spy")
    if not os.path.exists(pyspy):
        sys.exit("bench/profile_download.py: py-spy is not installed (.venv/bin/pip install py-spy)")
    with download.Services() as services:
        for key in args.only.split(","):
            label, path, status = CASES[key]
            with download.Server("tecken", services) as server:
                download.wait_rules_loaded(server)
                for _ in range(2):
                    got, _headers = server.request("GET", path)
                    assert got == status, (key, got)
                raw = os.path.join(services.tmp, f"profile-{key}.txt")
                load = threading.Thread(
                    target=download.run_wrk, args=(server.base + path, args.duration + 2, 16), daemon=True
                )
                load.start()
                subprocess.run(
                    [
                        pyspy,
                        "record",
                        "-p",
                        str(server.proc.pid),
                        "-d",
                        str(args.duration),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        raw,
                        "--nonblocking",
                        "--gil",
                    ],
                    check=True,
                    capture_output=True,
                )
                load.join()
                total, rows_inc, rows_own = summarise(raw, args.top)
            print(f"\n## ({key}) {label}: {total} samples of request threads\n")
            print("inclusive (the function and what it calls):\n")
            print(table(["share", "function"], rows_inc, ["<", "<"]))
            print("\nown (samples in the function itself):\n")
            print(table(["share", "function"], rows_own, ["<", "<"]))


if __name__ == "__main__":
    main()
