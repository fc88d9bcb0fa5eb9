"""Training loop of one VQ-VAE: AdamW, gradient clipping, validation, logs, checkpoint/resume.

One run writes into its output directory:

``config.json``
    the :class:`TrainConfig`;
``log.csv`` and ``log.json``
    one record per training step: ``step``, ``seconds``, ``train_loss`` (reconstruction +
    commitment), ``train_reconstruction``, ``perplexity`` and ``used_codes`` of the
    batch, ``dead_codes`` and ``usage_perplexity`` of the quantiser's usage window (codes
    not selected in the last ``usage_window`` = 100 training batches, and the perplexity
    of the selection frequencies over those batches); every ``validation_interval`` steps also ``val_loss`` (reconstruction MSE on the
    validation split, quantiser in eval mode), ``val_perplexity`` and ``val_used_codes``;
``checkpoint.pt``
    model (with the quantiser's buffers: codebook, EMA counts and sums, step t),
    optimiser, training step, RNG states (tensors and plain numbers) and the log so far,
    written atomically every ``checkpoint_interval`` steps and at the end. It holds plain
    data only and is read with ``torch.load(weights_only=True)``: a planted file that
    would run code when unpickled is refused (:class:`somvq.exceptions.CheckpointError`),
    never executed. Rerunning with the same directory resumes
    from it; the batches are a pure function of (seed, step) and every state is restored,
    so a resumed run is bit-identical to an uninterrupted one on the same device and
    thread count.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pickle
import random
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from somvq._atomic import atomic_write

from .data import ImageData, batch_indices, load_image_data
from .model import VQVAE, check_image_size

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "build_model",
    "validate",
    "load_checkpoint",
    "restore",
    "check_run_outputs",
    "check_output_files",
    "LOG_FIELDS",
    "RUN_FILES",
]

LOG_FIELDS = (
    "step",
    "seconds",
    "train_loss",
    "train_reconstruction",
    "perplexity",
    "used_codes",
    "dead_codes",
    "usage_perplexity",
    "val_loss",
    "val_perplexity",
    "val_used_codes",
)
# Changing any of these between a checkpoint and its resumption would make a different run.
_MODEL_FIELDS = (
    "dataset",
    "channels",
    "latent_dim",
    "codebook_size",
    "grid",
    "neighbourhood",
    "init_count",
    "update",
    "decay",
    "shrink",
    "commitment_weight",
    "batch_size",
    "lr",
    "weight_decay",
    "seed",
    "validation_size",
    "n_samples",
    "split_seed",
)


_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Largest learning rate: AdamW's first step is ``lr / (1 - beta1)`` (beta1 = 0.9) in
#: float32; above this it overflows inside the optimiser (a RuntimeError, not a divergence).
MAX_LR = _FLOAT32_MAX * (1.0 - 0.9)

#: The files of one run's directory (see the module's docstring).
RUN_FILES = ("config.json", "log.csv", "log.json", "checkpoint.pt")

#: Largest seed (2^32 - 1, as NumPy's): the data order's seeds are ``seed * 1_000_003 +
#: epoch``, which must stay a torch int64.
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    """Everything that defines one training run (defaults: the paper's CIFAR-10 setup)."""

    dataset: str = "fashion-mnist"
    steps: int = 30_000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    channels: int = 128
    latent_dim: int = 64
    codebook_size: int = 512
    grid: Sequence[int] | None = None
    neighbourhood: str = "hard"
    init_count: float = 1.0
    update: str = "all"
    decay: float = 0.99
    shrink: float = 0.1
    commitment_weight: float = 0.25
    seed: int = 0
    validation_interval: int = 500
    validation_size: int | float = 5000
    checkpoint_interval: int = 1000
    time_budget: float | None = None  # seconds of training; None: no limit
    device: str = "cpu"
    n_samples: int | None = None
    split_seed: int = 0
    data_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["grid"] = None if self.grid is None else list(self.grid)
        return out

    def check(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "channels",
            "latent_dim",
            "codebook_size",
            "validation_interval",
            "checkpoint_interval",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        if self.channels % 2:  # the encoder's first layer has channels // 2 (model.VQVAE)
            raise ValueError(f"channels={self.channels} must be an even number >= 2.")
        if not (math.isfinite(self.init_count) and self.init_count >= 0):
            raise ValueError(f"init_count={self.init_count} must be a finite number >= 0.")
        if not 0 < self.lr <= MAX_LR:  # the optimiser's step is float32 (nan: refused too)
            raise ValueError(
                f"lr={self.lr} must be > 0 and at most {MAX_LR:.4g} (float32's largest times 1 - beta1: "
                "AdamW's first step divides the rate by 0.1)."
            )
        for name in ("seed", "split_seed"):
            # the batches' seeds are seed * 1_000_003 + epoch, an int64 for torch
            if not 0 <= getattr(self, name) <= MAX_SEED:
                raise ValueError(f"{name}={getattr(self, name)} must be in 0..{MAX_SEED}.")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget={self.time_budget} must be > 0 seconds.")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device={self.device!r} is not 'cpu' or 'cuda'.")
        if self.grid is not None and math.prod(self.grid) != self.codebook_size:
            raise ValueError(
                f"grid {tuple(self.grid)} has {math.prod(self.grid)} units, but "
                f"codebook_size={self.codebook_size}; they must agree."
            )
        if (
            self.n_samples is not None
            and isinstance(self.validation_size, int)
            and self.validation_size >= self.n_samples
        ):
            raise ValueError(
                f"validation_size={self.validation_size} leaves no training images out of "
                f"n_samples={self.n_samples}."
            )


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its data and the per-step log."""

    config: TrainConfig
    model: VQVAE
    data: ImageData
    records: list[dict[str, Any]] = field(default_factory=list)
    output_dir: Path | None = None
    resumed_from: int = 0
    stopped_by_time: bool = False


def resolve_device(device: str) -> torch.device:
    """The torch device, or a clear error when CUDA was asked for but is unavailable."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from somvq.exceptions import BackendUnavailableError

        raise BackendUnavailableError(f"device={device!r} was requested but CUDA is not available here.")
    return torch.device(device)


def build_model(config: TrainConfig, in_channels: int) -> VQVAE:
    """The VQ-VAE of ``config``, initialised from ``torch.manual_seed(config.seed)``."""
    torch.manual_seed(config.seed)
    return VQVAE(
        in_channels=in_channels,
        channels=config.channels,
        latent_dim=config.latent_dim,
        codebook_size=config.codebook_size,
        grid=config.grid,
        neighbourhood=config.neighbourhood,
        init_count=config.init_count,
        update=config.update,
        decay=config.decay,
        shrink=config.shrink,
        commitment_weight=config.commitment_weight,
    )


@torch.no_grad()
def validate(
    model: VQVAE, images: torch.Tensor, device: torch.device, batch_size: int = 500
) -> dict[str, float]:
    """Reconstruction MSE, perplexity and used codes over ``images`` (eval mode; restores the mode)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    hits = torch.zeros(model.quantizer.codebook_size, dtype=torch.float64, device=device)
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        reconstruction, indices, _ = model(x)
        total += float(F.mse_loss(reconstruction, x, reduction="sum"))
        count += x.numel()
        hits.index_add_(
            0, indices.reshape(-1), torch.ones(indices.numel(), dtype=torch.float64, device=device)
        )
    model.train(was_training)
    p = hits / hits.sum()
    return {
        "val_loss": total / count,
        "val_perplexity": float(torch.exp(-(p * torch.log(p + 1e-10)).sum())),
        "val_used_codes": int((hits > 0).sum()),
    }


# ------------------------------------------------------------------ checkpoints and logs
_CHECKPOINT_FORMAT = "somvq-vqvae-checkpoint/1"
# Key -> type of a checkpoint's top-level entries (all plain data: weights_only loads them).
_CHECKPOINT_ENTRIES = {
    "config": dict,
    "step": int,
    "seconds": (int, float),
    "model": dict,
    "optimiser": dict,
    "rng": dict,
    "records": list,
}


def _rng_states() -> dict[str, Any]:
    kind, keys, position, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (checkpoints the global RNG)
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    # .cpu(): a checkpoint loaded with map_location="cuda" has its RNG tensors there too.
    torch.set_rng_state(states["torch"].cpu())
    kind, keys, position, has_gauss, gauss = states["numpy"]
    numpy_state = (kind, keys.cpu().numpy().astype(np.uint32), position, has_gauss, gauss)
    np.random.set_state(numpy_state)  # noqa: NPY002 (restores the global RNG)
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states["cuda"]])


def _save_checkpoint(
    path: Path, model, optimiser, step: int, seconds: float, records, config: TrainConfig
) -> None:
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "step": step,
        "seconds": seconds,
        "model": model.state_dict(),
        "optimiser": optimiser.state_dict(),
        "rng": _rng_states(),
        "records": records,
    }
    # never a half-written checkpoint, nor a temporary file left by an interrupt
    atomic_write(path, lambda handle: torch.save(payload, handle))


def check_same_settings(payload: dict[str, Any], config: TrainConfig, path: str | os.PathLike) -> None:
    """Refuse a checkpoint (``payload``) trained with other settings than ``config`` (the
    model, data and optimiser fields: resuming or reusing it would mix two runs), or
    further than ``config.steps`` (its model and log are not the run ``config`` asks for)."""
    saved = payload["config"]
    current = config.to_dict()
    changed = [k for k in _MODEL_FIELDS if saved.get(k) != current.get(k)]
    if changed:
        raise ValueError(
            f"{str(path)!r} was trained with other settings ({', '.join(f'{k}={saved.get(k)!r}' for k in changed)}); "
            "use another output directory or remove the checkpoint."
        )
    if payload["step"] > config.steps:
        raise ValueError(
            f"{str(path)!r} was trained for {payload['step']} steps, more than steps={config.steps}; "
            f"ask for {payload['step']} steps or more, or use another output directory."
        )


def restore(path: str | os.PathLike, payload: dict[str, Any], model: Any, optimiser: Any = None) -> None:
    """Load a checkpoint's ``payload`` into ``model`` (and ``optimiser`` and the random
    generators, to resume); a state that does not fit them is a CheckpointError naming
    the file and the reason."""
    from somvq.exceptions import CheckpointError

    try:
        model.load_state_dict(payload["model"])
        if optimiser is not None:
            optimiser.load_state_dict(payload["optimiser"])
            _set_rng_states(payload["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CheckpointError(
            f"{str(path)!r} is corrupted: its state cannot be restored ({_first_line(exc)}); "
            "remove it to start afresh."
        ) from None


def check_output_files(directory: str | os.PathLike, names: Sequence[str], writer: str) -> None:
    """Before any work: each file ``names`` in ``directory`` is a regular file or absent
    (a directory in its place failed only when written, after the training); ValueError
    naming the first that is not and what (``writer``) writes it."""
    for name in names:
        path = Path(directory) / name
        if path.exists() and not path.is_file():
            raise ValueError(f"{str(path)!r} is not a regular file; {writer} writes its {name} there.")


def check_run_outputs(directory: str | os.PathLike) -> None:
    """:func:`check_output_files` of a run's files (:data:`RUN_FILES`)."""
    check_output_files(directory, RUN_FILES, "a run")


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """The content of a ``checkpoint.pt``: tensors, numbers, strings and the log.

    The file is read with ``torch.load(weights_only=True)``, which unpickles only tensors
    and plain containers: a planted file whose pickle would run code (``__reduce__`` of an
    arbitrary callable) is refused, and nothing in it is executed.

    Raises
    ------
    somvq.exceptions.CheckpointError
        The file is truncated, not a torch file, holds anything but plain data, or is not
        a somvq VQ-VAE checkpoint (a one-line message naming the file).
    """
    from somvq.exceptions import CheckpointError

    name = str(path)
    try:
        _check_zip_crcs(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note about the pickle protocol of garbage
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        raise CheckpointError(f"cannot read the checkpoint {name!r}: {exc.strerror or exc}.") from None
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError, KeyError... of a damaged file
        text = str(exc)
        if isinstance(exc, pickle.UnpicklingError) and "GLOBAL" in text.upper():
            # weights_only refused a global: unpickling it would import and call code.
            reason = "it holds objects other than tensors and plain data (loading it would run code), so it was not loaded"
        else:
            reason = f"it is corrupted or truncated ({_first_line(exc)})"
        raise CheckpointError(
            f"{name!r} is not a usable checkpoint: {reason}; remove it to start afresh."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{name!r} is not a somvq VQ-VAE checkpoint.")
    for key, kind in _CHECKPOINT_ENTRIES.items():
        if not isinstance(payload.get(key), kind) or isinstance(payload.get(key), bool):
            raise CheckpointError(
                f"{name!r} is corrupted: its {key!r} entry is missing or of the wrong type."
            )
    if payload["step"] < 0:
        raise CheckpointError(f"{name!r} is corrupted: step={payload['step']} is negative.")
    records = payload["records"]
    for i, record in enumerate(records):
        if not _is_log_record(record, i + 1):
            raise CheckpointError(
                f"{name!r} is corrupted: its log record {i} is not step {i + 1}'s numbers "
                f"({', '.join(LOG_FIELDS)})."
            )
    if records and payload["step"] != records[-1].get("step"):
        raise CheckpointError(
            f"{name!r} is corrupted: step={payload['step']} is not its log's last step "
            f"({records[-1].get('step')!r})."
        )
    if not (math.isfinite(payload["seconds"]) and payload["seconds"] >= 0):
        raise CheckpointError(f"{name!r} is corrupted: seconds={payload['seconds']!r}.")
    return payload


def _is_log_record(record: Any, step: int) -> bool:
    """A record of the log as :func:`train` writes it: every field of :data:`LOG_FIELDS`,
    numbers or None (the validation's, between validations), for this ``step``."""
    return (
        isinstance(record, dict)
        and all(
            key in record
            and (
                record[key] is None
                or (isinstance(record[key], (int, float)) and not isinstance(record[key], bool))
            )
            for key in LOG_FIELDS
        )
        and record["step"] == step
        and record["train_loss"] is not None
    )


def _check_zip_crcs(path: str | os.PathLike) -> None:
    """A torch checkpoint is a zip: torch.load does not check its members' CRCs, so damaged
    tensor bytes loaded as other numbers. Raises ``ValueError`` naming a member whose bytes
    do not match (a file that is not a zip is left to torch.load's own errors)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return
    with archive:
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ValueError(f"its archive is damaged ({exc})") from None
    if bad is not None:
        raise ValueError(f"the bytes of {bad!r} do not match their checksum")


def _first_line(exc: BaseException) -> str:
    """``Type: message`` of an exception on one short line (torch's messages span many)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip()]
    # torch's weights_only errors put the actual reason after a long preamble.
    for i, line in enumerate(lines[:-1]):
        if line.startswith("Please file an issue") or line.endswith("WeightsUnpickler error:"):
            lines = lines[i + 1 :]
            break
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for X:" + the reason
        text += " " + lines[1]
    text = text if len(text) <= 240 else text[:237] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def write_logs(directory: Path, records: list[dict[str, Any]]) -> None:
    """log.csv and log.json of the records so far (each written whole, then moved in place)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=LOG_FIELDS)
    writer.writeheader()
    for record in records:
        writer.writerow({key: ("" if record.get(key) is None else record[key]) for key in LOG_FIELDS})
    write_text_atomically(directory / "log.csv", text.getvalue())
    write_text_atomically(directory / "log.json", json.dumps(records))


def write_text_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8) or, after any failure or interrupt, what it held
    before: a temporary file moved in place (:func:`somvq._atomic.atomic_write`)."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


# ------------------------------------------------------------------ the loop


def progress_bar(**options: Any) -> Any:
    """A tqdm progress bar, or None (with a warning) when tqdm is not installed.

    tqdm comes with the ``torch`` extra; a study must not fail for want of a progress bar.
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:
        warnings.warn("no progress bar: tqdm is not installed (pip install tqdm)", stacklevel=3)
        return None
    return tqdm(dynamic_ncols=True, **options)


def train(
    config: TrainConfig,
    output_dir: str | os.PathLike | None = None,
    *,
    data: ImageData | None = None,
    resume: bool = True,
    progress: bool = True,
    stop_after: int | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train one VQ-VAE as ``config`` says; resume from ``output_dir/checkpoint.pt`` if present.

    Parameters
    ----------
    config : TrainConfig
    output_dir : path, optional
        Where logs and checkpoints go; None keeps everything in memory (no resume).
    data : ImageData, optional
        Already loaded data (default: :func:`load_image_data` of ``config``).
    resume : bool, default=True
        Continue from an existing checkpoint in ``output_dir`` (its configuration must
        match in everything but ``steps``, ``time_budget`` and the intervals, and it must
        not have run more than ``steps``).
    progress : bool, default=True
        Show a progress bar (tqdm's; none, with a warning, when tqdm is not installed).
    stop_after : int, optional
        Stop (after checkpointing) once this step is reached, as an interruption would;
        used to test resumption.
    callback : callable, optional
        Called with each step's record.
    """
    config.check()
    device = resolve_device(config.device)
    directory = Path(output_dir) if output_dir is not None else None
    if directory is not None:
        check_run_outputs(directory)
    if data is None:
        data = load_image_data(
            config.dataset,
            validation_size=config.validation_size,
            split_seed=config.split_seed,
            n_samples=config.n_samples,
            data_dir=config.data_dir,
        )
    check_image_size(*data.train.shape[-2:])
    model = build_model(config, data.channels).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    records: list[dict[str, Any]] = []
    start_step, seconds_before = 0, 0.0
    checkpoint_path = None
    if directory is not None:
        checkpoint_path = directory / "checkpoint.pt"
        if resume and checkpoint_path.exists():
            payload = load_checkpoint(checkpoint_path, map_location=device)
            check_same_settings(payload, config, checkpoint_path)
            restore(checkpoint_path, payload, model, optimiser)
            start_step, seconds_before = int(payload["step"]), float(payload["seconds"])
            records = list(payload["records"])[:start_step]
    result = TrainResult(config, model, data, records, directory, resumed_from=start_step)

    def save() -> None:
        """Checkpoint, logs and config.json together: the directory is made and config.json
        written here, so a run that fails before its first checkpoint leaves nothing (and a
        --no-resume run interrupted before it leaves the previous run whole)."""
        assert directory is not None and checkpoint_path is not None
        directory.mkdir(parents=True, exist_ok=True)
        _save_checkpoint(checkpoint_path, model, optimiser, step, records[-1]["seconds"], records, config)
        write_logs(directory, records)
        write_text_atomically(directory / "config.json", json.dumps(config.to_dict(), indent=2))

    bar = (
        progress_bar(total=config.steps, initial=start_step, desc=_describe(config), unit="step", leave=False)
        if progress
        else None
    )
    model.train()
    n_train = data.train.shape[0]
    started = time.perf_counter() - seconds_before
    step = start_step
    try:
        while step < config.steps:
            if config.time_budget is not None and time.perf_counter() - started >= config.time_budget:
                result.stopped_by_time = True
                break
            x = data.train[batch_indices(n_train, config.batch_size, step, config.seed)].to(
                device, non_blocking=True
            )
            reconstruction, _, commitment = model(x)
            reconstruction_loss = F.mse_loss(reconstruction, x)
            loss = reconstruction_loss + commitment
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimiser.step()
            step += 1
            record: dict[str, Any] = {
                "step": step,
                "seconds": round(time.perf_counter() - started, 4),
                "train_loss": float(loss.detach()),
                "train_reconstruction": float(reconstruction_loss.detach()),
                "perplexity": float(model.quantizer.perplexity),
                "used_codes": int(model.quantizer.used_codes),
                "dead_codes": int(model.quantizer.dead_codes),
                "usage_perplexity": float(model.quantizer.usage_perplexity),
                "val_loss": None,
                "val_perplexity": None,
                "val_used_codes": None,
            }
            if not math.isfinite(record["train_loss"]):
                raise FloatingPointError(f"the training loss is {record['train_loss']} at step {step}.")
            last = step == config.steps or (
                config.time_budget is not None and time.perf_counter() - started >= config.time_budget
            )
            if step % config.validation_interval == 0 or last:
                record.update(validate(model, data.validation, device))
            records.append(record)
            if callback is not None:
                callback(record)
            if bar is not None:
                bar.update(1)
                if record["val_loss"] is not None:
                    bar.set_postfix(
                        val=f"{record['val_loss']:.4f}",
                        ppl=f"{record['perplexity']:.1f}",
                        dead=record["dead_codes"],
                    )
            if checkpoint_path is not None and (step % config.checkpoint_interval == 0 or last):
                save()
            if stop_after is not None and step >= stop_after:
                break
    finally:
        if bar is not None:
            bar.close()
    if result.stopped_by_time and not records:
        raise ValueError(
            f"time_budget={config.time_budget} s ran out before the first step; give a larger budget."
        )
    if result.stopped_by_time and records[-1]["val_loss"] is None:
        # the budget ran out between validations: validate the final state
        records[-1].update(validate(model, data.validation, device))
    if checkpoint_path is not None and records and step > start_step:
        save()
    return result


def _describe(config: TrainConfig) -> str:
    return f"{config.neighbourhood}-n{config.init_count:g}-{config.update} seed {config.seed}"
