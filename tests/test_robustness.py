"""Any clone, any file: paths that mean the same everywhere, and an empty database in the viewer."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import db, paths


def test_shown_paths_are_relative_to_the_repository_when_inside_it(tmp_path):
    assert paths.shown(paths.ROOT / "models" / "default.npz") == os.path.join("models", "default.npz")
    assert paths.shown(tmp_path / "m.npz") == str(tmp_path / "m.npz")  # outside: as given


@pytest.mark.parametrize("value, expected", [
    ("runs/my.db", paths.ROOT / "runs" / "my.db"),
    ("~/my.db", Path.home() / "my.db"),
    ("/abs/my.db", Path("/abs/my.db")),
])
def test_environment_paths_are_resolved_against_the_repository(monkeypatch, value, expected):
    monkeypatch.setenv("NN_DB_PATH", value)
    assert paths.from_env("NN_DB_PATH", "unused") == expected


def test_a_relative_nn_db_path_names_the_same_file_from_any_folder(monkeypatch):
    monkeypatch.setenv("NN_DB_PATH", "runs/my.db")
    code = "from helpers import paths; print(paths.DB_PATH)"
    seen = {subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                           check=True).stdout.strip() for cwd in (paths.ROOT, paths.ROOT / "notebooks", "/")}
    assert seen == {str(paths.ROOT / "runs" / "my.db")}  # the command line and a notebook kernel agree


def test_database_view_on_an_empty_database_says_there_are_no_runs(tmp_path, monkeypatch):
    db.connect(tmp_path / "database.db").close()  # the tables, and no run
    monkeypatch.setenv("NN_DB_PATH", str(tmp_path / "database.db"))
    nb = nbformat.read(paths.ROOT / "notebooks" / "Database_view.ipynb", as_version=4)
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.output_type == "error"]
    assert errors[0].traceback == [f"DatabaseFileError: {tmp_path / 'database.db'}: no runs yet. {db.HOW_TO_RUN}"]
