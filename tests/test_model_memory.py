"""The limits of a model (issue 24, items 1 and 5): model files that are valid but demand too much
memory (a few hundred KB of zeros, deflated, whose arrays match an architecture of gigabytes) are
refused from the architecture alone, naming the file and the sizes, in bounded memory; and what
`train` may build, `load_model` accepts: one set of limits (models.py), checked before training."""
import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from helpers import __main__ as cli
from helpers import model_io, models, paths, pipeline
from helpers.nn import MLP

# Runs the command line and prints its peak memory (MB) last: VmHWM, the high-water mark of this
# program's own memory (ru_maxrss would carry over the parent's across fork and exec).
PEAK = """
import re, sys
from helpers import __main__ as cli
try:
    cli.main(sys.argv[1:])
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
    if isinstance(e.code, str):
        print(e.code, file=sys.stderr)
with open("/proc/self/status") as f:
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) // 1024)
sys.exit(code)
"""


def _entry(z, name, array=None, shape=None):
    """One .npy member: array, or a float32 array of shape written as zeros 16 MB at a time."""
    with z.open(name + ".npy", "w", force_zip64=True) as f:
        if array is not None:
            buf = io.BytesIO()
            np.save(buf, array)
            f.write(buf.getvalue())
            return
        np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})
        left, chunk = 4 * int(np.prod(shape, dtype=object)), bytes(2**24)
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def zero_model(path, arch):
    """A model file of arch whose every array has the right shape and holds zeros, as save_model lays it out."""
    params, buffers = models.array_shapes(arch)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        _entry(z, "architecture", np.array(json.dumps(arch)))
        if arch["kind"] == "mlp":
            for key, value in (("sizes", np.array(arch["sizes"])), ("activation", np.array("relu")),
                               ("loss", np.array("cross_entropy"))):
                _entry(z, key, value)
        for name, shape in {**params, **buffers}.items():
            _entry(z, name, shape=shape)
    return path


@pytest.mark.parametrize("arch, what", [
    ({"kind": "conv", "channels": [131072, 8], "kernel": 5, "hidden": [128], "padding": 0}, "channels"),
    ({"kind": "conv", "channels": [10**6, 8], "kernel": 5, "hidden": [128], "padding": 0}, "channels"),
    ({"kind": "mlp", "sizes": [784, 16384, 16384, 16384, 10]}, "sizes"),
])
def test_a_small_model_file_demanding_gigabytes_is_refused_in_bounded_memory(tmp_path, arch, what):
    path = zero_model(tmp_path / "big.npz", arch)
    before = path.read_bytes()
    assert len(before) < 3 * 2**20  # a few MB at most, however much it declares
    with pytest.raises(model_io.ModelFileError, match="big.npz: the network .* would need about"):
        model_io.load_model(path)
    (tmp_path / "digit.png").write_bytes(b"")  # never read: the model is refused first
    out = subprocess.run([sys.executable, "-c", PEAK, "predict", str(tmp_path / "digit.png"), "--model", str(path)],
                         capture_output=True, text=True, cwd=paths.ROOT)
    message = out.stderr.strip()
    assert out.returncode == 1 and message.count("\n") == 0, out.stderr
    assert message.startswith(f"error: {path}: the network ") and ", ".join(map(str, arch[what])) in message
    assert "GiB of weights" in message and "GiB for a batch of" in message and "more than the 2 GiB allowed" in message
    assert int(out.stdout.split()[-1]) < 300  # MB, peak
    assert path.read_bytes() == before


def test_train_refuses_before_training_what_load_model_would_refuse(tmp_path, monkeypatch, capsys):
    old = model_io.save_model(MLP((784, 8, 10)), tmp_path / "deep.npz")
    before = old.read_bytes()
    real = pipeline.train_recipe
    monkeypatch.setattr(pipeline, "train_recipe", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit, match=r"^error: --hidden: at most 98 hidden layers \(a model file holds at most "
                                         r"100 sizes\), got 120$"):
        cli.main(["train", "--recipe", "baseline", "--epochs", "1", "--no-db", "--quiet", "--hidden", *["2"] * 120,
                  "--save", str(old)])
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["deep.npz"]
    monkeypatch.setattr(pipeline, "train_recipe", real)
    cli.main(["train", "--recipe", "baseline", "--epochs", "1", "--no-db", "--quiet", "--hidden", *["2"] * 98,
              "--save", str(old)])  # the deepest allowed is saved, and loads
    assert model_io.load_model(old, inputs=784, outputs=10).sizes == (784, *[2] * 98, 10)
    assert f"model saved to {old}" in capsys.readouterr().out


@pytest.mark.parametrize("arch", [pipeline.RECIPES[name] for name in sorted(pipeline.RECIPES)] + [
    {"kind": "conv", "channels": [512, 8], "kernel": 3, "hidden": [64], "padding": 1, "batchnorm": True},
    {"kind": "mlp", "sizes": [784, 9000, 10]},
])
def test_what_train_accepts_load_model_accepts(arch):
    """train's estimate (for training, with its batch) is never below load_model's (for measuring
    10,000 images), so a model under the one limit when trained is under it when loaded."""
    loading = models.memory_needed(arch, training=False)[0]
    for batch in (1, 128, 60_000):
        assert models.memory_needed(arch, max(batch, models.EVAL_BATCH))[0] >= loading


def test_a_batch_larger_than_the_training_set_counts_as_the_training_set(tmp_path, mnist, capsys):
    """--batch-size 300000 on 500 training images is one batch of 500: not refused for 2.9 GiB."""
    (x_train, y_train), (x_test, y_test) = mnist
    small = tmp_path / "small.npz"
    np.savez(small, x_train=np.concatenate([x_train[:500], x_train[50000:]]),
             y_train=np.concatenate([y_train[:500], y_train[50000:]]), x_test=x_test[:200], y_test=y_test[:200])
    recipe = {**pipeline.RECIPES["default"], "sizes": (784, 16, 10), "batch_size": 300_000}
    assert models.memory_needed(recipe, 300_000)[0] > models.MAX_BYTES  # what was counted before
    cli.main(["train", "--hidden", "16", "--batch-size", "300000", "--epochs", "1", "--quiet", "--no-db",
              "--data", str(small)])
    assert "test accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"sizes \[784, 100000, 10\] with batches of 300000 would need about"):
        cli.main(["train", "--hidden", "100000", "--batch-size", "300000", "--no-db", "--data", str(small)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.npz"]
