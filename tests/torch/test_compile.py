"""torch.compile(fullgraph=True) on CPU: a few training steps equal eager mode (issue 18).

Compiling is slow on a small CPU, so one tiny model per configuration, compiled once per
module (fixture) and trained a few steps. Not distributed: the collectives are kept out
of the compiled graph (integrations/torch/distributed.py), which single-process runs never
reach.
"""

import pytest

torch = pytest.importorskip("torch")

from somvq.integrations.torch import KohonenVectorQuantize  # noqa: E402

STEPS = 4
CONFIGS = {
    "default": {},
    "new-options": {"codebook_dim": 4, "distance": "cosine", "init": "kmeans", "usage_window": 3},
    # The encoder and the projections in bf16 under autocast, the quantizer in float32.
    "bf16-autocast": {"codebook_dim": 4, "autocast": True},
}


class Model(torch.nn.Module):
    def __init__(self, autocast=False, **options):
        super().__init__()
        self.autocast = autocast
        self.encoder = torch.nn.Linear(5, 8)
        self.vq = KohonenVectorQuantize(dim=8, codebook_size=16, **options)

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            quantized, indices, commitment = self.vq(self.encoder(x))
        assert quantized.dtype == (torch.bfloat16 if self.autocast else torch.float32)
        return quantized.float().square().mean() + commitment, indices


def _batches():
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(64, 5, generator=generator) for _ in range(STEPS)]


def _train(model, step_fn):
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    indices = []
    for x in _batches():
        loss, index = step_fn(x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        indices.append(index)
    return indices


@pytest.fixture(scope="module", params=list(CONFIGS))
def trained_pair(request):
    options = CONFIGS[request.param]
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(Model(**options))
    eager, compiled = models
    if "init" in options:
        # The data-dependent init syncs with the host (it checks the batch): run it eagerly
        # before compiling, as docs/torch.md says.
        first = eager.encoder(_batches()[0]).detach()
        for model in models:
            torch.manual_seed(1)
            model.vq.init_from(first)
    eager_indices = _train(eager, eager)
    compiled_indices = _train(compiled, torch.compile(compiled, fullgraph=True))
    return eager, compiled, eager_indices, compiled_indices


def test_compiled_training_equals_eager(trained_pair):
    eager, compiled, eager_indices, compiled_indices = trained_pair
    assert int(compiled.vq.step) == int(eager.vq.step) == STEPS
    for a, b in zip(eager_indices, compiled_indices):
        assert torch.equal(a, b)
    for name in ("codebook", "ema_sum", "ema_count"):
        torch.testing.assert_close(getattr(compiled.vq, name), getattr(eager.vq, name), rtol=1e-5, atol=1e-6)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_compiled_usage_figures_equal_eager(trained_pair):
    eager, compiled, _, _ = trained_pair
    assert torch.equal(compiled.vq.usage_ring, eager.vq.usage_ring)
    assert torch.equal(compiled.vq.code_usage, eager.vq.code_usage)
    assert int(compiled.vq.dead_codes) == int(eager.vq.dead_codes)
    torch.testing.assert_close(compiled.vq.perplexity, eager.vq.perplexity)
