"""The Makefile's promises beyond `make lab` (test_lab.py): `make run` executes each notebook with its
kernel over IPC, so no "running over TCP" warning; and .venv's own JupyterLab settings hold the project's
overrides, so `.venv/bin/jupyter lab`, not only `make lab`, asks nothing about Jupyter news."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from helpers import paths

BIN = Path(sys.executable).parent  # .venv/bin under `make test`


def make(args, stdin="", **env):
    """make args at the repository root, as a user's shell would run it (not as a sub-make of `make test`)."""
    base = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", *args], input=stdin, capture_output=True, text=True, cwd=paths.ROOT,
                          env={**base, **env}, timeout=300)


def execute(notebook, tmp):
    """The Makefile's own `execute` recipe (what `make run` runs per notebook) on another notebook."""
    rule = f"executed:\n\t$(call execute,{notebook})\n"
    return make(["-s", "-f", "Makefile", "-f", "-", f"BIN={BIN}", "executed"], stdin=rule, TMPDIR=str(tmp))


def test_make_run_executes_a_notebook_over_ipc_without_the_tcp_warning(tmp_path):
    folder, temporary = tmp_path / "sub", tmp_path / "tmp"  # the kernel runs in sub, make at the root
    folder.mkdir()
    temporary.mkdir()
    code = "import json, ipykernel\nprint(6 * 7)\nprint(json.load(open(ipykernel.get_connection_file()))['transport'])"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), folder / "tiny.ipynb")
    out = execute(folder / "tiny.ipynb", temporary)
    assert out.returncode == 0, out.stderr
    assert "running over TCP" not in out.stderr + out.stdout and "WARNING" not in out.stderr, out.stderr
    (printed,) = nbformat.read(folder / "tiny.ipynb", as_version=4).cells[0].outputs
    assert printed["text"] == "42\nipc\n"  # executed in place, by a kernel on IPC sockets
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.ipynb"]  # no socket left beside the notebook
    assert list(temporary.iterdir()) == []  # nor the private folder of the sockets


def test_a_failing_notebook_fails_make_run_and_leaves_no_socket_folder(tmp_path):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")]), tmp_path / "bad.ipynb")
    (tmp_path / "tmp").mkdir()
    out = execute(tmp_path / "bad.ipynb", tmp_path / "tmp")
    assert out.returncode != 0 and "ZeroDivisionError" in out.stderr
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_venv_gets_the_lab_overrides_and_its_jupyterlab_reads_them(tmp_path):
    venv = tmp_path / "venv"  # a stand-in .venv: only the rule that installs the settings runs
    out = make(["-o", f"{venv}/.run-deps", f"VENV={venv}", f"{venv}/share/jupyter/lab/settings/overrides.json"])
    assert out.returncode == 0, out.stderr
    project = json.loads((paths.ROOT / "lab-settings" / "overrides.json").read_text())
    assert project["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"  # never ask, never fetch
    assert json.loads((venv / "share/jupyter/lab/settings/overrides.json").read_text()) == project
    # The environment running this test, set up by make: where its JupyterLab looks, the same settings
    from jupyterlab.labapp import LabApp

    installed = Path(LabApp().app_settings_dir) / "overrides.json"
    assert installed.is_file(), f"{installed}: missing; `make` installs it when it sets up .venv"
    assert json.loads(installed.read_text()) == project
