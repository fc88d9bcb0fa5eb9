"""Bad arguments and bad inputs: a ValueError (TypeError for non-tensors) quoting the value."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from somvq.integrations.torch import GradientKohonenVectorQuantize, KohonenVectorQuantize  # noqa: E402


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dim": 0}, "dim=0"),
        ({"codebook_size": 2.5}, "codebook_size=2.5"),
        ({"grid": (3, 3)}, r"\(3, 3\) has 9 units, but codebook_size=16"),
        ({"grid": "4x4"}, "grid='4x4'"),
        ({"grid_dim": 0}, "grid_dim=0"),
        ({"neighbourhood": "gauss"}, "neighbourhood='gauss'"),
        ({"neighbourhood": "mexican_hat"}, "negative weights"),
        ({"decay": 1.0}, "decay=1.0"),
        ({"decay": -0.1}, "decay=-0.1"),
        ({"eps": -1.0}, "eps=-1.0"),
        ({"init_count": float("nan")}, "init_count=nan"),
        ({"commitment_weight": -1}, "commitment_weight=-1"),
        ({"update": "some"}, "update='some'"),
        ({"shrink": -0.1}, "shrink=-0.1"),
        ({"radius": 0.0}, "radius=0.0"),
        ({"radius": 1e-200}, r"radius=1e-200 must be a real number >= 1e-100"),
        ({"radius_final": 1e-160}, "radius_final=1e-160"),
        ({"radius_schedule": "cosine"}, "radius_schedule='cosine'"),
        ({"radius_schedule": "linear"}, "radius_horizon"),
        ({"channels_first": "yes"}, "channels_first='yes'"),
        ({"init": np.zeros((16, 3))}, r"init has shape \(16, 3\), expected .* \(16, 4\)"),
        ({"init": np.full((16, 4), np.inf)}, "finite"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"dim": 4, "codebook_size": 16, **kwargs}
    with pytest.raises(ValueError, match=message):
        KohonenVectorQuantize(**arguments)


def test_gdsom_bad_arguments():
    with pytest.raises(ValueError, match="kohonen_weight=-1"):
        GradientKohonenVectorQuantize(4, 16, kohonen_weight=-1)


@pytest.mark.parametrize("cls", [KohonenVectorQuantize, GradientKohonenVectorQuantize])
def test_bad_inputs(cls):
    vq = cls(dim=4, codebook_size=16)
    with pytest.raises(ValueError, match=r"3 features in its last axis \(shape \(2, 3\)\), expected dim=4"):
        vq(torch.randn(2, 3))
    with pytest.raises(ValueError, match="floating-point"):
        vq(torch.ones(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="no features"):
        vq(torch.tensor(1.0))
    with pytest.raises(ValueError, match="no vectors"):
        vq(torch.randn(0, 4))
    with pytest.raises(TypeError, match="ndarray"):
        vq(np.zeros((2, 4)))
    image_vq = cls(dim=4, codebook_size=16, channels_first=True)
    with pytest.raises(ValueError, match=r"3 channels in axis 1 .* expected dim=4"):
        image_vq(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match=r"\(batch, dim, \*spatial\)"):
        image_vq(torch.randn(4))
    assert int(vq.step) == 0  # nothing was trained by the rejected calls


def test_callable_returning_wrong_shape():
    vq = KohonenVectorQuantize(dim=2, codebook_size=4, neighbourhood=lambda d, t: d[0])
    with pytest.raises(ValueError, match=r"returned shape \(4,\), expected \(4, 4\)"):
        vq(torch.randn(5, 2))
