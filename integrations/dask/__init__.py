"""KSOM on dask arrays: data larger than memory, or spread over a dask.distributed cluster.

>>> from dask.distributed import Client                       # doctest: +SKIP
>>> from somvq.integrations.dask import DaskKSOM               # doctest: +SKIP
>>> client = Client("tcp://scheduler:8786")                    # doctest: +SKIP
>>> som = DaskKSOM(grid=(16, 32), algorithm="batch").fit(X)    # X: a dask array  # doctest: +SKIP

``DaskKSOM``
    batch and mini-batch KSOM (docs/algorithms.md §6-§7) whose every step maps the core's
    unit statistics over the row chunks, tree-reduces them (K + K x D numbers per chunk)
    and updates the codebook once on the client. Equal to the in-memory ``KSOM``.

See docs/distributed.md for running on a cluster, what travels per step and a scale figure.
"""

from __future__ import annotations

try:
    import dask.array as _dask_array  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("somvq.integrations.dask needs dask: pip install 'somvq[dask]'.") from error

from .estimator import DaskKSOM

__all__ = ["DaskKSOM"]
