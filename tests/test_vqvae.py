"""The VQ-VAE study at tiny scale: shapes, finite losses, logs, exact resume, report, CLI."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from somvq.cli import main  # noqa: E402
from somvq.integrations.vqvae import VQVAE, TrainConfig, load_image_data, train  # noqa: E402
from somvq.integrations.vqvae.compare import compare  # noqa: E402
from somvq.integrations.vqvae.data import batch_indices  # noqa: E402
from somvq.integrations.vqvae.evaluation import shift_indices  # noqa: E402
from somvq.integrations.vqvae.train import LOG_FIELDS  # noqa: E402
from somvq.integrations.vqvae.variants import ALL_VARIANTS, parse_variants  # noqa: E402

from . import naive  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(
    dataset="digits",
    n_samples=300,
    validation_size=60,
    batch_size=16,
    channels=8,
    latent_dim=4,
    codebook_size=16,
    grid=(4, 4),
)


@pytest.fixture(scope="module")
def digits_data():
    return load_image_data("digits", validation_size=60, n_samples=300)


@pytest.mark.parametrize("size, latent", [(28, 7), (16, 4), (32, 8)])
def test_model_shapes(size, latent):
    torch.manual_seed(0)
    model = VQVAE(in_channels=3, channels=8, latent_dim=4, codebook_size=16, grid=(4, 4))
    x = torch.randn(2, 3, size, size)
    codebook = model.quantizer.codebook.clone()  # the step's z_q come from the codebook before its update
    with torch.no_grad():
        latents = model.encoder(x).permute(0, 2, 3, 1).reshape(-1, 4).double()
    reconstruction, indices, commitment = model(x)
    assert reconstruction.shape == x.shape
    assert indices.shape == (2, latent, latent) and indices.dtype == torch.int64
    # indices: each latent's nearest code; commitment: 0.25 * MSE(z_e, z_q)
    np.testing.assert_array_equal(
        indices.reshape(-1).numpy(), naive.bmu(latents.numpy(), codebook.double().numpy())
    )
    expected = 0.25 * ((latents - codebook.double()[indices.reshape(-1)]) ** 2).mean()
    assert commitment.ndim == 0 and float(commitment.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert model.decode_indices(indices).shape == x.shape
    with pytest.raises(ValueError, match="channels=7"):
        VQVAE(channels=7)


def test_data_split_is_seeded_and_scaled(digits_data):
    assert digits_data.train.shape == (240, 1, 16, 16) and digits_data.validation.shape == (60, 1, 16, 16)
    assert float(digits_data.train.min()) >= -0.5 and float(digits_data.train.max()) <= 0.5
    again = load_image_data("digits", validation_size=60, n_samples=300)
    assert torch.equal(again.validation, digits_data.validation)
    other = load_image_data("digits", validation_size=60, n_samples=300, split_seed=1)
    assert not torch.equal(other.validation, digits_data.validation)
    with pytest.raises(ValueError, match="validation_size"):
        load_image_data("digits", validation_size=300, n_samples=300)
    with pytest.raises(ValueError, match="not one of"):
        load_image_data("cifar")


def test_photo_tiles():
    data = load_image_data("photos", validation_size=0.25)
    assert data.channels == 3 and data.image_shape == (32, 32)
    assert data.train.shape[0] + data.validation.shape[0] == 2 * 25 * 39


def test_batches_are_epochs_of_permutations():
    epoch = torch.cat([batch_indices(10, 3, step, seed=5) for step in range(3)])
    assert len(set(epoch.tolist())) == 9  # no repeats within an epoch; the remainder is skipped
    assert torch.equal(batch_indices(10, 3, 4, seed=5), batch_indices(10, 3, 4, seed=5))
    assert not torch.equal(batch_indices(10, 3, 0, seed=5), batch_indices(10, 3, 3, seed=5))


def test_a_few_steps_log_finite_losses(tmp_path, digits_data):
    config = TrainConfig(**TINY, steps=6, validation_interval=3, checkpoint_interval=3)
    result = train(config, tmp_path, data=digits_data, progress=False)
    assert [r["step"] for r in result.records] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["train_loss"]) for r in result.records)
    assert [r["step"] for r in result.records if r["val_loss"] is not None] == [3, 6]
    assert int(result.model.quantizer.step) == 6
    # Usage over the window (issue 18): the last record is the quantiser's state.
    quantizer = result.model.quantizer
    assert result.records[-1]["dead_codes"] == int((quantizer.usage_ring.sum(0) == 0).sum())
    assert result.records[-1]["usage_perplexity"] == float(quantizer.usage_perplexity)
    assert all(0 <= r["dead_codes"] <= config.codebook_size for r in result.records)
    header = (tmp_path / "log.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == LOG_FIELDS
    assert len(json.loads((tmp_path / "log.json").read_text())) == 6
    assert json.loads((tmp_path / "config.json").read_text())["neighbourhood"] == "hard"
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "log.csv", "log.json", "checkpoint.pt"}


def test_training_without_tqdm_warns_and_trains(monkeypatch, digits_data):
    # `somvq vqvae compare` failed with "No module named 'tqdm'" on a machine without it.
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.warns(UserWarning, match="tqdm is not installed"):
        result = train(TrainConfig(**TINY, steps=2), data=digits_data, progress=True)
    assert [r["step"] for r in result.records] == [1, 2]


@pytest.mark.parametrize("variant", ["hard-n0-all", "none-n1-written"])
def test_resume_is_bit_identical(tmp_path, digits_data, variant):
    v = parse_variants(variant)[0]
    config = TrainConfig(
        **TINY,
        steps=8,
        validation_interval=4,
        checkpoint_interval=2,
        neighbourhood=v.neighbourhood,
        init_count=v.init_count,
        update=v.update,
    )
    whole = train(config, tmp_path / "whole", data=digits_data, progress=False)
    first = train(config, tmp_path / "split", data=digits_data, progress=False, stop_after=5)
    assert len(first.records) == 5
    second = train(config, tmp_path / "split", data=digits_data, progress=False)
    assert second.resumed_from == 5
    for key, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[key]), key
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in whole.records] == [
        {k: v for k, v in r.items() if k not in drop} for r in second.records
    ]


def test_resume_refuses_other_settings(tmp_path, digits_data):
    config = TrainConfig(**TINY, steps=2)
    train(config, tmp_path, data=digits_data, progress=False)
    other = TrainConfig(**{**TINY, "codebook_size": 9, "grid": (3, 3)}, steps=4)
    with pytest.raises(ValueError, match="other settings"):
        train(other, tmp_path, data=digits_data, progress=False)


def test_index_shift_moves_along_the_last_axis_and_reflects():
    indices = torch.tensor([0, 1, 3, 4, 7])  # on a (2, 4) grid
    assert shift_indices(indices, (2, 4), 1).tolist() == [1, 2, 2, 5, 6]
    assert shift_indices(indices, (2, 4), 3).tolist() == [3, 2, 0, 7, 4]


def test_variants():
    assert len(ALL_VARIANTS) == 12 and len(set(ALL_VARIANTS)) == 12
    assert [v.name for v in parse_variants("none-n0-written,exponential-n1-all")] == [
        "none-n0-written",
        "exponential-n1-all",
    ]
    with pytest.raises(ValueError, match="NEIGHBOURHOOD-nN0-UPDATE"):
        parse_variants("gaussian-n1-all")


def test_compare_writes_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    base = TrainConfig(**TINY, steps=6, validation_interval=2, checkpoint_interval=6)
    out = compare(
        base,
        parse_variants("none-n1-all,hard-n1-all"),
        [0],
        tmp_path / "runs",
        tmp_path / "report",
        progress=False,
    )
    report = (tmp_path / "report" / "report.md").read_text()
    for fragment in (
        "| none-n1-all | 1 |",
        "| hard-n1-all | 1 |",
        "steps to 1.1x best",
        "topographic error",
        "neighbour/all",
    ):
        assert fragment in report
    for name in ("validation_loss.png", "perplexity.png", "codebooks.png", "index_shift.png"):
        path = tmp_path / "report" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size < 200_000
    assert set(out["table"]) == {"none-n1-all", "hard-n1-all"}
    # one seed: the table's mean is the run's own value, in runs.csv and in report.md
    run = out["runs"][("hard-n1-all", 0)]
    assert out["table"]["hard-n1-all"]["topographic_error"] == run["topographic_error"]
    with open(tmp_path / "report" / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["variant"], r["seed"]) for r in rows] == [("hard-n1-all", "0"), ("none-n1-all", "0")]
    assert float(rows[0]["topographic_error"]) == run["topographic_error"]
    assert f"| {run['topographic_error']:.3f} |" in report.split("| hard-n1-all | 1 |")[1].splitlines()[0]


# ----------------------------------------------------------------------------- CLI
CLI_TINY = [
    "--dataset",
    "digits",
    "--n-samples",
    "300",
    "--val-size",
    "60",
    "--batch-size",
    "16",
    "--channels",
    "8",
    "--latent-dim",
    "4",
    "--codebook-size",
    "16",
    "--grid",
    "4x4",
    "--val-interval",
    "2",
    "-q",
]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_train_and_resume(tmp_path):
    result = run("vqvae", "train", *CLI_TINY, "--steps", "3", "--neighbourhood", "none", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    assert "best validation loss" in result.output and (tmp_path / "checkpoint.pt").exists()
    result = run("vqvae", "train", *CLI_TINY, "--steps", "5", "--neighbourhood", "none", "-o", tmp_path)
    assert result.exit_code == 0 and "resumed from step" in result.output and " 3" in result.output
    assert len(json.loads((tmp_path / "log.json").read_text())) == 5


def test_cli_compare(tmp_path):
    pytest.importorskip("matplotlib")
    result = run(
        "vqvae",
        "compare",
        *CLI_TINY,
        "--steps",
        "4",
        "--variants",
        "none-n0-all,exponential-n0-all",
        "--seeds",
        "0",
        "-o",
        tmp_path / "runs",
        "--report-dir",
        tmp_path / "report",
    )
    assert result.exit_code == 0, result.output
    assert "| exponential-n0-all | 1 |" in result.output
    assert (tmp_path / "report" / "index_shift.png").exists()


def test_cli_errors(tmp_path):
    result = run("vqvae", "compare", "--variants", "gaussian-n1-all", "-o", tmp_path)
    assert result.exit_code == 2 and "NEIGHBOURHOOD-nN0-UPDATE" in result.output
    result = run("vqvae", "compare", "--seeds", "0,x", "-o", tmp_path)
    assert result.exit_code == 2 and "integers" in result.output
    if not torch.cuda.is_available():
        result = run("vqvae", "train", *CLI_TINY, "--steps", "1", "--device", "cuda", "-o", tmp_path)
        assert result.exit_code == 1 and "CUDA is not available" in result.output
    # inconsistent options: usage errors before any work (data errors after loading, before)
    result = run("vqvae", "train", "--dataset", "digits", "--grid", "3x3", "--steps", "1", "-o", tmp_path)
    assert result.exit_code == 2 and "grid (3, 3) has 9 units, but codebook_size=128" in result.output
    result = run(
        "vqvae",
        "train",
        "--dataset",
        "digits",
        "--n-samples",
        100,
        "--val-size",
        200,
        "--steps",
        "1",
        "-o",
        tmp_path,
    )
    assert (
        result.exit_code == 2
        and "validation_size=200 leaves no training images out of n_samples=100" in result.output
    )
    assert not (tmp_path / "checkpoint.pt").exists()


def test_cli_vqvae_commands_are_documented():
    docs = (ROOT / "docs" / "cli.md").read_text()
    group = main.commands["vqvae"]
    for name, command in group.commands.items():
        assert command.help and f"somvq vqvae {name}" in docs
        for param in command.params:
            if hasattr(param, "opts") and param.param_type_name == "option":
                assert param.help, (name, param.opts)
                assert param.opts[-1] in docs, f"vqvae {name} {param.opts[-1]} is not documented"


# ------------------------------------------------------------------ checkpoint safety (issue 11, section 4)
class _CreatesAFile:
    """Unpickling this calls ``open(path, "w")``: a stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(directory, marker, how="zip"):
    """A checkpoint.pt whose unpickling would create ``marker``: torch's zip format, its
    legacy format, or a bare pickle."""
    import pickle

    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": "somvq-vqvae-checkpoint/1",
        "config": {},
        "step": 0,
        "payload": _CreatesAFile(marker),
    }
    if how == "pickle":
        (directory / "checkpoint.pt").write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, directory / "checkpoint.pt", _use_new_zipfile_serialization=how == "zip")


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "unexpected" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("how", ["zip", "legacy", "pickle"])
def test_planted_checkpoint_runs_no_code(tmp_path, digits_data, how):
    from somvq.exceptions import CheckpointError

    marker = tmp_path / "created-by-the-checkpoint"
    _plant(tmp_path / "run", marker, how)
    # (a protocol-4 bare pickle is refused at its first FRAME opcode, before any global)
    with pytest.raises(
        CheckpointError, match="would run code" if how != "pickle" else "not a usable checkpoint"
    ):
        train(TrainConfig(**TINY, steps=2), tmp_path / "run", data=digits_data, progress=False)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["train", "compare"])
def test_cli_planted_checkpoint_is_a_one_line_error(tmp_path, command):
    marker = tmp_path / "created-by-the-checkpoint"
    if command == "train":
        _plant(tmp_path / "run", marker)
        result = run("vqvae", "train", *CLI_TINY, "--steps", "2", "-o", tmp_path / "run")
    else:
        _plant(tmp_path / "out" / "runs" / "none-n1-all" / "seed0", marker)
        result = run(
            "vqvae",
            "compare",
            *CLI_TINY,
            "--steps",
            "2",
            "--variants",
            "none-n1-all",
            "--seeds",
            "0",
            "-o",
            tmp_path / "out",
        )
    _one_line_error(result, "checkpoint.pt", "would run code")
    assert not marker.exists()


def _damage(kind, data):
    if kind == "truncated":
        return data[: len(data) // 2]
    if kind == "garbage":
        return bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    if kind == "pickle garbage":
        return b"\x80\x04" + b"not a pickle at all" * 20
    return b""


@pytest.mark.parametrize("kind", ["truncated", "garbage", "pickle garbage", "empty"])
def test_cli_corrupted_checkpoint_is_a_one_line_error(tmp_path, kind):
    directory = tmp_path / "run"
    result = run(
        "vqvae", "train", *CLI_TINY, "--steps", "2", "--neighbourhood", "none", "-q", "-o", directory
    )
    assert result.exit_code == 0, result.output
    path = directory / "checkpoint.pt"
    path.write_bytes(_damage(kind, path.read_bytes()))
    result = run(
        "vqvae", "train", *CLI_TINY, "--steps", "3", "--neighbourhood", "none", "-q", "-o", directory
    )
    _one_line_error(result, "checkpoint.pt", "not a usable checkpoint")


def test_checkpoint_with_missing_entries_is_refused(tmp_path, digits_data):
    from somvq.exceptions import CheckpointError
    from somvq.integrations.vqvae.train import load_checkpoint

    config = TrainConfig(**TINY, steps=2)
    train(config, tmp_path, data=digits_data, progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    for key, value in [("step", "3"), ("step", -1), ("model", None), ("records", {})]:
        torch.save({**payload, key: value}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=repr(key) if key != "step" or value != -1 else "negative"):
            load_checkpoint(tmp_path / "bad.pt")
    # a state that does not fit the model: a clear error, not a RuntimeError
    model = dict(payload["model"])
    model["quantizer.codebook"] = model["quantizer.codebook"][:3]
    torch.save({**payload, "model": model}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="cannot be restored"):
        train(config, tmp_path, data=digits_data, progress=False)


def test_documented_10k_study_command_parses():
    """docs/vqvae-study.md "The 10k-step runs": the command is valid as written (issue 18)."""
    import re
    import shlex

    text = (ROOT / "docs" / "vqvae-study.md").read_text()
    section = text.split("## The 10k-step runs", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```console\n\$ (.*?)```", section, re.S).group(1).replace("\\\n", " ")
    args = shlex.split(command)
    assert args[:3] == ["somvq", "vqvae", "compare"]
    context = main.commands["vqvae"].commands["compare"].make_context("compare", args[3:])
    assert [v.name for v in context.params["variants"]] == [
        "hard-n1-all",
        "exponential-n1-all",
        "none-n1-all",
        "none-n0-all",
    ]
    assert context.params["seeds"] == [0, 1, 2] and context.params["steps"] == 10_000
    assert context.params["time_budget"] is None


# ------------------------------------------------------------ found by an adversarial pass
def test_compare_refuses_the_runs_of_another_configuration(tmp_path):
    """compare took any finished checkpoint in its directory as done: a study with another
    codebook size reported the old runs under the new settings."""
    base = TrainConfig(**TINY, steps=2, validation_interval=2, checkpoint_interval=2)
    variants = parse_variants("none-n1-all")
    from somvq.integrations.vqvae.runs import train_runs

    train_runs(base, variants, [0], tmp_path, progress=False)
    other = TrainConfig(**{**TINY, "codebook_size": 9, "grid": (3, 3)}, steps=2, validation_interval=2)
    with pytest.raises(ValueError, match=r"other settings \(codebook_size=16, grid=\[4, 4\]\)"):
        train_runs(other, variants, [0], tmp_path, progress=False)


def test_checkpoints_with_damaged_bytes_or_inconsistent_entries_are_refused(tmp_path, digits_data):
    """torch.load does not check the zip's CRCs: changed tensor bytes were loaded as other
    weights and training resumed from them. A log that is not records, a step that is
    not the log's last and non-finite seconds were accepted too."""
    import zipfile

    from somvq.exceptions import CheckpointError
    from somvq.integrations.vqvae.train import load_checkpoint

    config = TrainConfig(**TINY, steps=2)
    train(config, tmp_path, data=digits_data, progress=False)
    path = tmp_path / "checkpoint.pt"
    payload = load_checkpoint(path)
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 16)
    data = bytearray(path.read_bytes())
    local = member.header_offset  # the local header's own name and extra lengths
    offset = local + 30 + int.from_bytes(data[local + 26 : local + 28], "little")
    offset += int.from_bytes(data[local + 28 : local + 30], "little")
    data[offset : offset + 4] = bytes(b ^ 0xFF for b in data[offset : offset + 4])  # other numbers
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match their checksum"):
        load_checkpoint(tmp_path / "bad.pt")
    record = payload["records"][0]
    for change, match in [
        ({"records": [1, 2]}, "log record 0 is not step 1's numbers"),
        ({"step": 10**30}, "not its log's last step"),
        ({"seconds": float("nan")}, "seconds=nan"),
        # fields missing or not numbers: "unexpected KeyError / UFuncTypeError" on resume
        ({"records": [{"step": 1, "val_loss": 0.1}, payload["records"][1]]}, "log record 0 is not step 1's"),
        ({"records": [{**record, "val_loss": "x"}, payload["records"][1]]}, "log record 0"),
        ({"records": [{**record, "used_codes": True}, payload["records"][1]]}, "log record 0"),
        ({"records": [payload["records"][1], payload["records"][1]]}, "log record 0 is not step 1's"),
    ]:
        torch.save({**payload, **change}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(tmp_path / "bad.pt")


def test_an_interrupted_checkpoint_write_leaves_the_last_one_and_no_temporary(
    tmp_path, digits_data, monkeypatch
):
    import importlib

    train_module = importlib.import_module("somvq.integrations.vqvae.train")

    config = TrainConfig(**TINY, steps=2, checkpoint_interval=2)
    train(config, tmp_path, data=digits_data, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()

    def interrupted(obj, handle, *args, **kwargs):
        handle.write(b"part of a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**TINY, steps=4, checkpoint_interval=2), tmp_path, data=digits_data, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "log.csv",
        "log.json",
    ]


def test_cli_vqvae_digits_example_seeds_and_divergence(tmp_path):
    """The --help example on digits failed (--val-size 2000 of 1797 images); a seed beyond
    int64 after scaling failed with "Overflow when unpacking long long" after the data was
    loaded; --lr inf was accepted and a diverged run reported as an unexpected error."""
    small = ["--n-samples", "300", "--batch-size", "16", "--channels", "8", "--latent-dim", "4", "-q"]
    result = run(
        "vqvae",
        "train",
        "--dataset",
        "digits",
        *small,
        "--steps",
        "1",
        "--codebook-size",
        "16",
        "--grid",
        "4x4",
        "-o",
        tmp_path / "a",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "config.json").read_text())["validation_size"] == 0.2
    for option in (
        ["--seed", "100000000000000"],
        ["--lr", "inf"],
        ["--lr", "1e300"],
        ["--init-count", "nan"],
        ["--channels", "5"],
    ):
        result = run("vqvae", "train", *CLI_TINY, "--steps", "1", *option, "-o", tmp_path / "b")
        assert result.exit_code == 2, (option, result.output)
        assert not (tmp_path / "b").exists()
    result = run("vqvae", "compare", "--seeds", "0,99999999999999", "-o", tmp_path / "c")
    assert result.exit_code == 2 and "not in 0..4294967295" in result.output
    result = run("vqvae", "train", *CLI_TINY, "--steps", "3", "--lr", "1e4", "-o", tmp_path / "d")
    _one_line_error(result, "training loss is")


def test_curves_of_seeds_that_stopped_at_different_steps_are_paired_by_step():
    """Seed 0 stopped at step 130 (--time-budget), seed 1 ran on: their points were paired
    by position, averaging step 130 with step 150 (found by an adversarial pass)."""
    from integrations.vqvae.figures import _aligned

    first = np.array([[50, 1 / 50], [100, 1 / 100], [130, 1 / 130]])
    second = np.array([[50, 1 / 50], [100, 1 / 100], [100, 0.5], [150, 1 / 150], [200, 1 / 200]])
    steps, values = _aligned([first, second])
    np.testing.assert_array_equal(steps, [50, 100])
    # the last value logged at a step counts
    np.testing.assert_array_equal(values, [[1 / 50, 1 / 100], [1 / 50, 0.5]])


# ------------------------------------------------------------------ found by a bug hunt (round 21)
def test_compare_names_a_finished_run_whose_state_cannot_be_restored(tmp_path):
    """The report rebuilt finished runs without the checks train() has: a NaN codebook gave
    "unexpected RuntimeError", a setting of another version "unexpected TypeError"; and
    train's own message stopped at torch's first line ("... for KohonenVectorQuantize:")."""
    pytest.importorskip("matplotlib")
    args = ["vqvae", "compare", *CLI_TINY, "--steps", "2", "--variants", "none-n1-all", "--seeds", "0"]
    args += ["-o", tmp_path]
    assert run(*args).exit_code == 0
    path = tmp_path / "runs" / "none-n1-all" / "seed0" / "checkpoint.pt"
    payload = torch.load(path, weights_only=True)
    broken = {**payload, "model": dict(payload["model"])}
    broken["model"]["quantizer.codebook"] = broken["model"]["quantizer.codebook"].clone()
    broken["model"]["quantizer.codebook"][0, 0] = float("nan")
    torch.save(broken, path)
    result = run(*args)
    assert result.exit_code == 1 and "unexpected" not in result.output
    assert f"{str(path)!r} is corrupted: its state cannot be restored" in result.output
    assert "quantizer.codebook holds NaN or infinite values" in result.output
    torch.save({**payload, "config": {**payload["config"], "new_option": 1}}, path)
    result = run(*args)
    assert result.exit_code == 1 and "settings this somvq does not know: ['new_option']" in result.output


def test_a_learning_rate_that_overflows_adams_first_step_is_refused():
    """lr = 1e38 passed the float32 bound and crashed in AdamW (lr / 0.1 overflows float32):
    "unexpected RuntimeError"."""
    from somvq.integrations.vqvae.train import MAX_LR

    with pytest.raises(ValueError, match=r"lr=1e\+38 must be > 0 and at most 3.403e\+37"):
        TrainConfig(**TINY, lr=1e38).check()
    TrainConfig(**TINY, lr=MAX_LR).check()
    model = torch.nn.Linear(2, 1)
    optimiser = torch.optim.AdamW(model.parameters(), lr=MAX_LR)
    model(torch.ones(1, 2)).sum().backward()
    optimiser.step()  # the largest accepted rate runs (its weights may be inf: a divergence)
    result = run("vqvae", "train", *CLI_TINY, "--steps", "1", "--lr", "1e38", "-o", "unused")
    assert result.exit_code == 2 and "at most 3.403e+37" in result.output


def test_a_run_longer_than_the_steps_asked_for_is_refused(tmp_path, digits_data):
    """Rerun with fewer steps, train rewrote config.json with them over a longer run and
    compare's report described its 6-step runs as 3-step ones."""
    train(TrainConfig(**TINY, steps=4), tmp_path, data=digits_data, progress=False)
    before = (tmp_path / "config.json").read_text()
    with pytest.raises(ValueError, match=r"trained for 4 steps, more than steps=2; ask for 4 steps or more"):
        train(TrainConfig(**TINY, steps=2), tmp_path, data=digits_data, progress=False)
    assert (tmp_path / "config.json").read_text() == before
    train(TrainConfig(**TINY, steps=4), tmp_path, data=digits_data, progress=False)  # the same: fine


def test_run_outputs_that_cannot_be_written_are_found_before_training(tmp_path):
    """log.csv as a directory failed only at the first checkpoint, after training."""
    (tmp_path / "run" / "log.csv").mkdir(parents=True)
    result = run("vqvae", "train", *CLI_TINY, "--steps", "2", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "log.csv' is not a regular file" in result.output
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["log.csv"]
    (tmp_path / "report" / "runs.csv").mkdir(parents=True)
    args = ["vqvae", "compare", *CLI_TINY, "--steps", "2", "--variants", "none-n1-all", "--seeds", "0"]
    result = run(*args, "-o", tmp_path / "study", "--report-dir", tmp_path / "report")
    assert result.exit_code == 2 and "runs.csv' is not a regular file" in result.output
    assert not (tmp_path / "study").exists()


def test_images_whose_sides_are_not_multiples_of_4_are_refused_before_training(tmp_path, digits_data):
    """5x5 images decoded to 4x4: a torch warning, then "unexpected RuntimeError"."""
    from somvq.integrations.vqvae.data import ImageData

    odd = ImageData("odd", digits_data.train[:, :, :5, :5], digits_data.validation[:, :, :5, :5])
    with pytest.raises(ValueError, match="images of 5x5 pixels: .* multiples of 4"):
        train(TrainConfig(**TINY, steps=2), tmp_path / "run", data=odd, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_time_budget_that_runs_out_before_the_first_step_says_so(tmp_path, digits_data):
    """It said "the run has no validation record" and left config.json behind."""
    config = TrainConfig(**TINY, steps=2, time_budget=1e-9)
    with pytest.raises(ValueError, match=r"time_budget=1e-09 s ran out before the first step"):
        train(config, tmp_path / "run", data=digits_data, progress=False)
    assert not (tmp_path / "run").exists()
