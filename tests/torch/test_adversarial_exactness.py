"""The torch quantizers' BMU search is exact at any offset and scale (issue 11, section 1).

Against a float64 brute force by direct differences (tests/naive.py), except true
near-ties (two best closer than 1e-6 relative), and against the core's definition
(somvq.distances). Before the fix the search was ``||w||^2 - 2 x.w`` in float32 without
centring: wrong winners at offsets >= ~100, every row unit 0 at values ~1e20.
"""

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from somvq import distances  # noqa: E402
from somvq.integrations.torch import (  # noqa: E402
    GradientKohonenVectorQuantize,
    KohonenVectorQuantize,
    base,  # noqa: E402
)

from ..naive import brute_force_squared_distances, clear_rows  # noqa: E402


def _data(seed, n, d, offset, scale, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centre = offset * np.where(np.arange(d) % 2, -1.0, 1.0)  # the same for data and codebook
    return (centre + scale * rng.normal(size=(n, d))).astype(dtype)


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 200),
    d=st.integers(1, 24),
    k=st.integers(1, 40),
    offset=st.one_of(st.just(0.0), st.floats(0.0, 6.0).map(lambda e: 10.0**e)),
    scale=st.floats(-3.0, 6.0).map(lambda e: 10.0**e),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_best_matching_units_against_brute_force(seed, n, d, k, offset, scale, dtype):
    X = _data(seed, n, d, offset, scale, dtype)
    W = _data(seed + 1, k, d, offset, scale, dtype)
    got = base.GridQuantizer._best_matching_units(torch.from_numpy(X), torch.from_numpy(W)).numpy()
    ref = brute_force_squared_distances(X, W)
    ok = clear_rows(ref)
    np.testing.assert_array_equal(got[ok], ref.argmin(1)[ok])
    # the twin of the core's definition: the same winners
    np.testing.assert_array_equal(got[ok], distances.best_matching_units(X, W)[0][ok])


@pytest.mark.parametrize("offset,scale", [(0.0, 1.0), (1000.0, 1.0), (0.0, 1e20), (5.0, 1e-20), (1e6, 1e-3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reference_frame_is_the_cores(offset, scale, dtype):
    W = _data(3, 20, 5, offset, scale, dtype)
    centre, frame_scale = base.reference_frame(torch.from_numpy(W))
    frame = distances.reference_frame(W)
    expected_centre = np.zeros(5, dtype=dtype) if frame.centre is None else frame.centre
    np.testing.assert_allclose(centre.numpy(), expected_centre, rtol=1e-6, atol=0)
    assert float(frame_scale) == frame.scale


@pytest.mark.parametrize("offset,scale", [(0.0, 1e200), (1e200, 1e199), (0.0, 1e300), (0.0, 1e-200)])
def test_float64_codebooks_beyond_1e154(offset, scale):
    """Squared norms overflow there (or, below 1e-162, underflow to 0): the frame bounds
    the radius as the core does, and the winners are the brute force's on the same values
    scaled by 2^-700 (2^+700 for the tiny ones) where it is finite."""
    W = _data(5, 30, 6, offset, scale, np.float64)
    X = _data(6, 300, 6, offset, scale, np.float64)
    centre, frame_scale = base.reference_frame(torch.from_numpy(W))
    frame = distances.reference_frame(W)
    assert float(frame_scale) == frame.scale != 1.0
    expected_centre = np.zeros(6) if frame.centre is None else frame.centre
    np.testing.assert_array_equal(centre.numpy(), expected_centre)
    got = base.GridQuantizer._best_matching_units(torch.from_numpy(X), torch.from_numpy(W)).numpy()
    shift = -700 if scale > 1 else 700
    ref = brute_force_squared_distances(np.ldexp(X, shift), np.ldexp(W, shift))
    ok = clear_rows(ref)
    assert ok.mean() > 0.9
    np.testing.assert_array_equal(got[ok], ref.argmin(1)[ok])


@pytest.mark.parametrize("quantizer", [KohonenVectorQuantize, GradientKohonenVectorQuantize])
@pytest.mark.parametrize("offset,scale", [(1000.0, 1.0), (1e5, 0.1), (0.0, 1e20)])
def test_forward_far_from_the_origin(quantizer, offset, scale):
    """Indices and the commitment loss of a forward pass (eval mode) on offset data."""
    W = _data(1, 16, 8, offset, scale)
    X = _data(2, 500, 8, offset, scale)
    vq = quantizer(dim=8, codebook_size=16, init=torch.from_numpy(W), commitment_weight=1.0).eval()
    _, indices, loss = vq(torch.from_numpy(X))
    ref = brute_force_squared_distances(X, W)
    ok = clear_rows(ref)
    np.testing.assert_array_equal(indices.numpy()[ok], ref.argmin(1)[ok])
    if quantizer is KohonenVectorQuantize and scale < 1e15:  # float32 squares of ~1e20 overflow
        assert float(loss.detach()) == pytest.approx(ref.min(1).mean() / X.shape[1], rel=1e-5)


def test_search_has_no_host_synchronisation():
    """No .item()/bool()/int()/.cpu()/nonzero on tensors in the search's code."""
    for function in (base.best_matching_units, base.reference_frame):
        source = inspect.getsource(function)
        for banned in (
            ".item(",
            ".tolist(",
            ".cpu(",
            ".numpy(",
            "nonzero(",
            "bool(",
            "int(",
            "float(",
            " if ",
        ):
            assert banned not in source.split('"""')[-1], (function.__name__, banned)


@pytest.mark.parametrize("dtype,shift", [(np.float64, -1060), (np.float32, -140)])
def test_subnormal_codebooks(dtype, shift):
    """A codebook below the dtype's smallest normal number: the frame's scale 2^(1 - e)
    was inf (the dtype's largest power of two is the limit now, as in the core), and
    every winner came out of NaN scores."""
    rng = np.random.default_rng(7)
    W = np.ldexp(rng.normal(size=(16, 4)), shift).astype(dtype)
    X = np.ldexp(rng.normal(size=(300, 4)), shift).astype(dtype)
    got = base.GridQuantizer._best_matching_units(torch.from_numpy(X), torch.from_numpy(W)).numpy()
    ref = brute_force_squared_distances(
        np.ldexp(X.astype(np.float64), -shift), np.ldexp(W.astype(np.float64), -shift)
    )
    ok = clear_rows(ref)
    assert ok.mean() > 0.9
    np.testing.assert_array_equal(got[ok], ref.argmin(1)[ok])
