"""The notebooks run top to bottom, headless, with no errors or warnings, and write what they promise."""
import json
import sqlite3

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import model_io, nn, paths, pipeline, search

NOTEBOOKS = paths.ROOT / "notebooks"


def execute(name, cwd):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def assert_clean(nb):
    for out in outputs(nb):
        assert out.output_type != "error", out
        assert not (out.output_type == "stream" and out.name == "stderr"), out.text
        assert "Warning" not in json.dumps(out.get("data", {})) + out.get("text", ""), out


@pytest.fixture(scope="module")
def executed(background):
    """Neural_net.ipynb run as JupyterLab would from notebooks/ (started with the session, see conftest.py),
    writing to a temporary database and model file; then Database_view.ipynb from the repository root."""
    nb, tmp = background.result("executed")
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits these variables
        mp.setenv("NN_DB_PATH", str(tmp / "database.db"))
        viewer = execute("Database_view.ipynb", cwd=paths.ROOT)
    return nb, viewer, tmp


@pytest.fixture(scope="module")
def executed_conv(background):
    """Conv_net.ipynb run from the repository root, writing to its own temporary database and model."""
    return background.result("executed_conv")


@pytest.fixture(scope="module")
def drawing(executed, executed_conv, tmp_path_factory):
    """Draw.ipynb run from notebooks/ with the MLP of Neural_net.ipynb and the ConvNet of Conv_net.ipynb."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NN_MODELS_DIR", str(tmp_path_factory.mktemp("draw")))  # none of this checkout's models/
        mp.setenv("NN_MODEL_PATH", str(executed[2] / "model.npz"))
        mp.setenv("NN_CONV_MODEL_PATH", str(executed_conv[1] / "conv.npz"))
        return execute("Draw.ipynb", cwd=NOTEBOOKS)


def test_neural_net_runs_clean_and_writes_two_runs(executed):
    nb, _, tmp = executed
    assert_clean(nb)
    conn = sqlite3.connect(tmp / "database.db")
    runs = conn.execute("SELECT name, n_train, valid_accuracy, test_accuracy, reported_split FROM runs "
                        "ORDER BY id").fetchall()
    splits = conn.execute("SELECT run_id, split, COUNT(*) FROM predictions GROUP BY run_id, split "
                          "ORDER BY run_id, split").fetchall()
    conn.close()
    (base_name, base_n, base_valid, base_test, base_split), (name, n, valid, test, split) = runs
    # The baseline: trained on 1,000 images, validated, and measured once on the test set.
    assert (base_name, base_n, base_split) == ("baseline", 1000, "test") and base_valid < 0.9
    # The final model: the default recipe on all 60,000 images, so nothing is left to validate on.
    assert (name, n, valid, split) == ("default", 60000, None, "test") and test >= 0.985
    assert splits == [(1, "test", 10000), (1, "train", 1000), (1, "valid", 10000), (2, "test", 10000)]
    printed = "".join(out.get("text", "") for out in outputs(nb))
    assert f"Final test accuracy: {test:.2%}" in printed  # the notebook reports what it stored
    assert f"baseline: test accuracy {base_test:.2%}" in printed
    assert "this is pipeline.RECIPES['default']: True" in printed  # the chain of changes is the default recipe
    assert "all 203,530 weights and biases are identical" in printed  # the loop written out is training.fit
    assert printed.count("correct: ") == 6 and printed.count("not yet: ") == 6  # exercises and their solutions
    # Saved with the validation of its recipe before the final training: the three seeds of the default row.
    assert model_io.saved_valid_source(tmp / "model.npz") == (
        "validated in this session: recipe default, mean of seeds 0, 1, 2, trained on 50,000 images, validated on "
        "the last 10,000")
    assert 0.985 <= model_io.saved_valid_accuracy(tmp / "model.npz") < 1
    assert model_io.saved_test_accuracy(tmp / "model.npz") == pytest.approx(test)


def test_database_view_runs_clean(executed):
    _, viewer, tmp = executed
    assert_clean(viewer)
    assert sum(1 for out in outputs(viewer) if "image/png" in out.get("data", {})) >= 7
    assert str(tmp) not in json.dumps([out for out in outputs(viewer)])  # no path of this machine saved
    conn = sqlite3.connect(tmp / "database.db")  # the self-join's counts, recomputed here without SQL joins
    (base,), (final,) = conn.execute("SELECT id FROM runs ORDER BY id").fetchall()
    query = "SELECT idx, predicted = label FROM predictions WHERE run_id = ? AND split = 'test'"
    right = {run: dict(conn.execute(query, (run,)).fetchall()) for run in (base, final)}
    conn.close()
    fixed = sum(right[final][i] and not right[base][i] for i in right[base])
    broken = sum(right[base][i] and not right[final][i] for i in right[base])
    printed = "".join(out.get("text", "") for out in outputs(viewer))
    assert f"the baseline got wrong and the final model right: {fixed}; the reverse: {broken}" in printed
    assert "same margins as SQL: True" in printed
    assert "same as SQL: True" in printed  # the pandas top-3 confusions equal the window function's
    explorer = outputs(viewer)[-1]["data"]  # the live widget, and what a page without a kernel shows
    assert "application/vnd.jupyter.widget-view+json" in explorer and "image/png" in explorer
    assert explorer["text/plain"].startswith(f"[Explorer: it needs a running kernel. What it shows first: Run {final}")


def test_conv_net_runs_clean_and_writes_its_final_model(executed_conv):
    import re  # only this test parses printed numbers

    from helpers import model_io

    nb, tmp = executed_conv
    assert_clean(nb)
    printed = "".join(out.get("text", "") for out in outputs(nb))
    conn = sqlite3.connect(tmp / "database.db")
    (name, n, valid, test, split, config), = conn.execute(
        "SELECT name, n_train, valid_accuracy, test_accuracy, reported_split, config FROM runs").fetchall()
    splits = conn.execute("SELECT split, COUNT(*) FROM predictions GROUP BY split").fetchall()
    conn.close()
    assert (name, n, valid, split) == ("conv", 60000, None, "test") and test >= 0.99  # the text: past 99%
    assert json.loads(config)["kind"] == "conv" and splits == [("test", 10000)]
    assert f"Final test accuracy: {test:.2%}" in printed
    model = model_io.load_model(tmp / "conv.npz")
    assert model.architecture["channels"] == [16, 32]
    # The final model stores its recipe's validation accuracy from the search's committed results file
    content = search.load()
    figure, source = search.validation(content, pipeline.RECIPES["conv"])
    assert model_io.saved_valid_accuracy(tmp / "conv.npz") == pytest.approx(figure)
    assert model_io.saved_valid_source(tmp / "conv.npz") == f"{source} (results/search.json)"
    assert f"pipeline.RECIPES['conv'] is {source}: validation accuracy {figure:.2%}" in printed
    assert "same as the loop: True" in printed and "output of the moved digit == the output, moved: True" in printed
    sides = list(map(float, re.findall(r"<(?:im2col\(x\), G|x, col2im\(G\))> = (-?[\d.]+)", printed)))
    assert len(sides) == 4 and all(abs(lhs - rhs) < 1e-8 for lhs, rhs in zip(sides[::2], sides[1::2]))  # stride 1, 2
    assert "same weights: True | same probabilities: True | same loss: True | same gradients: True" in printed
    assert float(re.search(r"gradients larger than 1e-5: ([\d.e+-]+)", printed).group(1)) < 1e-6
    # the new sections' checks: the loop and im2col step by step, the full convolution, batch norm and dropout
    assert "the same as conv_by_hand: True" in printed and "the same as conv.im2col: True" in printed
    assert "offsets first: True" in printed and "the loop gives Conv2D's output: True" in printed
    assert "same matrices: True True" in printed and "Conv2D with W = K gives O: True" in printed
    full = re.search(r"from Conv2D.backward: dK ([\d.e+-]+), dx ([\d.e+-]+)", printed)
    assert max(map(float, full.groups())) < 1e-10
    bn = re.findall(r"of dx, dgamma, dbeta: ([\d.e+-]+), ([\d.e+-]+), ([\d.e+-]+)", printed)  # dense, conv
    dropout = re.findall(r"Dropout\(0.5\) on .*: largest \|analytic - numeric\| of dx ([\d.e+-]+);", printed)
    assert len(bn) == 2 and len(dropout) == 1 and max(float(e) for e in [*bn[0], *bn[1], *dropout]) < 1e-7
    assert "accuracy on its 100 training images 100%" in printed  # the text: all 100 classified right
    kept = search.chosen(content, "conv")[0]  # section 7 reads the committed results and names the kept row
    assert f"the row the rule keeps: {kept!r}" in printed and f"made by `{content['command']}`" in printed
    long_kept = search.chosen(content, "conv-long")[0]
    assert f"the row the rule keeps: {long_kept!r}, validation" in printed
    long_final = content["finals"]["conv-long, seed 0"]  # section 8 reads conv-long's final model from the file
    assert f"test accuracy {long_final['test_accuracy']:.2%} +- " in printed
    images = sum(1 for out in outputs(nb) if "image/png" in out.get("data", {}))
    assert images == 10  # shift curves (2), by hand, distortions, search curves (2), mistakes, filters, maps (2)


def test_draw_runs_clean_and_shows_an_example_without_a_kernel(drawing, executed, executed_conv):
    assert_clean(drawing)
    import re  # only this test parses printed numbers

    printed = "".join(out.get("text", "") for out in outputs(drawing))
    right = re.search(r"first 1,000 test digits: (\d+) as they are .*, (\d+) from the enlarged pages", printed)
    assert abs(int(right.group(1)) - int(right.group(2))) <= 5  # the text: as well as the originals
    assert "probability of 7: 9" in printed and "softmax of the ten scores gives it: True" in printed
    score, runner_up = map(float, re.search(r"score ([\d.]+); runner-up \d: score (-?[\d.]+)", printed).groups())
    assert score - runner_up > 3  # the text: a lead of several points
    answers = re.findall(r"a drawn ([A-Z]): (\d) with (\d+\.\d{4})%", printed)
    assert [letter for letter, _, _ in answers] == list("AXHNW")
    below_h = re.search(r"the drawn H: [\d.]+%; test digits read with less confidence: ([\d.]+)%", printed)
    assert float(below_h.group(1)) > 50  # the text: a threshold rejecting H rejects most real digits
    assert re.search(r"1,000 noise images: median confidence [\d.]+%, [\d.]+% of them above 90%", printed)
    table = re.findall(r"^ *\dpx +([\d,]+) +([\d.]+)% +([\d,]+) +([\d.]+)%$", printed, re.M)  # right, diagonal
    kept = [int(row[2].replace(",", "")) for row in table]
    accuracy = [float(row[3]) for row in table]
    assert len(accuracy) == 7 and accuracy[0] >= 98 and accuracy[-1] < 50  # the text: it collapses
    assert kept[0] == 10000 and all(a > b for a, b in zip(kept, kept[1:])) and kept[-1] < 1000  # the count falls
    assert re.search(rf"at 6px right and down, \d+ of those {kept[-1]} digits are \ds", printed)
    assert "the default recipe trains with augment=True: data.random_shift, up to 2 pixels" in printed
    moved, recentred = map(float, re.search(r"down: ([\d.]+)%; re-centred by to_mnist: ([\d.]+)%", printed).groups())
    assert recentred >= 90 and recentred > moved + 50 and moved < 10  # the text: below chance, re-centring saves
    worse, rest = map(float, re.search(r"re-centred, ([\d.]+)% are right .* over 10%, ([\d.]+)% of", printed).groups())
    assert worse < rest  # the text: those that lose the most ink are read the worst
    whole, right, fixed = map(int, re.search(r"of the (\d+) that keep all their ink, (\d+) are read right moved, "
                                             r"(\d+) re-centred", printed).groups())
    assert 0 < whole < 100 and right < whole / 2 < fixed  # the text: lost ink is not why they fail
    figures = [out for out in outputs(drawing) if "image/png" in out.get("data", {})]
    assert len(figures) == 8  # steps, votes, weights, not-digits, shifts, the two models, their shifts, the pad
    saved = [executed[2] / "model.npz", executed_conv[1] / "conv.npz"]
    valid = [model_io.saved_valid_accuracy(path) for path in saved]
    test = [model_io.saved_test_accuracy(path) for path in saved]
    better = saved[0] if valid[1] is None or valid[0] >= valid[1] else saved[1]  # a tie: the first, as in choose_best
    shown = [f"validation {'none stored' if v is None else f'{v:.2%}'}, test {t:.2%}" for v, t in zip(valid, test)]
    assert f"the best saved model, whose answer the pad shows in bold: {better}, the highest validation accuracy " \
           f"stored in {saved[0]} ({shown[0]}), {saved[1]} ({shown[1]}); its validation: " \
           f"{model_io.saved_valid_source(better)}" in printed
    letters = dict(re.findall(r"(MLP|ConvNet): (A -> \d \([\d.]+%\), X .*)", printed))
    assert set(letters) == {"MLP", "ConvNet"}  # both models read every letter
    assert "shift   digits      MLP  ConvNet" in printed
    by_shift = re.findall(r"^ *\dpx +([\d,]+) +([\d.]+)% +([\d.]+)%$", printed, re.M)  # digits, MLP, ConvNet
    assert len(by_shift) == 7
    counts = [int(n.replace(",", "")) for n, _, _ in by_shift]
    mlp, conv = [float(m) for _, m, _ in by_shift], [float(c) for _, _, c in by_shift]
    assert counts[0] == 2000 and all(a > b for a, b in zip(counts, counts[1:])) and counts[-1] == whole
    assert all(c > m for c, m in zip(conv[:6], mlp[:6])) and conv[3] > mlp[3] + 5 and conv[4] > mlp[4] + 20  # the text
    recentred = re.search(r"re-centred by to_mnist: MLP ([\d.]+)%; ConvNet ([\d.]+)%", printed).groups()
    assert min(map(float, recentred)) >= 90  # the text: re-centred, both read them well again
    sure = {name: [float(q) for q in re.findall(r"-> \d \(([\d.]+)%\)", rest)] for name, rest in letters.items()}
    (conv_a, conv_x, *conv_hnw), (mlp_a, mlp_x, *mlp_hnw) = sure["ConvNet"], sure["MLP"]
    assert conv_a > mlp_a + 30 and conv_x > mlp_x + 30 and min(conv_hnw + mlp_hnw) > 99  # the text
    pad = outputs(drawing)[-1]["data"]  # live in JupyterLab; the example 7 and a line of text elsewhere
    assert "application/vnd.jupyter.widget-view+json" in pad and "image/png" in pad
    assert pad["text/plain"].startswith("[Drawing pad: it needs a running kernel.")


def shown_error(name):
    """Run a notebook that must stop at its first cell; return what the reader sees there."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    errors = [out for out in outputs(nb) if out.output_type == "error"]
    assert len(errors) == 1  # execution stopped at the first cell that needs the missing file
    return "\n".join(errors[0].traceback)  # a message instead of a traceback


def test_draw_without_a_model_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_MODEL_PATH", str(tmp_path / "model.npz"))
    assert shown_error("Draw.ipynb") == (
        f"ModelFileError: {tmp_path / 'model.npz'}: no saved model here. "
        "Train one first: run notebooks/Neural_net.ipynb or `python -m helpers train`.")


def test_draw_without_the_convnet_says_which_notebook_makes_it(tmp_path, monkeypatch):
    model_io.save_model(nn.MLP((784, 16, 10)), tmp_path / "model.npz")
    monkeypatch.setenv("NN_MODEL_PATH", str(tmp_path / "model.npz"))
    monkeypatch.setenv("NN_CONV_MODEL_PATH", str(tmp_path / "conv.npz"))
    assert shown_error("Draw.ipynb") == (
        f"ModelFileError: {tmp_path / 'conv.npz'}: no saved model here. Train one first: run notebooks/Conv_net.ipynb.")


def test_database_view_without_a_database_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NN_DB_PATH", str(tmp_path / "database.db"))
    assert shown_error("Database_view.ipynb") == (f"DatabaseFileError: {tmp_path / 'database.db'}: no database yet. "
                                                  "Run notebooks/Neural_net.ipynb (or `make run`) first.")
    assert not (tmp_path / "database.db").exists()


def test_no_committed_notebook_output_contains_the_absolute_path_of_the_checkout():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for out in outputs(nb):
            text = json.dumps(out)
            assert str(paths.ROOT) not in text, f"{path.name}: an output holds {paths.ROOT}: {text[:300]}"
