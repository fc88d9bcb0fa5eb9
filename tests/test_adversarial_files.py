"""Issue 11, section 3: model files load only what is sound, in bounded memory, and save
only over regular files.

Before the fix, ``load`` accepted NaN/inf EMA state, string or missing step counters and
horizons, a stored grid that disagrees with the parameters and feature names of the
wrong length; JSON of the wrong type escaped as AttributeError; every archive member was
read, unknown ones included (a small file holding a compressed 100 MB array cost 100 MB);
and ``save`` replaced a FIFO or a symbolic link with a regular file.
"""

import json
import math
import os
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest

import somvq
from somvq import KSOM
from somvq.exceptions import ModelFileError


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(40, 3))
    return KSOM(grid=(2, 3), algorithm="minibatch", batch_size=8, n_epochs=2, random_state=0).fit(X), X


@pytest.fixture
def model_path(tmp_path, fitted):
    return somvq.save(fitted[0], tmp_path / "m.somvq.npz")


def _contents(path):
    with zipfile.ZipFile(path) as archive:
        arrays = {}
        for name in archive.namelist():
            with archive.open(name) as handle:
                arrays[name[: -len(".npy")]] = np.lib.format.read_array(handle, allow_pickle=False)
    meta = json.loads(arrays.pop("__somvq__").tobytes())
    return meta, arrays


def _write(path, meta, arrays):
    payload = dict(arrays)
    payload["__somvq__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **payload)
    return path


def _tampered(tmp_path, model_path, change, name="t.npz"):
    meta, arrays = _contents(model_path)
    change(meta, arrays)
    return _write(tmp_path / name, meta, arrays)


def _set(arrays, name, index, value):
    array = arrays[name].copy()
    array.flat[index] = value
    arrays[name] = array


# ------------------------------------------------------------------ every field checked
@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m, a: _set(a, "ema_count_", 0, np.nan), "ema_count_ holds NaN or inf"),
        (lambda m, a: _set(a, "ema_count_", 1, np.inf), "ema_count_ holds NaN or inf"),
        (lambda m, a: _set(a, "ema_sum_", 2, -np.inf), "ema_sum_ holds NaN or inf"),
        (lambda m, a: _set(a, "unit_counts_", 0, np.nan), "unit_counts_ holds NaN or inf"),
        (lambda m, a: _set(a, "ema_count_", 0, -1.0), "ema_count_ holds negative"),
        (lambda m, a: m["state"].__setitem__("n_steps_", "10"), "n_steps_='10'"),
        (lambda m, a: m["state"].pop("n_steps_"), "'n_steps_' is missing"),
        (lambda m, a: m["state"].__setitem__("n_steps_", -3), "n_steps_=-3"),
        (lambda m, a: m["state"].__setitem__("n_steps_", True), "n_steps_=True"),
        (lambda m, a: m["state"].__setitem__("n_iter_", 2.5), "n_iter_=2.5"),
        (lambda m, a: m["state"].__setitem__("_horizon", "soon"), "horizon 'soon'"),
        (lambda m, a: m["state"].pop("_horizon"), "'_horizon' is missing"),
        (lambda m, a: m["state"].__setitem__("_horizon", float("nan")), "horizon nan"),
        (lambda m, a: m["state"].__setitem__("_horizon", 0.0), "horizon 0.0"),
        (lambda m, a: m["state"].__setitem__("n_features_in_", "3"), "n_features_in_='3'"),
        (lambda m, a: m["state"].__setitem__("surprise", 1), "unknown state field"),
        (lambda m, a: m["grid"].__setitem__("shape", [3, 2]), "stored grid .* disagrees with the parameters"),
        (lambda m, a: m["grid"].__setitem__("periodic", [True, True]), "disagrees with the parameters"),
        (lambda m, a: m["grid"].__setitem__("topology", "hexagonal"), "disagrees with the parameters"),
        (lambda m, a: m["grid"].__setitem__("shape", ["2", 3]), "stored grid .* is malformed"),
        (lambda m, a: m["grid"].__setitem__("periodic", [1, 0]), "stored grid .* is malformed"),
        (lambda m, a: m.__setitem__("feature_names_in", ["a", "b"]), "2 feature names for 3 features"),
        (
            lambda m, a: m.__setitem__("feature_names_in", ["a", "b", 3]),
            "feature_names_in is not a list of strings",
        ),
        (
            lambda m, a: m.__setitem__("rng_state", {"bit_generator": "PCG64", "state": "x"}),
            "random generator state",
        ),
        (lambda m, a: m.__setitem__("rng_state", {"bit_generator": "os.system"}), "random generator state"),
        (lambda m, a: a.__setitem__("labels_", np.array([0, 99])), "labels_ out of range"),
        (
            lambda m, a: a.__setitem__("ema_sum_", a["ema_sum_"].astype(np.float32)),
            "ema_sum_ has dtype float32",
        ),
        (
            lambda m, a: a.__setitem__("codebook_", a["codebook_"].astype(np.int64)),
            "codebook_ has dtype int64",
        ),
        (lambda m, a: a.__setitem__("ema_count_", a["ema_count_"][:-1]), r"ema_count_ shape \(5,\)"),
        (lambda m, a: (a.pop("ema_sum_"), m["arrays"].remove("ema_sum_")), "'ema_sum_' is missing"),
        (lambda m, a: m["params"].__setitem__("grid_dim", "2"), "grid_dim"),
        (lambda m, a: m["params"].__setitem__("learning_rate", None), "learning_rate"),
        (lambda m, a: m["params"].__setitem__("bogus", 1), r"unknown parameter\(s\) \['bogus'\]"),
        (lambda m, a: m["params"].__setitem__("decay", {"__array__": "codebook_"}), "refers to an array"),
        # an int beyond float's range: math.isfinite raised OverflowError
        (lambda m, a: m["state"].__setitem__("_horizon", 10**400), "horizon 1000"),
        # short state lists: NumPy's setter raised IndexError
        (
            lambda m, a: m.__setitem__(
                "rng_state", {"bit_generator": "MT19937", "state": {"key": [1, 2, 3], "pos": 0}}
            ),
            "random generator state",
        ),
        # fit refuses weights without layers: so must load (partial_fit would fail later)
        (lambda m, a: m["params"].__setitem__("layer_weights", [1.0]), "layer parameters are invalid"),
        (lambda m, a: m["params"].__setitem__("layer_distances", ["sqeuclidean"]), "layer parameters"),
        # checked only at predict before (found by a bug hunt): the map has one layer
        (lambda m, a: m["params"].__setitem__("predict_layers", [1]), r"predict_layers=\[1\] holds 1"),
        (lambda m, a: m["params"].__setitem__("predict_layers", []), "selects no layer"),
    ],
)
def test_tampered_fields_are_refused(tmp_path, model_path, change, match):
    path = _tampered(tmp_path, model_path, change)
    with pytest.raises(ModelFileError, match=match):
        somvq.load(path)


@pytest.mark.parametrize(
    "key, value",
    [
        ("params", []),
        ("params", "gaussian"),
        ("state", [1, 2]),
        ("state", None),
        ("grid", [2, 3]),
        ("grid", "2x3"),
        ("arrays", {"codebook_": 1}),
        ("extra", [1]),
    ],
)
def test_json_of_the_wrong_type_is_a_model_file_error(tmp_path, model_path, key, value):
    path = _tampered(tmp_path, model_path, lambda m, a: m.__setitem__(key, value))
    with pytest.raises(ModelFileError, match=repr(key)):  # before: AttributeError / TypeError
        somvq.load(path)


_REPLACEMENTS = [None, "x", -1, 0, 2.5, float("inf"), True, [], [1, "a"], {}, {"__tuple__": 3}]


def _leaf_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from _leaf_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield prefix + (index,)
            yield from _leaf_paths(item, prefix + (index,))


def test_any_metadata_value_replaced_loads_soundly_or_raises_model_file_error(tmp_path, model_path, fitted):
    """Replace every metadata entry, at every depth, by values of every JSON type.

    ``load`` must either raise ModelFileError or return an estimator whose fitted state is
    sound (finite codebook matching its grid, usable for prediction); never any other
    exception.
    """
    _, X = fitted
    meta, arrays = _contents(model_path)
    paths = [p for p in _leaf_paths(meta) if p[0] not in ("format", "format_version", "estimator")]
    assert len(paths) > 40
    loaded = refused = 0
    for path in paths:
        for replacement in _REPLACEMENTS:
            changed = json.loads(json.dumps(meta))
            target = changed
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = replacement
            file = _write(tmp_path / "fuzz.npz", changed, arrays)
            try:
                som = somvq.load(file)
            except ModelFileError:
                refused += 1
                continue
            loaded += 1
            assert som.codebook_.shape == (som.grid_.n_units, som.n_features_in_)
            assert np.isfinite(som.codebook_).all()
            assert som.predict(X).max() < som.grid_.n_units, (path, replacement)
    assert loaded and refused


# ------------------------------------------------------------------ archive members
def test_unknown_and_unlisted_members_are_refused(tmp_path, model_path):
    path = _tampered(tmp_path, model_path, lambda m, a: a.__setitem__("junk", np.zeros(3)), "a.npz")
    with pytest.raises(ModelFileError, match=r"unlisted: \['junk'\]"):
        somvq.load(path)
    path = _tampered(
        tmp_path,
        model_path,
        lambda m, a: (a.__setitem__("junk", np.zeros(3)), m["arrays"].append("junk")),
        "b.npz",
    )
    with pytest.raises(ModelFileError, match=r"unknown array member\(s\) \['junk'\]"):
        somvq.load(path)
    path = _tampered(
        tmp_path, model_path, lambda m, a: a.__setitem__("param__init", np.zeros((6, 3))), "c.npz"
    )
    with pytest.raises(ModelFileError, match="unlisted"):
        somvq.load(path)


def test_duplicate_members_are_refused(tmp_path, model_path):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr("codebook_.npy", source.read("codebook_.npy"))
    with pytest.raises(ModelFileError, match="appears twice"):
        somvq.load(path)


def _write_zero_member(archive, name, shape, dtype=np.float64, compress=True):
    """A member whose .npy header declares ``shape``, filled with zeros streamed in 1 MB."""
    info = zipfile.ZipInfo(f"{name}.npy")
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    with archive.open(info, "w", force_zip64=True) as handle:
        np.lib.format.write_array_header_1_0(
            handle,
            {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape},
        )
        chunk = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            handle.write(chunk)
        handle.write(bytes(nbytes & ((1 << 20) - 1)))


def _bomb(tmp_path, model_path, name, shape, *, listed=True, meta_change=None):
    meta, arrays = _contents(model_path)
    if meta_change is not None:
        meta_change(meta)
    if listed and name not in meta["arrays"]:
        meta["arrays"].append(name)
    arrays.pop(name, None)
    path = tmp_path / f"bomb-{name}.npz"
    _write(path, meta, arrays)
    with zipfile.ZipFile(path, "a") as archive:
        _write_zero_member(archive, name, shape)
    return path


def _peak_bytes(function):
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


_HUNDRED_MB = (100 * 2**20 // 8,)


@pytest.mark.parametrize(
    "name, shape, listed, meta_change, match",
    [
        ("junk", _HUNDRED_MB, False, None, "unlisted"),
        ("labels_", _HUNDRED_MB, True, None, "expands from"),
        # The metadata claims a huge map, so the codebook's size matches it: the member must
        # still really be in the file.
        (
            "codebook_",
            (12_800, 1024),
            True,
            lambda m: (
                m["params"].__setitem__("grid", {"__tuple__": [100, 128]}),
                m["grid"].__setitem__("shape", [100, 128]),
                m["state"].__setitem__("n_features_in_", 1024),
            ),
            "expands from",
        ),
    ],
)
def test_small_files_never_expand_into_large_arrays(
    tmp_path, model_path, name, shape, listed, meta_change, match
):
    path = _bomb(tmp_path, model_path, name, shape, listed=listed, meta_change=meta_change)
    assert path.stat().st_size < 2 * 2**20  # a file of well under 2 MB declaring 100 MB
    errors = []

    def load():
        with pytest.raises(ModelFileError, match=match) as info:
            somvq.load(path)
        errors.append(info)

    assert _peak_bytes(load) < 20 * 2**20  # before: the 100 MB array was read
    assert errors


def test_headers_that_lie_about_the_data_are_refused(tmp_path, model_path):
    meta, arrays = _contents(model_path)
    arrays.pop("labels_")
    path = _write(tmp_path / "lie.npz", meta, arrays)
    with zipfile.ZipFile(path, "a") as archive:
        # A header declaring 10^12 labels followed by none of them.
        info = zipfile.ZipInfo("labels_.npy")
        with archive.open(info, "w") as handle:
            np.lib.format.write_array_header_1_0(
                handle, {"descr": "<i8", "fortran_order": False, "shape": (10**12,)}
            )
    with pytest.raises(ModelFileError, match="declares 8000000000000 bytes of data but holds 0"):
        somvq.load(path)


def test_object_members_are_never_unpickled(tmp_path, model_path):
    meta, arrays = _contents(model_path)
    meta["extra"] = {"x": {"__array__": "extra__x"}}
    meta["arrays"].append("extra__x")
    path = tmp_path / "pickle.npz"
    payload = dict(arrays)
    payload["__somvq__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    payload["extra__x"] = np.array([{"boom": 1}], dtype=object)
    np.savez(path, **payload)
    with pytest.raises(ModelFileError, match="object array"):
        somvq.io.read_extra(path)


def test_sound_files_still_round_trip(tmp_path):
    X = np.random.default_rng(1).normal(size=(30, 2)).astype(np.float32)
    for params in (
        {"algorithm": "online"},
        {"algorithm": "batch", "topology": "hexagonal", "periodic": True},
        {"algorithm": "minibatch", "update": "written", "init": np.zeros((4, 2))},
    ):
        som = KSOM(grid=(2, 2), n_epochs=2, random_state=0, **params).fit(X)
        loaded = somvq.load(somvq.save(som, tmp_path / "m.npz", extra={"mean": np.zeros(2), "note": "x"}))
        np.testing.assert_array_equal(loaded.codebook_, som.codebook_)
        np.testing.assert_array_equal(loaded.predict(X), som.predict(X))
        assert loaded.n_steps_ == som.n_steps_ and loaded._horizon == som._horizon
        assert loaded.grid_ == som.grid_
        assert somvq.io.read_extra(tmp_path / "m.npz")["note"] == "x"


# ------------------------------------------------------------------ save targets
def test_save_through_a_symlink_writes_its_target(tmp_path, fitted):
    som, _ = fitted
    target = tmp_path / "real.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to("real.npz")
    assert somvq.save(som, link) == target
    assert link.is_symlink() and os.readlink(link) == "real.npz"  # before: the link was replaced
    np.testing.assert_array_equal(somvq.load(link).codebook_, som.codebook_)
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to("new.npz")
    somvq.save(som, dangling)
    assert dangling.is_symlink() and (tmp_path / "new.npz").is_file()
    loop = tmp_path / "loop.npz"
    loop.symlink_to("loop.npz")
    with pytest.raises(ValueError, match="symbolic link loop"):
        somvq.save(som, loop)


def test_save_refuses_directories_and_fifos(tmp_path, fitted):
    som, _ = fitted
    directory = tmp_path / "dir.npz"
    directory.mkdir()
    with pytest.raises(ValueError, match="is a directory, not a regular file"):
        somvq.save(som, directory)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"is a FIFO \(named pipe\), not a regular file"):
        somvq.save(som, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # before: replaced by a regular file
    link = tmp_path / "to-fifo.npz"
    link.symlink_to(fifo)
    with pytest.raises(ValueError, match="FIFO"):
        somvq.save(som, link)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.npz", "fifo.npz", "to-fifo.npz"]


def test_save_never_replaces_a_device(tmp_path, fitted):
    som, _ = fitted
    from somvq._atomic import writable_target  # absent before the fix: nothing below runs

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError):
        writable_target(fifo)  # the refusal exists; only then touch a device path
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(ValueError, match="'/dev/null' is a character device, not a regular file"):
        somvq.save(som, "/dev/null")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert not [name for name in os.listdir("/dev") if name.startswith(".null.")]  # no temporary left


@pytest.mark.parametrize(
    "offset, bit, match",
    [(8, 0x01, "encrypted"), (10, 0x60, "compression"), (10, 0x08, "unreadable")],  # flags, method
    ids=["encrypted-flag", "unknown-method", "deflate-method"],
)
def test_damaged_central_directory_is_a_model_file_error(tmp_path, model_path, offset, bit, match):
    """A flipped bit in a member's central directory entry: zipfile raises RuntimeError
    ("encrypted"), NotImplementedError or zlib.error, which escaped before."""
    raw = bytearray(model_path.read_bytes())
    entry = raw.find(b"PK\x01\x02")
    raw[entry + offset] |= bit
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=match):
        somvq.load(path)


@pytest.mark.parametrize(
    "extra, error, match",
    [
        ({"scale/x": np.ones(3)}, ValueError, "extra key 'scale/x'"),
        ({"": 1}, ValueError, "extra key ''"),
        ({3: 1}, ValueError, "extra key 3"),
        ({"x": {"__array__": "extra__x"}}, ValueError, "reserves"),
        ({"x": object()}, TypeError, r"extra\['x'\] must be a NumPy array or JSON-serialisable"),
        ({"x": np.array([None])}, TypeError, "object array"),
    ],
)
def test_save_refuses_extra_entries_it_could_not_read_back(tmp_path, fitted, extra, error, match):
    with pytest.raises(error, match=match):
        somvq.save(fitted[0], tmp_path / "m.npz", extra=extra)
    assert list(tmp_path.iterdir()) == []
    # the accepted kinds round-trip
    path = somvq.save(fitted[0], tmp_path / "ok.npz", extra={"a b.c": np.arange(3), "meta": {"k": [1, "x"]}})
    back = somvq.io.read_extra(path)
    np.testing.assert_array_equal(back["a b.c"], np.arange(3))
    assert back["meta"] == {"k": [1, "x"]}
    somvq.load(path)


def test_save_never_writes_a_file_that_load_refuses(tmp_path, fitted):
    som, _ = fitted
    import copy

    changed = copy.deepcopy(som).set_params(grid=(3, 2))  # K unchanged: only the grid differs
    with pytest.raises(
        ValueError, match=r"parameters now describe Grid\(shape=\(3, 2\).*fitted on Grid\(shape=\(2, 3\)"
    ):
        somvq.save(changed, tmp_path / "a.npz")
    changed = copy.deepcopy(som).set_params(init=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"init array has shape \(2, 2\)"):
        somvq.save(changed, tmp_path / "b.npz")
    changed = copy.deepcopy(som)
    changed._horizon = float("nan")
    with pytest.raises(ValueError, match="horizon"):
        somvq.save(changed, tmp_path / "c.npz")
    assert list(tmp_path.iterdir()) == []


def test_array_and_range_parameters_round_trip(tmp_path):
    """Array parameters other than init were stored as arrays that load refused as
    "unknown array member(s)"; layers given as arrays or ranges could not be saved at all
    (found by an adversarial pass). They are stored as lists now."""
    rng = np.random.default_rng(5)
    X = np.hstack([rng.normal(size=(50, 3)), (rng.random((50, 2)) < 0.5).astype(float)])
    cases = [
        dict(layers=[[0, 1, 2], [3, 4]], layer_weights=np.array([1.0, 2.0])),
        dict(layers=[[0, 1, 2], [3, 4]], layer_distances=np.array(["sqeuclidean", "tanimoto"])),
        dict(layers=[[0, 1, 2], [3, 4]], predict_layers=np.array([0])),
        dict(layers=[np.arange(3), range(3, 5)]),
        dict(grid=np.array([2, 3])),
    ]
    for i, params in enumerate(cases):
        som = KSOM(**{"grid": (2, 2), "random_state": 0, "n_epochs": 2, **params}).fit(X)
        loaded = somvq.load(somvq.save(som, tmp_path / f"m{i}.npz"))
        np.testing.assert_array_equal(loaded.predict(X), som.predict(X))
        np.testing.assert_array_equal(loaded.codebook_, som.codebook_)
