"""Checks of the inputs the 🤗 wrappers take (the public boundary): each raises a TypeError or ValueError that names
the argument, what was given and what is allowed, instead of an IndexError, AttributeError or an error from deep
inside torch. Backend forward methods do not call these (no host synchronization in their hot paths)."""

from typing import Any, Optional, Sequence

import torch

IGNORE_INDEX = -100


def check_tensor(name: str, value: Any, shape_doc: str, ndim: Optional[int] = None) -> torch.Tensor:
    """Raises a TypeError unless `value` is a tensor, a ValueError unless it has `ndim` dims and a non-empty batch."""
    if not isinstance(value, torch.Tensor):
        hint = " (e.g. tokenizer(..., return_tensors='pt'))" if name == "input_ids" else ""
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape_doc}{hint}, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name} must have shape {shape_doc}, got shape {tuple(value.shape)}")
    if value.dim() >= 1 and value.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(value.shape)}); at least one example is needed")
    return value


def check_input_ids(input_ids: Any, name: str = "input_ids") -> torch.Tensor:
    """`input_ids` must be a non-empty `(batch, seq_len)` integer tensor."""
    check_tensor(name, input_ids, "(batch, seq_len)", ndim=2)
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {input_ids.dtype}")
    return input_ids


def check_labels(
    labels: Any,
    shape: Sequence[int],
    num_classes: int,
    name: str = "labels",
    allow_ignore: bool = False,
) -> torch.Tensor:
    """`labels` must be an integer tensor of `shape` with values in `[0, num_classes)` (or -100 = ignore, where
    `allow_ignore`)."""
    shape = tuple(shape)
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {shape}, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class ids, got dtype {labels.dtype}")
    if tuple(labels.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(labels.shape)}, expected {shape}")
    if labels.numel() == 0:
        return labels
    values = labels[labels != IGNORE_INDEX] if allow_ignore else labels
    if values.numel() == 0:
        return labels
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        ignore = " (or -100 = ignore)" if allow_ignore else ""
        raise ValueError(f"{name} holds {bad}, outside the allowed range [0, {num_classes - 1}]{ignore}")
    return labels


def check_pixel_values(
    pixel_values: Any, shape_doc: str, ndim: Optional[int] = None, name: str = "pixel_values"
) -> torch.Tensor:
    """`pixel_values` must be a non-empty float tensor (with `ndim` dims, if given; integer images, e.g. uint8, are
    refused: models take normalized float values, as made by the model's image processor)."""
    check_tensor(name, pixel_values, shape_doc, ndim=ndim)
    if not pixel_values.dtype.is_floating_point:
        raise TypeError(
            f"{name} has dtype {pixel_values.dtype}, expected floating point values normalized as the model's image "
            "processor makes them (AutoImageProcessor.from_pretrained(...)(images, return_tensors='pt'))"
        )
    return pixel_values
