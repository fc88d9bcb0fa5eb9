"""The VQ-VAE of the paper's CIFAR-10 experiments, sized by options so it also runs on a CPU.

Encoder (as in the reference implementation, itself the Sonnet/DeepMind VQ-VAE):
4x4 stride-2 conv -> ReLU -> 4x4 stride-2 conv -> ReLU -> 3x3 conv -> two residual
blocks -> ReLU -> 1x1 pre-quantisation conv to ``latent_dim`` channels. The decoder
mirrors it: 3x3 conv -> two residual blocks -> ReLU -> 4x4 stride-2 transposed conv ->
ReLU -> 4x4 stride-2 transposed conv. An image of H x W pixels gives H/4 x W/4 latent
vectors. The quantiser is always :class:`~somvq.integrations.torch.KohonenVectorQuantize`
(``neighbourhood="none"`` is EMA-VQ).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from somvq.integrations.torch import KohonenVectorQuantize

__all__ = ["ResidualBlock", "Encoder", "Decoder", "VQVAE", "check_image_size"]


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), as in the VQ-VAE paper."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def check_image_size(height: int, width: int) -> None:
    """The model halves images twice (two 4x4 stride-2 convolutions) and the decoder
    doubles them back: other sides would come back at another size (a 5x5 image decodes to
    4x4), so both must be multiples of 4."""
    if height % 4 or width % 4 or height < 4 or width < 4:
        raise ValueError(
            f"images of {height}x{width} pixels: the VQ-VAE halves them twice and doubles them "
            "back, so both sides must be multiples of 4."
        )


class Encoder(nn.Module):
    """Image (B, C, H, W) -> pre-quantisation latents (B, latent_dim, H/4, W/4)."""

    def __init__(self, in_channels: int, channels: int, latent_dim: int, residual_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            ResidualBlock(channels, residual_channels),
            ResidualBlock(channels, residual_channels),
            nn.ReLU(),
            nn.Conv2d(channels, latent_dim, 1),  # the pre-quantisation conv
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Quantised latents (B, latent_dim, h, w) -> image (B, C, 4h, 4w); mirrors :class:`Encoder`."""

    def __init__(self, out_channels: int, channels: int, latent_dim: int, residual_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_dim, channels, 3, padding=1),
            ResidualBlock(channels, residual_channels),
            ResidualBlock(channels, residual_channels),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels // 2, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class VQVAE(nn.Module):
    """Encoder, Kohonen/EMA-VQ quantiser, decoder.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for Fashion-MNIST and digits, 3 for photo tiles).
    channels : int, default=128
        Width of the encoder and decoder (the paper: 128; 16-32 runs on a CPU).
    latent_dim : int, default=64
        D, the size of each latent (code) vector (the paper: 64).
    residual_channels : int, optional
        Hidden width of the residual blocks (default ``channels // 4``, at least 4).
    codebook_size : int, default=512
        K.
    grid : tuple of int, optional
        Map shape (C order); None is the reference's automatic shape (512 -> (16, 32)).
    neighbourhood, init_count, update, decay, shrink, commitment_weight
        Passed to :class:`~somvq.integrations.torch.KohonenVectorQuantize`.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 128,
        latent_dim: int = 64,
        residual_channels: int | None = None,
        codebook_size: int = 512,
        grid: Sequence[int] | None = None,
        neighbourhood: str = "hard",
        init_count: float = 1.0,
        update: str = "all",
        decay: float = 0.99,
        shrink: float = 0.1,
        commitment_weight: float = 0.25,
    ) -> None:
        super().__init__()
        if channels < 2 or channels % 2:
            raise ValueError(f"channels={channels} must be an even number >= 2.")
        residual = residual_channels if residual_channels is not None else max(4, channels // 4)
        self.encoder = Encoder(in_channels, channels, latent_dim, residual)
        self.quantizer = KohonenVectorQuantize(
            dim=latent_dim,
            codebook_size=codebook_size,
            grid=None if grid is None else tuple(grid),
            neighbourhood=neighbourhood,
            init_count=init_count,
            update=update,
            decay=decay,
            shrink=shrink,
            commitment_weight=commitment_weight,
            channels_first=True,
        )
        self.decoder = Decoder(in_channels, channels, latent_dim, residual)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(reconstruction, indices (B, h, w), commitment loss)``."""
        quantized, indices, commitment = self.quantizer(self.encoder(x))
        return self.decoder(quantized), indices, commitment

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Images decoded from code indices of shape (B, h, w)."""
        codes = self.quantizer.codebook[indices]  # (B, h, w, D)
        return self.decoder(codes.permute(0, 3, 1, 2).contiguous())
