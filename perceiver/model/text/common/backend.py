"""The text encoder shared by the masked language model and the text classifier."""

from dataclasses import dataclass
from typing import Any, Optional

import torch

from perceiver.model.core import EncoderConfig, PerceiverEncoder, TokenInputAdapter
from perceiver.model.core.utils import (
    ActivationCheckpointing,
    check_mask_shape,
    check_seq_len,
    check_token_ids,
    checkpointing_from,
    freeze,
)
from perceiver.model.core.weights import load_backend_state_dict


@dataclass
class TextEncoderConfig(EncoderConfig):
    """Encoder config plus the token input: vocabulary, maximum sequence length and embedding channels.

    :param vocab_size: number of token ids (the CLI takes it from the data module).
    :param max_seq_len: maximum input sequence length (the CLI takes it from the data module).
    :param num_input_channels: channels of the token and position embeddings.
    :param params: start from the encoder of a pretrained masked language model (🤗 model directory or hub id).
    """

    vocab_size: int = 10003
    max_seq_len: int = 256
    num_input_channels: int = 64
    params: Optional[str] = None


class TextEncoder(PerceiverEncoder):
    """Perceiver IO encoder over token ids with learned token and position embeddings."""

    def __init__(
        self,
        config: TextEncoderConfig,
        num_latents: int,
        num_latent_channels: int,
        *args: Any,
        checkpointing: Optional[ActivationCheckpointing] = None,
        **flags_0_11: Any,
    ):
        input_adapter = TokenInputAdapter(config.vocab_size, config.max_seq_len, config.num_input_channels)
        # `args`: `checkpointing`, or perceiver-io 0.11's positional activation_checkpointing/activation_offloading
        checkpointing = checkpointing_from(checkpointing, flags_0_11, "TextEncoder", args)
        if flags_0_11:
            raise TypeError(f"TextEncoder() got unexpected keyword arguments {sorted(flags_0_11)}")
        super().__init__(input_adapter, num_latents, num_latent_channels, config, checkpointing=checkpointing)
        self.config = config
        if config.params is not None:
            # the encoder of a Perceiver IO model is sub-module 0 of its backend model
            self.load_state_dict(load_backend_state_dict(config.params, prefix="0."))
            if config.freeze:
                freeze(self)

    def validate_input(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> None:
        """Raises a ValueError for token ids `x` `(b, n)` this encoder cannot take."""
        if x.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(x.shape)}")
        check_token_ids("input_ids", x, self.config.vocab_size)
        check_seq_len("input_ids", x.shape[1], self.config.max_seq_len)
        check_mask_shape("pad_mask", pad_mask, x.shape)
