"""The loader: the shipped file, IDX reading, and every way a file can be wrong."""
import gzip
import hashlib
import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from helpers import data, paths


def idx_bytes(array, dtype_byte=0x08):
    header = bytes([0, 0, dtype_byte, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_idx_folder(folder, n_train=6, n_test=4, gz=True, side=28):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    folder.mkdir(exist_ok=True)
    for key, name in data.IDX_NAMES.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


def test_shipped_file_matches_the_published_checksums():
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    for key, arr in zip(data.SPLITS, (x_train, y_train, x_test, y_test)):
        assert hashlib.sha256(arr.tobytes()).hexdigest() == data.MNIST_SHA256[key]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_reads_gz_and_raw(tmp_path, gz):
    arrays = make_idx_folder(tmp_path / "idx", gz=gz)
    (x_train, y_train), (x_test, y_test) = data.load_mnist(tmp_path / "idx")
    for key, got in zip(data.SPLITS, (x_train, y_train, x_test, y_test)):
        np.testing.assert_array_equal(got, arrays[key])


def test_npz_round_trip_and_other_datasets_skip_the_checksum(tmp_path):
    arrays = make_idx_folder(tmp_path / "idx")
    dest = tmp_path / "small.npz"
    np.savez_compressed(dest, **arrays)
    (x_train, _), (_, y_test) = data.load_mnist(dest)
    np.testing.assert_array_equal(x_train, arrays["x_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    with pytest.raises(data.DataError, match="does not match the MNIST checksum"):
        data.load_mnist(dest, verify=True)


def write_mnist_idx(folder):
    """The four original IDX files of MNIST, written from the shipped data/mnist.npz: tests need
    nothing beside the repository."""
    folder.mkdir(exist_ok=True)
    with np.load(paths.DATA_PATH) as f:
        for key, name in data.IDX_NAMES.items():
            (folder / name).write_bytes(idx_bytes(f[key]))
    return folder


def test_build_npz_writes_the_same_arrays_atomically(tmp_path):
    src = write_mnist_idx(tmp_path / "idx")
    dest = data.build_npz(src, tmp_path / "out" / "mnist.npz")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["mnist.npz"]  # no temporary file left
    data.load_mnist(dest, verify=True)


def test_build_npz_failing_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    src = write_mnist_idx(tmp_path / "idx")
    dest = tmp_path / "out" / "mnist.npz"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous file")

    def disk_full(file, **arrays):
        with open(file, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space left"):
        data.build_npz(src, dest)
    assert dest.read_bytes() == b"the previous file" and [p.name for p in dest.parent.iterdir()] == ["mnist.npz"]
    with pytest.raises(data.DataError, match="idx: is a folder; the data file needs a file name"):
        data.build_npz(src, src)


def test_a_gzip_bomb_is_not_decompressed_beyond_its_declared_size(tmp_path):
    make_idx_folder(tmp_path / "idx")
    target = tmp_path / "idx" / (data.IDX_NAMES["y_test"] + ".gz")
    raw = idx_bytes(np.zeros(4, np.uint8))  # declares 4 labels, then 200 MB more of zeros
    with gzip.open(target, "wb") as f:
        f.write(raw)
        for _ in range(200):
            f.write(bytes(2**20))
    assert target.stat().st_size < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz: longer than its header says"):
            data.load_mnist(tmp_path / "idx")
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20  # peak: the small arrays, not 200 MB
    finally:
        tracemalloc.stop()


def test_a_huge_declared_size_is_refused_before_reading(tmp_path):
    make_idx_folder(tmp_path / "idx", gz=False)
    target = tmp_path / "idx" / data.IDX_NAMES["x_train"]
    header = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in (4_000_000_000, 28, 28))
    target.write_bytes(header + bytes(100))
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte: header declares shape \(4000000000, 28, 28\)"):
        data.load_mnist(tmp_path / "idx")


def test_an_npz_bomb_is_refused_from_its_headers(tmp_path):
    arrays = make_idx_folder(tmp_path / "idx")
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        for key in ("y_train", "x_test", "y_test"):
            buf = io.BytesIO()
            np.save(buf, arrays[key])
            z.writestr(key + ".npy", buf.getvalue())
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                                   "shape": (6_000_000, 28, 28)})
        z.writestr("x_train.npy", buf.getvalue() + bytes(50_000_000))  # 4.4 GB declared, 50 MB of zeros
    assert (tmp_path / "bomb.npz").stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(data.DataError, match=r"bomb.npz: not a readable .npz file \(array x_train declares"):
            data.load_mnist(tmp_path / "bomb.npz")
        assert tracemalloc.get_traced_memory()[1] < 10 * 2**20  # nothing of the declared 4.4 GB allocated
    finally:
        tracemalloc.stop()


def test_empty_arrays_name_the_file(tmp_path):
    arrays = make_idx_folder(tmp_path / "idx", n_test=0)
    np.savez(tmp_path / "empty.npz", **arrays)
    with pytest.raises(data.DataError, match=r"empty.npz: x_test is empty \(shape \(0, 28, 28\)\)"):
        data.load_mnist(tmp_path / "empty.npz")


def test_checksum_mismatch_is_reported(tmp_path):
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    x_test = x_test.copy()
    x_test[0, 0, 0] ^= 1
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(data.DataError, match=r"mnist.npz: x_test does not match"):
        data.load_mnist(bad, verify=True)


def test_missing_default_file_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "DATA_PATH", tmp_path / "mnist.npz")
    with pytest.raises(data.DataError, match="build-data"):
        data.load_mnist()


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-7], "truncated"),
    (lambda raw: raw + b"\0\0", "longer than its header"),
    (lambda raw: b"\x01\x02" + raw[2:], "wrong magic number"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "data type 0x0d"),
    (lambda raw: raw[:6], "header is truncated"),
    (lambda raw: b"", "wrong magic number"),
])
def test_damaged_idx_files_are_rejected(tmp_path, damage, message):
    make_idx_folder(tmp_path / "idx", gz=False)
    target = tmp_path / "idx" / data.IDX_NAMES["y_test"]
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(data.DataError, match=message) as err:
        data.load_mnist(tmp_path / "idx")
    assert "t10k-labels-idx1-ubyte" in str(err.value)


def test_corrupt_gzip_is_rejected(tmp_path):
    make_idx_folder(tmp_path / "idx")
    target = tmp_path / "idx" / (data.IDX_NAMES["x_train"] + ".gz")
    raw = target.read_bytes()
    target.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz: cannot be read"):
        data.load_mnist(tmp_path / "idx")


def test_missing_idx_file_and_count_mismatch(tmp_path):
    make_idx_folder(tmp_path / "idx")
    (tmp_path / "idx" / (data.IDX_NAMES["x_test"] + ".gz")).unlink()
    with pytest.raises(data.DataError, match="no t10k-images-idx3-ubyte"):
        data.load_mnist(tmp_path / "idx")
    make_idx_folder(tmp_path / "idx")
    (tmp_path / "idx" / (data.IDX_NAMES["y_train"] + ".gz")).write_bytes(
        gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(data.DataError, match="6 train images but 5 labels"):
        data.load_mnist(tmp_path / "idx")


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("y_test"), r"missing arrays \['y_test'\]"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.float32)), "must be uint8"),
    (lambda a: a.update(x_test=a["x_test"].reshape(4, -1)), r"must be \(n, h, w\)"),
    (lambda a: a.update(x_test=np.zeros((4, 14, 14), np.uint8)), "differ in size"),
])
def test_bad_npz_contents_are_rejected(tmp_path, change, message):
    arrays = make_idx_folder(tmp_path / "idx")
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(data.DataError, match=message):
        data.load_mnist(tmp_path / "bad.npz")


def test_a_file_that_is_not_an_npz_is_rejected(tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip file")
    with pytest.raises(data.DataError, match="mnist.npz: not a readable .npz"):
        data.load_mnist(bad)
    with pytest.raises(data.DataError, match="nothing.npz: file not found"):
        data.load_mnist(tmp_path / "nothing.npz")


def test_flatten_one_hot_and_shift():
    x = np.full((3, 28, 28), 255, np.uint8)
    X = data.flatten(x)
    assert X.shape == (3, 784) and X.dtype == np.float32 and X.max() == 1.0
    np.testing.assert_array_equal(data.one_hot(np.array([2, 0])), [[0, 0, 1] + [0] * 7, [1] + [0] * 9])
    with pytest.raises(ValueError, match=r"integers in \[0, 10\)"):
        data.one_hot(np.array([10]))
    img = np.zeros((1, 28, 28), np.float32)
    img[0, 10, 12] = 1
    shifted = data.random_shift(img.reshape(1, -1), np.random.default_rng(0), max_shift=2).reshape(28, 28)
    (r, c), = np.argwhere(shifted)
    assert abs(r - 10) <= 2 and abs(c - 12) <= 2 and shifted.sum() == 1


def test_random_shift_moves_every_image_by_its_own_offset():
    x = np.random.default_rng(1).random((60, 784)).astype(np.float32)
    out = data.random_shift(x, np.random.default_rng(5), out=np.full_like(x, 7.0))
    dy, dx = np.random.default_rng(5).integers(-2, 3, size=(2, 60))  # the offsets it drew
    assert len(set(zip(dy, dx))) > 10
    for i in range(60):
        moved = np.zeros((32, 32), np.float32)  # the image placed at (2 + dy, 2 + dx) on a zero canvas
        moved[2 + dy[i]:30 + dy[i], 2 + dx[i]:30 + dx[i]] = x[i].reshape(28, 28)
        np.testing.assert_array_equal(out[i].reshape(28, 28), moved[2:30, 2:30])
