"""KSOM(backend="cuda") equals the CPU fit; device inputs; the device-resident codebook."""

import subprocess
import sys

import numpy as np
import pytest
from numba import cuda

from somvq import KSOM
from somvq.engines import cuda as engine


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(5, 3))
    return (centres[rng.integers(0, 5, 48)] + rng.normal(size=(48, 3))).astype(np.float32)


def _pair(X, Xcuda=None, **params):
    params = dict(grid=(3, 4), n_epochs=2, batch_size=16, random_state=0, **params)
    cpu = KSOM(backend="cpu", **params).fit(X)
    gpu = KSOM(backend="cuda", **params).fit(X if Xcuda is None else Xcuda)
    return cpu, gpu


def _assert_same_fit(cpu, gpu, rtol=1e-5):
    assert gpu.codebook_.dtype == cpu.codebook_.dtype
    assert isinstance(gpu.codebook_, np.ndarray)
    np.testing.assert_allclose(gpu.codebook_, cpu.codebook_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gpu.ema_count_, cpu.ema_count_, rtol=1e-10)
    np.testing.assert_allclose(gpu.ema_sum_, cpu.ema_sum_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gpu.unit_counts_, cpu.unit_counts_)
    np.testing.assert_array_equal(gpu.labels_, cpu.labels_)
    assert gpu.n_steps_ == cpu.n_steps_ and gpu.n_iter_ == cpu.n_iter_


@pytest.mark.parametrize(
    "params",
    [
        dict(algorithm="batch", neighbourhood="gaussian"),
        dict(algorithm="batch", neighbourhood="none", init="sample"),
        dict(algorithm="minibatch", neighbourhood="hard"),
        dict(algorithm="minibatch", neighbourhood="exponential", update="written", init_count=0.0),
        dict(algorithm="online", neighbourhood="gaussian"),
        dict(algorithm="online", neighbourhood="none", learning_rate="inverse_count"),
        dict(algorithm="batch", neighbourhood="bubble", topology="hexagonal", init="pca"),
    ],
    ids=lambda p: "-".join(str(v) for v in p.values()),
)
def test_cuda_fit_equals_cpu_fit(X, params):
    _assert_same_fit(*_pair(X, **params))


def test_deterministic_statistics_fit(X, monkeypatch):
    from somvq._kernels import cuda_config

    monkeypatch.setattr(cuda_config, "DETERMINISTIC_STATISTICS", True)
    monkeypatch.setattr(cuda_config, "STATISTICS_CHUNK_ROWS", 5)
    cpu, gpu = _pair(X, algorithm="minibatch", neighbourhood="hard")
    _assert_same_fit(cpu, gpu)
    again = KSOM(
        backend="cuda",
        grid=(3, 4),
        n_epochs=2,
        batch_size=16,
        random_state=0,
        algorithm="minibatch",
        neighbourhood="hard",
    ).fit(X)
    np.testing.assert_array_equal(again.codebook_, gpu.codebook_)
    np.testing.assert_array_equal(again.ema_sum_, gpu.ema_sum_)


def test_float64_fit_equals_cpu(X):
    cpu, gpu = _pair(X.astype(np.float64), algorithm="minibatch", neighbourhood="gaussian")
    _assert_same_fit(cpu, gpu, rtol=1e-12)


@pytest.mark.parametrize("init", ["random", "sample", "pca", "normal"])
def test_device_array_input_equals_host_input(X, init):
    cpu, gpu = _pair(X, cuda.to_device(X), algorithm="minibatch", neighbourhood="hard", init=init)
    _assert_same_fit(cpu, gpu)
    assert gpu.n_features_in_ == 3


def test_strided_and_integer_device_inputs(X):
    wide = np.zeros((X.shape[0], 2 * X.shape[1]), dtype=np.float32)
    wide[:, ::2] = X
    cpu, gpu = _pair(X, cuda.to_device(wide)[:, ::2], algorithm="batch")
    _assert_same_fit(cpu, gpu)
    ints = np.round(X * 4).astype(np.int32)
    cpu, gpu = _pair(ints.astype(np.float64), cuda.to_device(ints), algorithm="batch")
    assert gpu.codebook_.dtype == np.float64
    _assert_same_fit(cpu, gpu, rtol=1e-12)


def test_partial_fit_keeps_the_codebook_on_the_device(X):
    som = KSOM(grid=(3, 4), algorithm="minibatch", batch_size=16, random_state=0, backend="cuda")
    ref = KSOM(grid=(3, 4), algorithm="minibatch", batch_size=16, random_state=0)
    som.partial_fit(cuda.to_device(X[:24]))
    ref.partial_fit(X[:24])
    device_codebook = engine.device_codebook(som)
    assert device_codebook is not None
    som.partial_fit(X[24:])
    ref.partial_fit(X[24:])
    assert engine.device_codebook(som) is device_codebook  # reused, not uploaded again
    np.testing.assert_allclose(device_codebook.copy_to_host(), som.codebook_)
    np.testing.assert_allclose(som.codebook_, ref.codebook_, rtol=1e-5, atol=1e-5)
    assert som.n_steps_ == ref.n_steps_ == 4
    # A changed host codebook is noticed: the device copy is rebuilt from it.
    som.codebook_ = som.codebook_ + np.float32(1.0)
    ref.codebook_ = ref.codebook_ + np.float32(1.0)
    som.partial_fit(X[:16])
    ref.partial_fit(X[:16])
    assert engine.device_codebook(som) is not device_codebook
    np.testing.assert_allclose(som.codebook_, ref.codebook_, rtol=1e-5, atol=1e-5)


def test_partial_fit_casts_to_the_fitted_dtype(X):
    som = KSOM(grid=(2, 2), algorithm="batch", random_state=0, backend="cuda").partial_fit(X)
    som.partial_fit(cuda.to_device(X.astype(np.float64)))
    assert som.codebook_.dtype == np.float32


def test_bad_device_input_is_a_clear_error(X):
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        KSOM(grid=(2, 2), backend="cuda").fit(cuda.to_device(bad))
    with pytest.raises(ValueError, match="2-D"):
        KSOM(grid=(2, 2), backend="cuda").fit(cuda.to_device(X[:, 0].copy()))
    with pytest.raises(ValueError, match="at least 1 sample"):
        KSOM(grid=(2, 2), backend="cuda").fit(cuda.to_device(X[:0]))
    som = KSOM(grid=(2, 2), backend="cuda", n_epochs=1).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KSOM is expecting 3"):
        som.partial_fit(cuda.to_device(X[:, :2].copy()))


def test_callback_sees_host_codebooks(X):
    seen = []
    KSOM(grid=(2, 2), backend="cuda", n_epochs=2, random_state=0).fit(
        X, callback=lambda epoch, n, mse, codebook: seen.append((epoch, type(codebook), mse > 0))
    )
    assert seen == [(1, np.ndarray, True), (2, np.ndarray, True)]


def test_inference_after_a_cuda_fit_runs_on_host_arrays(X):
    som = KSOM(grid=(3, 4), backend="cuda", n_epochs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(som.predict(X), som.labels_)
    assert som.transform(X).shape == (48, 12)


def test_import_does_not_touch_numba_cuda():
    code = (
        "import sys, somvq, somvq.estimator, somvq.algorithms\n"
        "from somvq import KSOM\n"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported'\n"
        "assert 'somvq.engines.cuda' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unavailable_without_simulator_or_gpu():
    code = (
        "import numpy as np\n"
        "from somvq import KSOM\n"
        "from somvq.exceptions import BackendUnavailableError\n"
        "from numba import cuda\n"
        "if cuda.is_available():\n"
        "    raise SystemExit(0)\n"
        "try:\n"
        "    KSOM(grid=(2, 2), backend='cuda').fit(np.ones((5, 2)))\n"
        "except BackendUnavailableError as exc:\n"
        "    assert \"backend='cuda'\" in str(exc) and 'NUMBA_ENABLE_CUDASIM' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_array_interface_objects_are_device_arrays():
    class Interface:
        __cuda_array_interface__ = {"shape": (2, 2), "typestr": "<f4", "data": (0, False), "version": 3}

    class GradTensor:  # a torch CUDA tensor that requires grad refuses the interface
        requires_grad = True

        @property
        def __cuda_array_interface__(self):
            raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad")

        def detach(self):
            return Interface()

    assert engine.is_device_array(Interface())
    assert engine.is_device_array(GradTensor())
    assert engine.is_device_array(cuda.to_device(np.zeros((2, 2))))
    assert not engine.is_device_array(np.zeros((2, 2)))
