"""What runs on the dask workers: one row chunk at a time, and the reductions of the results.

Every function here is a module-level function (pickled by reference, so a worker imports
it instead of receiving code) that takes plain NumPy blocks and small arguments, and calls
the core (:mod:`somvq.algorithms`, or a fitted :class:`~somvq.KSOM` for inference). The
only things that travel back to the client are per-chunk statistics: K hit counts, K x D
sums, one squared error and one row count; never anything with a row per sample.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from somvq import algorithms, missing
from somvq._validation import check_training_range

__all__ = [
    "chunk_where",
    "check_inference_rows",
    "chunk_statistics",
    "chunk_masked_statistics",
    "layered_labels_block",
    "sum_statistics",
    "predict_block",
    "transform_block",
    "bmu_coordinates_block",
    "impute_block",
    "chunk_quantization_error",
    "chunk_topographic_error",
    "sum_weighted",
]


def chunk_where(chunk_index: int) -> str:
    """What a chunk's error adds to its message: which row chunk (``" (row chunk 1)"``)."""
    return f" (row chunk {chunk_index})"


def check_chunk(block: np.ndarray, chunk_index: int) -> None:
    """The checks ``KSOM.fit`` makes of in-memory data, on one chunk: NaN or inf, and
    float64 values so large that squared distances overflow (:func:`check_training_range`).

    One pass over the block next to the GEMM's K passes: cheap, and the same clear error,
    raised where the data is instead of a silently NaN (or inf) codebook.
    """
    where = chunk_where(chunk_index)
    if not np.isfinite(block).all():
        raise ValueError(f"Input X contains NaN or infinity{where}.")
    check_training_range(block, f"the training data{where}")


def check_inference_rows(block: np.ndarray, model, chunk_index: int, starts, *, layered: bool) -> None:
    """The checks of ``model``'s inference that name rows, on one chunk, naming its rows in
    the whole array (``starts[chunk_index]``: the chunk's first row, see
    :func:`~somvq.integrations.dask.engine.row_starts`) and the chunk, as the fit's chunk
    tasks do; run before the model's own method, which then finds nothing to name.

    ``missing="ignore"``: inf and rows with no observed feature
    (:func:`somvq.missing.check_missing`, any fraction missing maps). ``layered``
    (``predict``, ``bmu_coordinates``, ``impute``) and a layered map: rows with no observed
    value in one of the layers that ``predict_layers`` keeps
    (:func:`somvq.layers.check_layer_missing`).
    """
    if model.missing != "ignore":
        return
    row_offset = int(starts[chunk_index])
    where = chunk_where(chunk_index)
    missing.check_missing(block, 1.0, row_offset=row_offset, where=where)
    spec = model._fitted_layers() if layered and missing.has_missing(block) else None
    if spec is not None:
        from somvq import layers

        spec = layers.select_layers(spec, model.predict_layers)
        layers.check_layers_observed(block, spec, row_offset=row_offset, where=where)


def chunk_statistics(block: np.ndarray, codebook: np.ndarray, chunk_index: int) -> algorithms.UnitStatistics:
    """Counts ``c = E^T 1`` (K,), sums ``S = E^T X`` (K, D) and squared error of one chunk."""
    check_chunk(block, chunk_index)
    return algorithms.unit_statistics(block, codebook)


def chunk_masked_statistics(
    block: np.ndarray,
    codebook: np.ndarray,
    chunk_index: int,
    row_offset: int,
    max_missing: float,
    layers=None,
) -> missing.MaskedStatistics:
    """Per unit and per feature counts and sums over observed entries of one chunk (NaN allowed).

    ``KSOM(missing="ignore")``: the chunk is checked as ``fit`` checks in-memory data
    (inf, rows with no observed feature, rows over ``max_missing``), naming global rows.
    Layered maps (``layers``, a :class:`somvq.layers.ScaledLayers`): also per layer, and
    the winners by the per-layer masked distance (:func:`somvq.layers.check_layer_missing`).
    """
    where = chunk_where(chunk_index)
    missing.check_missing(block, max_missing, row_offset=row_offset, where=where)
    check_training_range(block, f"the training data{where}")
    if layers is not None:
        from somvq.layers import check_layer_missing

        check_layer_missing(block, layers.spec.columns, max_missing, row_offset=row_offset, where=where)
    return missing.masked_unit_statistics(block, codebook, layers)


def layered_labels_block(block: np.ndarray, search_codebook: np.ndarray, groups) -> np.ndarray:
    """BMU of each row of a layered fit's scaled chunk against its search codebook (NaN allowed)."""
    if missing.has_missing(block):
        from somvq.layers import layered_masked_assign

        return layered_masked_assign(block, search_codebook, groups)[0]
    return algorithms.assign(np.ascontiguousarray(block), search_codebook)[0]


def sum_statistics(*parts: algorithms.UnitStatistics) -> algorithms.UnitStatistics:
    """Sum of per-chunk statistics, left to right (a fixed order: deterministic bits)."""
    return functools.reduce(operator.add, parts)


# An empty chunk (a filter's, or uneven chunks) gets an empty answer of the right shape and
# dtype: the estimator's own methods refuse 0 rows, as scikit-learn's validation does.
# The blockwise tasks (dask's map_blocks) learn their chunk from ``block_id``; ``starts`` is
# the first row of every chunk (:func:`~somvq.integrations.dask.engine.row_starts`).


def predict_block(block: np.ndarray, model, starts, block_id=None) -> np.ndarray:
    """BMU index of each row of the block (``KSOM.predict``)."""
    if block.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    check_inference_rows(block, model, block_id[0], starts, layered=True)
    return model.predict(block)


def transform_block(block: np.ndarray, model, starts, block_id=None) -> np.ndarray:
    """Distances of each row of the block to every unit (``KSOM.transform``)."""
    if block.shape[0] == 0:
        return np.empty((0, model.codebook_.shape[0]), dtype=model.codebook_.dtype)
    check_inference_rows(block, model, block_id[0], starts, layered=False)
    return model.transform(block)


def impute_block(block: np.ndarray, model, starts, block_id=None) -> np.ndarray:
    """The block with each NaN filled from its row's BMU (``KSOM.impute``)."""
    if block.shape[0] == 0:
        return block.copy()
    check_inference_rows(block, model, block_id[0], starts, layered=True)
    return model.impute(block)


def bmu_coordinates_block(block: np.ndarray, model, starts, block_id=None) -> np.ndarray:
    """Grid coordinates of each row's BMU (``KSOM.bmu_coordinates``)."""
    if block.shape[0] == 0:
        return np.asarray(model.grid_.indices)[:0]
    check_inference_rows(block, model, block_id[0], starts, layered=True)
    return model.bmu_coordinates(block)


def chunk_quantization_error(
    block: np.ndarray, model, squared: bool, chunk_index: int, starts
) -> tuple[int, float]:
    """``(rows, sum over rows of the distance to the BMU)`` of one chunk."""
    if block.shape[0] == 0:
        return 0, 0.0
    check_inference_rows(block, model, chunk_index, starts, layered=False)
    return block.shape[0], block.shape[0] * model.quantization_error(block, squared=squared)


def chunk_topographic_error(block: np.ndarray, model, chunk_index: int, starts) -> tuple[int, float]:
    """``(rows, number of rows whose two best units are not grid neighbours)``."""
    if block.shape[0] == 0:
        return 0, 0.0
    check_inference_rows(block, model, chunk_index, starts, layered=False)
    return block.shape[0], block.shape[0] * model.topographic_error(block)


def sum_weighted(*parts: tuple[int, float]) -> tuple[int, float]:
    """Sum of ``(rows, total)`` pairs."""
    return sum(p[0] for p in parts), sum(p[1] for p in parts)
