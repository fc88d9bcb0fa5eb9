"""PyTorch plugin: Kohonen (KSOM) codebooks for VQ-VAE training.

>>> from somvq.integrations.torch import KohonenVectorQuantize   # doctest: +SKIP
>>> vq = KohonenVectorQuantize(dim=64, codebook_size=512)          # doctest: +SKIP
>>> quantized, indices, loss = vq(z)                               # doctest: +SKIP

``KohonenVectorQuantize``
    the paper's KSOM-EMA codebook (docs/algorithms.md §7, docs/torch.md); ``neighbourhood="none"``
    is exactly EMA-VQ.
``GradientKohonenVectorQuantize``
    the gradient-trained variant (GD-SOM, docs/torch.md).

See docs/torch.md for swapping an EMA-VQ layer, distributed training and the benchmark.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("somvq.integrations.torch needs PyTorch: pip install 'somvq[torch]'.") from error

from .gdsom import GradientKohonenVectorQuantize
from .quantizer import KohonenVectorQuantize

__all__ = ["KohonenVectorQuantize", "GradientKohonenVectorQuantize"]
