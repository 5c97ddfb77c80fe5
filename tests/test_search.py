"""The search command: paired seeds, one change per row, every run in its database, resumable."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import db, experiments, model_io, paths, pipeline, search

TINY = dict(pipeline.RECIPES["conv"], channels=(2, 4), hidden=(8,), n_train=200, epochs=1)
LADDERS = {"tiny": [("base", None, TINY), ("lr 0.1", "base", dict(lr=0.1)), ("2 epochs", "lr 0.1", dict(epochs=2))]}


def _run(mnist, tmp_path, **kw):
    return search.search(mnist, ladders=LADDERS, seeds=(0, 1), db_path=tmp_path / "s.db",
                         results_path=tmp_path / "r.json", processes=1, progress=False, **kw)


def _count(path):
    conn = db.connect(path, readonly=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


def test_each_row_is_its_base_with_one_change():
    rows = search.recipes(LADDERS["tiny"])
    assert rows[1][3] == {**TINY, "lr": 0.1} and rows[2][3] == {**TINY, "lr": 0.1, "epochs": 2}
    with pytest.raises(ValueError, match="a base must come before its row"):
        search.recipes([("a", "b", {}), ("b", None, TINY)])
    with pytest.raises(ValueError, match="names must be unique"):
        search.recipes([("a", None, TINY), ("a", None, TINY)])


def test_every_run_is_recorded_and_a_second_search_trains_nothing(mnist, tmp_path, monkeypatch):
    out = _run(mnist, tmp_path)
    assert _count(tmp_path / "s.db") == 6
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["command"] == "python -m helpers search" and written["date"] and written["commit"]
    rows = written["ladders"]["tiny"]
    assert [r["name"] for r in rows] == ["base", "lr 0.1", "2 epochs"]
    assert [[run["seed"] for run in r["runs"]] for r in rows] == [[0, 1]] * 3
    assert rows[2]["recipe"]["epochs"] == 2 and len(rows[2]["runs"][0]["history"]["valid_acc"]) == 2
    assert all(0 <= run["valid_accuracy"] <= 1 for r in rows for run in r["runs"])
    # the run's figure is the one in the database
    conn = db.connect(tmp_path / "s.db", readonly=True)
    stored = dict(conn.execute("SELECT id, valid_accuracy FROM runs").fetchall())
    conn.close()
    assert all(stored[run["run_id"]] == run["valid_accuracy"] for r in rows for run in r["runs"])

    def no_training(*args, **kwargs):
        raise AssertionError("a run already in the database was trained again")
    monkeypatch.setattr(experiments, "_train", no_training)
    again = _run(mnist, tmp_path)
    assert _count(tmp_path / "s.db") == 6
    assert again["ladders"] == out["ladders"]


def test_a_new_seed_or_a_changed_recipe_trains_only_what_is_new(mnist, tmp_path):
    _run(mnist, tmp_path)
    search.search(mnist, ladders=LADDERS, seeds=(0, 1, 2), db_path=tmp_path / "s.db",
                  results_path=tmp_path / "r.json", processes=1, progress=False)
    assert _count(tmp_path / "s.db") == 9
    changed = {"tiny": LADDERS["tiny"][:2] + [("3 epochs", "lr 0.1", dict(epochs=3))]}
    search.search(mnist, ladders=changed, seeds=(0,), db_path=tmp_path / "s.db", results_path=tmp_path / "r.json",
                  processes=1, progress=False)
    assert _count(tmp_path / "s.db") == 10


def test_an_interrupted_search_keeps_its_finished_runs_and_resumes(mnist, tmp_path, monkeypatch):
    real, calls = experiments._train, []

    def interrupted_second(job):
        calls.append(job)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)
    monkeypatch.setattr(experiments, "_train", interrupted_second)
    with pytest.raises(KeyboardInterrupt):
        _run(mnist, tmp_path)
    assert _count(tmp_path / "s.db") == 1
    written = json.loads((tmp_path / "r.json").read_text())  # whole JSON, with the one finished run
    assert sum(len(r["runs"]) for r in written["ladders"]["tiny"]) == 1
    monkeypatch.setattr(experiments, "_train", real)
    _run(mnist, tmp_path)
    assert _count(tmp_path / "s.db") == 6


def test_the_table_pairs_the_seeds_and_says_when_a_change_is_within_the_spread():
    def row(name, base, accs):
        return dict(name=name, base=base, changes={}, recipe={"epochs": 1},
                    runs=[dict(seed=s, valid_accuracy=a, train_seconds=60.0) for s, a in enumerate(accs)])
    content = {"seeds": [0, 1], "ladders": {"f": [row("a", None, [0.990, 0.992]), row("b", "a", [0.993, 0.995]),
                                                  row("c", "b", [0.996, 0.994]), row("d", "a", [0.9905, 0.9915]),
                                                  row("e", None, [0.9951, 0.9952]), row("f", "e", [0.9949, 0.9944])]}}
    t = search.table(content, "f")
    assert t.loc["b", "change"] == pytest.approx(0.3) and t.loc["b", "beyond spread"] == "yes"
    assert t.loc["c", "change min"] == pytest.approx(-0.1) and t.loc["c", "beyond spread"] == "no"  # signs differ
    assert t.loc["d", "beyond spread"] == "no"  # +0.05 and -0.05: no result
    # -0.02 and -0.08: a mean change of 0.05 points, equal to f's spread (in floats 0.0500000000000043 against
    # 0.0499999999999972): not larger, so no result
    assert t.loc["f", "change"] == pytest.approx(-0.05) and t.loc["f", "beyond spread"] == "no"
    assert np.isnan(t.loc["a", "change"]) and t.loc["a", "minutes"] == 1.0


def test_the_command_refuses_an_unknown_ladder_before_training():
    out = subprocess.run([sys.executable, "-m", "helpers", "search", "--only", "nope"], capture_output=True,
                         text=True, cwd=paths.ROOT)
    assert out.returncode == 1 and "error: --only: no ladder ['nope']" in out.stderr and "Traceback" not in out.stderr


def test_the_shipped_ladders_are_one_change_per_row():
    for family, ladder in search.LADDERS.items():
        for name, base, changes in ladder[1:]:
            assert base is not None and len(changes) == 1, (family, name)


@pytest.mark.parametrize("text, message", [(None, "no results yet; `python -m helpers search` writes them"),
                                           ("{not json", "not a results file of the search"),
                                           ('{"command": "x"}', "it needs command, commit, date, seeds and ladders")])
def test_a_missing_or_broken_results_file_is_named(tmp_path, text, message):
    path = tmp_path / "r.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        search.load(path)


def test_load_reads_what_search_wrote(mnist, tmp_path):
    out = _run(mnist, tmp_path)
    assert search.load(tmp_path / "r.json")["ladders"] == json.loads(json.dumps(out["ladders"]))


def test_a_final_model_is_tested_once_recorded_and_carries_its_recipes_validation(mnist, tmp_path, monkeypatch):
    monkeypatch.setitem(pipeline.RECIPES, "tiny-final", {**TINY, "lr": 0.1})  # the ladder's row "lr 0.1"
    _run(mnist, tmp_path)
    run = search.final(mnist, "tiny-final", save=tmp_path / "m.npz", ladders=LADDERS, db_path=tmp_path / "s.db",
                       results_path=tmp_path / "r.json", progress=False)
    assert run["metrics"]["n_train"] == 200 and run["config"]["final"]  # n_train of all 60,000: the first 200
    content = search.load(tmp_path / "r.json")
    entry = content["finals"]["tiny-final, seed 0"]
    row = content["ladders"]["tiny"][1]
    assert entry["test_accuracy"] == run["metrics"]["test_accuracy"] and entry["commit"]
    assert entry["valid_accuracy"] == pytest.approx(np.mean([r["valid_accuracy"] for r in row["runs"]]))
    assert entry["valid_source"] == "the tiny ladder's row 'lr 0.1', the mean of seeds 0, 1"
    assert (tmp_path / "m.npz").is_file() and _count(tmp_path / "s.db") == 7
    assert model_io.saved_valid_accuracy(tmp_path / "m.npz") == pytest.approx(entry["valid_accuracy"])
    assert model_io.saved_valid_source(tmp_path / "m.npz").startswith("the tiny ladder's row 'lr 0.1'")


def test_the_rule_keeps_only_changes_beyond_the_spread_on_kept_bases():
    def row(name, base, accs, lr):
        return dict(name=name, base=base, changes={}, recipe={"epochs": 1, "lr": lr},
                    runs=[dict(seed=s, valid_accuracy=a, train_seconds=60.0) for s, a in enumerate(accs)])
    ladder = [row("a", None, [0.990, 0.992], 1), row("b", "a", [0.9905, 0.9925], 2),  # +0.05: within the spread
              row("c", "b", [0.999, 0.999], 3),  # beyond, but its base was not kept
              row("d", "a", [0.995, 0.996], 4), row("e", "d", [0.9955, 0.9935], 5)]  # d kept; e within
    assert search.chosen({"seeds": [0, 1], "ladders": {"f": ladder}}, "f") == ("d", {"epochs": 1, "lr": 4})
    assert search.chosen({"seeds": [0, 1], "ladders": {"f": ladder[:3]}}, "f") == ("a", {"epochs": 1, "lr": 1})


def test_the_shipped_recipes_are_the_ones_the_committed_results_choose():
    content = search.load(paths.ROOT / "results" / "search.json")
    for family in ("conv", "conv-long"):
        name, recipe = search.chosen(content, family)
        assert json.loads(json.dumps(pipeline.RECIPES[family])) == recipe, (family, name)


def test_training_one_ladder_or_other_seeds_keeps_every_ladder_and_seed_in_the_results(mnist, tmp_path):
    ladders = {**LADDERS, "other": [("o", None, {**TINY, "lr": 0.2})]}
    search.search(mnist, ladders=ladders, seeds=(0,), db_path=tmp_path / "s.db", results_path=tmp_path / "r.json",
                  processes=1, progress=False)
    out = search.search(mnist, ladders=ladders, seeds=(1,), only=["other"], db_path=tmp_path / "s.db",
                        results_path=tmp_path / "r.json", processes=1, progress=False)
    assert _count(tmp_path / "s.db") == 5  # 4 rows with seed 0, then only "other" with seed 1
    written = search.load(tmp_path / "r.json")
    assert written["seeds"] == [0, 1] and written["ladders"] == json.loads(json.dumps(out["ladders"]))
    assert [[r["seed"] for r in row["runs"]] for row in written["ladders"]["tiny"]] == [[0], [0], [0]]
    assert [r["seed"] for r in written["ladders"]["other"][0]["runs"]] == [0, 1]
