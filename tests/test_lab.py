"""`make lab`: JupyterLab from .venv at the repository root, Neural_net.ipynb open, no news pop-up.

The test starts the server through `make lab` itself (LAB_ARGS adds a free port on 127.0.0.1, a
token and no browser), reads what a browser would get, and stops the whole process group.
"""
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from helpers import paths


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(server):
    """SIGTERM to make and JupyterLab (one process group), then wait until the group is gone; SIGKILL after 20 s."""
    for sig, seconds in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        deadline = time.monotonic() + seconds
        try:
            os.killpg(server.pid, sig)
            while time.monotonic() < deadline:
                server.poll()  # reaps make, which exits before JupyterLab has shut down
                os.killpg(server.pid, 0)
                time.sleep(0.2)
        except ProcessLookupError:  # nothing left of the group
            break
    server.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    port, token = free_port(), secrets.token_hex(16)
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}" + (" --allow-root" if os.geteuid() == 0 else ""))  # CI runs as root
    # A learner's own settings, workspaces and runtime files stay out of the test, and the test out of them.
    # Under `make test` this is a sub-make: drop the parent's make variables so that make runs as a user's would.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env = {**env, "JUPYTERLAB_SETTINGS_DIR": str(tmp / "user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = open(tmp / "lab.log", "w")
    # -o: the test runs inside .venv already; make must not reinstall it
    server = subprocess.Popen(["make", "-o", ".venv/.run-deps", "lab", f"LAB_ARGS={args}"], cwd=paths.ROOT,
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"make lab did not start JupyterLab: {(tmp / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield lambda path: json.load(urllib.request.urlopen(f"{url}{path}?token={token}", timeout=10)), tmp
    finally:
        stop(server)
        log.close()


def test_news_fetching_is_off(lab):
    get, _ = lab
    notification = get("/lab/api/settings/@jupyterlab/apputils-extension:notification")
    effective = {**{k: v["default"] for k, v in notification["schema"]["properties"].items()},
                 **notification["settings"]}
    assert effective["fetchNews"] == "false"  # "Never": JupyterLab does not ask, and fetches nothing


def test_root_is_the_repository_and_neural_net_is_opened(lab):
    get, tmp = lab
    assert get("/api/contents/notebooks/Neural_net.ipynb")["type"] == "notebook"  # served from the repository root
    assert {item["name"] for item in get("/api/contents")["content"]} >= {"notebooks", "helpers", "Makefile"}
    opened = "".join(p.read_text() for p in (tmp / "runtime").glob("jpserver-file-to-run-*-open.html"))
    assert "/lab/tree/notebooks/Neural_net.ipynb" in opened  # the page the browser is sent to
    echoed = " ".join((tmp / "lab.log").read_text().split("\\\n")).splitlines()  # make echoes the command
    command = next(line for line in echoed if line.startswith(".venv/bin/jupyter lab "))
    assert command.startswith(".venv/bin/jupyter lab ") and command.endswith(" notebooks/Neural_net.ipynb")
