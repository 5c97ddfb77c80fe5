"""Model files that are valid but demand too much memory (issue 24, item 1): a few hundred KB of
zeros, deflated, whose arrays match an architecture of gigabytes. load_model must refuse them from
the architecture alone, naming the file and the sizes, in bounded memory."""
import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from helpers import model_io, models, paths

# Runs the command line and prints its peak memory (MB) last: ru_maxrss of this process only.
PEAK = """
import resource, sys
from helpers import __main__ as cli
try:
    cli.main(sys.argv[1:])
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
    if isinstance(e.code, str):
        print(e.code, file=sys.stderr)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
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
