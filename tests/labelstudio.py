"""A real Label Studio server on 127.0.0.1, and the few HTTP API calls a review round trip takes.

Label Studio is installed by ``make test`` into its own virtualenv (``.venv-labelstudio``) so its
pins cannot clash with ours. The server starts with a fresh data folder (SQLite), an admin user
and a legacy API token (enabled by ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN``; newer servers issue
personal access tokens only through the UI).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from standalone import ROOT, free_port

BINARY = os.environ.get("SPARKNOISE_LABEL_STUDIO", os.path.join(ROOT, ".venv-labelstudio", "bin", "label-studio"))
TOKEN = "sparknoise-test-token-0123456789"


class LabelStudio:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers={
            "Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read() or b"null")


def _wait_for_install(timeout: float = 900) -> None:
    """`make test` installs Label Studio in the background while the first tests run: wait for it."""
    stamp = os.path.join(ROOT, ".venv-labelstudio", ".installed-stamp")
    if "SPARKNOISE_LABEL_STUDIO" in os.environ or os.path.exists(stamp):
        return
    deadline = time.time() + timeout
    while not os.path.exists(stamp):
        if time.time() > deadline:
            log = os.path.join(ROOT, ".venv-labelstudio.log")
            tail = open(log).read()[-2000:] if os.path.exists(log) else "(no install log: run make label-studio)"
            raise RuntimeError(f"Label Studio is not installed in .venv-labelstudio: {tail}")
        time.sleep(2)


@contextmanager
def label_studio_server(folder: str):
    """Start Label Studio; yield a :class:`LabelStudio` client once /health answers; stop it."""
    _wait_for_install()
    port = free_port()
    env = dict(os.environ, LABEL_STUDIO_BASE_DATA_DIR=folder, LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
               DJANGO_DB="sqlite")
    log = open(os.path.join(folder, "server.log"), "w")
    proc = subprocess.Popen([BINARY, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
                             "--username", "reviewer@example.com", "--password", "sparknoise-pw-1",
                             "--user-token", TOKEN], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                raise RuntimeError("Label Studio did not start: " + open(os.path.join(folder, "server.log")).read()[-3000:])
            time.sleep(1)
        yield LabelStudio(url)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
