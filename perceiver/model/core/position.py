"""Position encodings: Fourier features (Perceiver IO), rotary embeddings (RoFormer) and position indices."""

import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from perceiver._compat import renamed_keywords


def positions(batch_size: int, seq_len: int, shift: Optional[torch.Tensor] = None, device=None) -> torch.Tensor:
    """Absolute positions `(batch_size, seq_len)`; `shift` `(batch_size, 1)` moves left-padded rows so that their
    first real token gets position 0 (positions of padding tokens are clamped to 0).

    perceiver-io 0.11's keywords `b` and `n` are still accepted, with a DeprecationWarning.
    """
    pos = torch.arange(seq_len, device=device).expand(batch_size, seq_len)
    if shift is not None:
        pos = (pos - shift).clamp(min=0)
    return pos


positions = renamed_keywords(positions, b="batch_size", n="seq_len")


class FrequencyPositionEncoding(nn.Module):
    """Rotation angles for rotary position embedding of `dim` channels per head (pairs of adjacent channels)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        # persistent to keep the 0.11 state-dict layout; `check_computed_buffers` verifies loaded values
        self.register_buffer("inv_freq", self.computed_buffers()["inv_freq"])

    def computed_buffers(self) -> Dict[str, torch.Tensor]:
        return {"inv_freq": 1.0 / (10000 ** (torch.arange(0, self.dim, 2).float() / self.dim))}

    def forward(self, abs_pos: torch.Tensor) -> torch.Tensor:
        # abs_pos: (b, n) -> (b, n, dim), each angle repeated for the two channels of a pair. Angles are float32
        # whatever the model's dtype: in bfloat16, position 300 * inv_freq 1.0 would already be off by one radian.
        inv_freq = self.inv_freq
        if inv_freq.dtype != torch.float32:
            inv_freq = self.computed_buffers()["inv_freq"].to(inv_freq.device)
        angles = abs_pos.unsqueeze(-1).float() * inv_freq
        return angles.repeat_interleave(2, dim=-1)


class RotaryPositionEmbedding:
    """Rotates the first `frq_pos_enc.shape[-1]` channels of each head by position-dependent angles.

    `frq_pos_enc` is `(b, n, c)`. With `right_align`, a sequence shorter than `n` takes the last positions (queries
    at the end of a Perceiver AR sequence), otherwise the first.
    """

    def __init__(self, frq_pos_enc: torch.Tensor, right_align: bool = False, dtype: Optional[torch.dtype] = None):
        """:param dtype: of the cos/sin tables, computed in `frq_pos_enc`'s dtype (default: that dtype)."""
        frq_pos_enc = frq_pos_enc.unsqueeze(1)  # (b, 1, n, c), broadcast over heads
        self.cos = frq_pos_enc.cos().to(dtype or frq_pos_enc.dtype)
        self.sin = frq_pos_enc.sin().to(dtype or frq_pos_enc.dtype)
        self.rotate_dim = frq_pos_enc.shape[-1]
        self.right_align = right_align
        # sin with the sign of each pair's rotation, [-sin a1, sin a1, -sin a2, ...] (the two channels of a pair share
        # an angle), the table `rotate_pairs` takes
        sin_pairs = self.sin.unflatten(-1, (-1, 2))
        self.signed_sin = torch.stack((sin_pairs[..., 1].neg(), sin_pairs[..., 0]), dim=-1).flatten(-2)

    def rotate(self, t: torch.Tensor) -> torch.Tensor:
        # t: (b, h, n, c)
        seq_len = t.shape[-2]
        window = slice(-seq_len, None) if self.right_align else slice(0, seq_len)
        cos, signed_sin = self.cos[..., window, :], self.signed_sin[..., window, :]
        if cos.dtype != t.dtype:  # angles are float32, `t` has the model's dtype
            cos, signed_sin = cos.to(t.dtype), signed_sin.to(t.dtype)
        t_rot = rotate_pairs(t[..., : self.rotate_dim], cos, signed_sin)
        if self.rotate_dim == t.shape[-1]:
            return t_rot
        return torch.cat((t_rot, t[..., self.rotate_dim :]), dim=-1)


def rotate_pairs(t: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Each channel pair `(x1, x2)` of `t` rotated: `(x1 cos - x2 sin, x2 cos + x1 sin)`, given `cos` and
    `signed_sin = [-sin, sin]` per pair (negate `signed_sin` to rotate back)."""
    swapped = t.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)  # [x2, x1, x4, x3, ...]
    return torch.addcmul(t * cos, swapped, signed_sin)


class FourierPositionEncoding(nn.Module):
    """Fourier features of a regular grid in [-1, 1]^d (Perceiver IO): positions, then sines, then cosines.

    :param input_shape: spatial shape, e.g. `(height, width)`.
    :param num_frequency_bands: bands per dimension, linearly spaced from 1 to `max_frequencies[i] / 2`.
    :param max_frequencies: per-dimension maximum frequency, defaults to `input_shape` (the Nyquist frequency).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_frequency_bands: int,
        max_frequencies: Optional[Sequence[float]] = None,
        include_positions: bool = True,
    ):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_frequency_bands = num_frequency_bands
        self.max_frequencies = tuple(max_frequencies or self.input_shape)
        self.include_positions = include_positions
        # persistent to keep the 0.11 state-dict layout; `check_computed_buffers` verifies loaded values
        self.register_buffer("position_encoding", self.computed_buffers()["position_encoding"])

    def computed_buffers(self) -> Dict[str, torch.Tensor]:
        coords = [torch.linspace(-1.0, 1.0, steps=s) for s in self.input_shape]
        pos = torch.stack(torch.meshgrid(*coords, indexing="ij"), dim=-1)  # (*input_shape, d)
        enc = fourier_features(pos, self.num_frequency_bands, self.max_frequencies, self.include_positions)
        return {"position_encoding": enc.flatten(0, -2)}  # (prod(input_shape), channels)

    def num_position_encoding_channels(self) -> int:
        return len(self.input_shape) * (2 * self.num_frequency_bands + self.include_positions)

    def forward(self, batch_size: int, input_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Features `(batch_size, prod(input_shape), channels)` of grid `input_shape` (default: the configured one).

        Another grid keeps `max_frequencies`, as DeepMind's models do for inputs of another resolution.
        """
        if input_shape is None or tuple(input_shape) == self.input_shape:
            return self.position_encoding.expand(batch_size, -1, -1)
        if len(input_shape) != len(self.input_shape):
            raise ValueError(f"input_shape={tuple(input_shape)} must have {len(self.input_shape)} dimensions")
        device = self.position_encoding.device
        coords = [torch.linspace(-1.0, 1.0, steps=s, device=device) for s in input_shape]
        pos = torch.stack(torch.meshgrid(*coords, indexing="ij"), dim=-1)
        enc = fourier_features(pos, self.num_frequency_bands, self.max_frequencies, self.include_positions)
        return enc.flatten(0, -2).to(self.position_encoding.dtype).expand(batch_size, -1, -1)


def fourier_features(
    pos: torch.Tensor, num_frequency_bands: int, max_frequencies: Sequence[float], include_positions: bool = True
) -> torch.Tensor:
    """Encodes positions `pos` `(..., d)` into `(..., d * (2 * num_frequency_bands + include_positions))`."""
    grids = []
    for i, max_freq in enumerate(max_frequencies):
        freqs = torch.linspace(1.0, max_freq / 2.0, num_frequency_bands, device=pos.device, dtype=pos.dtype)
        grids.append(pos[..., i : i + 1] * freqs)
    encodings = [pos] if include_positions else []
    encodings += [torch.sin(math.pi * g) for g in grids] + [torch.cos(math.pi * g) for g in grids]
    return torch.cat(encodings, dim=-1)


def buffer_tolerance(dtype: torch.dtype, atol: float = 1e-4) -> float:
    """Absolute tolerance for comparing a buffer of `dtype` with its float32 value: `atol`, or for a lower
    precision dtype two of its rounding steps at magnitude 1 (values of position encodings lie in [-1, 1])."""
    if not dtype.is_floating_point:
        return atol
    return max(atol, 2 * torch.finfo(dtype).eps)


def check_computed_buffers(model: nn.Module, atol: float = 1e-4) -> None:
    """Raises a ValueError if a loaded position-encoding buffer differs from the value its config implies.

    Position encodings are persisted (0.11's layout) although they follow from the config; a saved model whose
    buffers disagree with its config would otherwise give silently different results. The tolerance follows the
    buffer's dtype (`buffer_tolerance`), so a model loaded in bfloat16 or float16 passes.
    """
    for module_name, module in model.named_modules():
        if not hasattr(module, "computed_buffers"):
            continue
        for buffer_name, expected in module.computed_buffers().items():
            loaded = getattr(module, buffer_name)
            name = f"{module_name}.{buffer_name}".lstrip(".")
            if loaded.shape != expected.shape:
                raise ValueError(
                    f"buffer {name} of the loaded model does not match the value computed from its config: shape "
                    f"{tuple(loaded.shape)}, its config implies {tuple(expected.shape)}; the saved model and its "
                    f"config disagree"
                )
            tolerance = buffer_tolerance(loaded.dtype, atol)
            diff = (loaded.detach().cpu().float() - expected).abs().max().item() if loaded.numel() else 0.0
            if not diff <= tolerance:
                raise ValueError(
                    f"buffer {name} of the loaded model does not match the value computed from its config: max abs "
                    f"difference {diff:.3g}, tolerance {tolerance:.3g} for {loaded.dtype}; the saved model and its "
                    f"config disagree"
                )
