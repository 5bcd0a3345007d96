"""Upload by download (SPEC §9 ``url=``) through the view, from a real local HTTP server
listed as ``http://127.0.0.1:PORT``; and ``tecken-pyramid upload``."""

import http.server
import json
import os
import subprocess
import threading

import pytest

from tecken_pyramid.models import Upload
from tests.conftest import ROOT
from tests.support.apps import create_user
from tests.support.uploads import make_token, make_zip, rows, sym_member

# The database kind changes nothing here: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
ARCHIVE = make_zip([sym_member("xul.pdb", DEBUG_ID)])


@pytest.fixture
def source():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/symbols.zip":
                self.send_response(200)
                self.send_header("Content-Length", str(len(ARCHIVE)))
                self.end_headers()
                self.wfile.write(ARCHIVE)
            elif self.path == "/hop":
                self.send_response(302)
                self.send_header("Location", "/symbols.zip")
                self.end_headers()
            elif self.path == "/elsewhere":
                self.send_response(302)
                self.send_header("Location", "https://unlisted.example.com/symbols.zip")
                self.end_headers()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def by_url(app, db, url):
    return app.post("/upload/", params={"url": url}, headers={"Auth-Token": make_token(db)}, status="*")


def test_a_listed_source_is_downloaded_and_stored(make_app, symbols_dir, db, source):
    app = make_app(symbol_urls=str(symbols_dir), upload_by_download_domains=source.url)
    response = by_url(app, db, f"{source.url}/hop")
    assert response.status_int == 201, response.text
    upload = response.json["upload"]
    assert upload["download_url"] == f"{source.url}/hop"
    assert upload["redirect_urls"] == [f"{source.url}/symbols.zip"]
    assert upload["filename"] == "symbols.zip"
    assert (symbols_dir / "v1" / "xul.pdb" / DEBUG_ID / "xul.sym").exists()


def test_a_redirect_to_an_unlisted_host_is_refused(make_app, symbols_dir, db, source):
    app = make_app(symbol_urls=str(symbols_dir), upload_by_download_domains=source.url)
    response = by_url(app, db, f"{source.url}/elsewhere")
    assert response.status_int == 400
    assert response.json == {"error": "Not an allowed domain ('unlisted.example.com') to download from."}
    assert rows(db, Upload) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.example.com:@127.0.0.1/symbols.zip",
        "https://user@allowed.example.com/symbols.zip",
    ],
)
def test_user_info_is_refused(make_app, symbols_dir, db, url):
    app = make_app(symbol_urls=str(symbols_dir), upload_by_download_domains="allowed.example.com")
    response = by_url(app, db, url)
    assert response.status_int == 400 and "user information" in response.json["error"]


def test_loopback_is_refused_unless_listed_with_its_port(make_app, symbols_dir, db, source):
    app = make_app(symbol_urls=str(symbols_dir), upload_by_download_domains="localhost")
    response = by_url(app, db, "https://localhost/symbols.zip")
    assert response.status_int == 400, response.text
    response = by_url(app, db, f"{source.url}/symbols.zip")
    assert response.status_int == 400 and response.json["error"] == "Insecure URL"


def test_upload_by_download_is_off_unless_domains_are_listed(local, db, source):
    response = by_url(local, db, f"{source.url}/symbols.zip")
    assert response.status_int == 400
    assert response.json == {"error": "Upload by download is not enabled on this server"}


def test_a_source_404_is_a_400(make_app, symbols_dir, db, source):
    app = make_app(symbol_urls=str(symbols_dir), upload_by_download_domains=source.url)
    response = by_url(app, db, f"{source.url}/missing.zip")
    assert response.status_int == 400 and "(404)" in response.json["error"]


# -- tecken-pyramid upload ------------------------------------------------------------------
def run_cli(*args, env):
    return subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "tecken-pyramid"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def cli_env(db, symbols_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECKEN_")}
    env.update(TECKEN_DATABASE_URL=db.url, TECKEN_SYMBOL_URLS=str(symbols_dir), TECKEN_ACCESS_LOG="false")
    return env


def test_the_upload_command_runs_the_same_pipeline(db, symbols_dir, tmp_path):
    create_user(db, "builder", "not-used-password", superuser=False)
    archive = tmp_path / "symbols.zip"
    archive.write_bytes(ARCHIVE)
    env = cli_env(db, symbols_dir)
    out = run_cli("upload", "development.ini", str(archive), "--username", "builder", env=env)
    assert out.returncode == 0, out.stderr
    upload = json.loads(out.stdout)["upload"]
    assert upload["user"] == "builder" and upload["status"] == "complete"
    assert [f["status"] for f in upload["files"]] == ["stored"]
    assert (symbols_dir / "v1" / "xul.pdb" / DEBUG_ID / "xul.sym").exists()
    again = run_cli("upload", "development.ini", str(archive), "--username", "builder", "--try", env=env)
    assert again.returncode == 0, again.stderr
    assert [f["status"] for f in json.loads(again.stdout)["upload"]["files"]] == ["skipped"]


def test_the_upload_command_refuses_a_bad_archive_in_one_line(db, symbols_dir, tmp_path):
    create_user(db, "builder", "not-used-password", superuser=False)
    archive = tmp_path / "symbols.zip"
    archive.write_bytes(b"not a zip")
    out = run_cli(
        "upload", "development.ini", str(archive), "--username", "builder", env=cli_env(db, symbols_dir)
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "upload refused (400)" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_upload_command_names_an_unknown_user(db, symbols_dir, tmp_path):
    archive = tmp_path / "symbols.zip"
    archive.write_bytes(ARCHIVE)
    out = run_cli(
        "upload", "development.ini", str(archive), "--username", "nobody", env=cli_env(db, symbols_dir)
    )
    assert out.returncode == 1 and "no active user named nobody" in out.stderr
