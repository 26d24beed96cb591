"""Perceiver IO masked language model (Perceiver IO paper, Appendix F)."""

from dataclasses import dataclass, field
from typing import Optional

import torch

from perceiver._compat import deprecated_aliases
from perceiver.model.core import (
    DecoderConfig,
    PerceiverDecoder,
    PerceiverIO,
    PerceiverIOConfig,
    TiedTokenOutputAdapter,
    TokenOutputAdapter,
    TrainableQueryProvider,
)
from perceiver.model.core.utils import ActivationCheckpointing, check_seq_len
from perceiver.model.text.common import TextEncoder, TextEncoderConfig


@dataclass
class TextDecoderConfig(DecoderConfig):
    """Decoder config with one learned output query per position.

    :param num_output_query_channels: None (default): output queries have the encoder's `num_input_channels` and
        logits are tied to the token embedding. Set: output queries of this many channels and an output layer of its
        own (`decoder.output_adapter.linear`, as in perceiver-io 0.11).
    :param vocab_size: number of token ids (the CLI takes it from the data module).
    :param max_seq_len: maximum output sequence length (the CLI takes it from the data module).
    """

    num_output_query_channels: Optional[int] = None
    vocab_size: int = 10003
    max_seq_len: int = 512


@dataclass
class MaskedLanguageModelConfig(PerceiverIOConfig):
    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: TextDecoderConfig = field(default_factory=TextDecoderConfig)


class MaskedLanguageModel(PerceiverIO):
    """Perceiver IO masked language model: token ids `(b, n)` -> token logits `(b, n, vocab_size)`."""

    def __init__(self, config: MaskedLanguageModelConfig):
        num_query_channels = config.decoder.num_output_query_channels
        if num_query_channels is None:
            num_query_channels = config.encoder.num_input_channels
            output_adapter = TiedTokenOutputAdapter(vocab_size=config.decoder.vocab_size)
        else:
            output_adapter = TokenOutputAdapter(config.decoder.vocab_size, num_query_channels)
        if config.decoder.vocab_size != config.encoder.vocab_size:
            raise ValueError(
                f"decoder.vocab_size={config.decoder.vocab_size} must equal "
                f"encoder.vocab_size={config.encoder.vocab_size}"
            )
        encoder = TextEncoder(
            config.encoder,
            num_latents=config.num_latents,
            num_latent_channels=config.num_latent_channels,
            checkpointing=ActivationCheckpointing.of(config),
        )
        decoder = PerceiverDecoder(
            output_adapter=output_adapter,
            output_query_provider=TrainableQueryProvider(
                num_queries=config.decoder.max_seq_len,
                num_query_channels=num_query_channels,
                init_scale=config.decoder.init_scale,
            ),
            num_latent_channels=config.num_latent_channels,
            config=config.decoder,
            checkpointing=ActivationCheckpointing.of(config),
        )
        super().__init__(encoder, decoder)
        self.config = config

    def forward(
        self,
        x_masked: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        output_positions: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """:param x_masked: token ids `(b, n)`, masked positions hold the mask token id.
        :param pad_mask: `(b, n)`, True marks padding.
        :param output_positions: decode only these positions, `(k,)` for all rows or `(b, k)` per row, in `[0, n)`.
            Output queries are independent, so their logits equal the full output's at those positions, for a
            fraction of the decoder's cost (e.g. the masked positions of a fill-mask).
        :return: logits `(b, n, vocab_size)`, or `(b, k, vocab_size)` with `output_positions`.
        """
        self.encoder.validate_input(x_masked, pad_mask)
        check_seq_len("input_ids", x_masked.shape[1], self.config.decoder.max_seq_len)
        x_latent = self.encoder(x_masked, pad_mask)
        # output queries attend to the latents only, so querying the first n positions is exact
        output_query = self.decoder.output_query_provider(num_queries=x_masked.shape[1])
        if output_positions is not None:
            check_positions("output_positions", output_positions, x_masked.shape)
            output_query = output_query[0, output_positions]
            if output_query.dim() == 2:
                output_query = output_query.unsqueeze(0)
        return self.decoder(x_latent, output_query, txt_embedding=self.encoder.input_adapter.txt_embedding)


def check_positions(name: str, positions: torch.Tensor, input_shape: torch.Size) -> None:
    """Raises a TypeError/ValueError naming `name` unless `positions` `(k,)` or `(b, k)` index `[0, n)` of an
    input of shape `(b, n)` (values are checked on CPU; see `check_token_ids`)."""
    b, n = input_shape
    if positions.dtype.is_floating_point or positions.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer positions, got dtype {positions.dtype}")
    if positions.dim() not in (1, 2) or (positions.dim() == 2 and positions.shape[0] != b):
        raise ValueError(f"{name} must have shape (k,) or ({b}, k), got {tuple(positions.shape)}")
    if positions.numel() == 0 or positions.device.type != "cpu" or torch.compiler.is_compiling():
        return
    lo, hi = int(positions.min()), int(positions.max())
    if lo < 0 or hi >= n:
        raise ValueError(f"{name} holds position {lo if lo < 0 else hi}, allowed range is [0, {n - 1}]")


# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__,
    {
        "TextDecoder": ("perceiver.model.core.PerceiverDecoder", "perceiver.model.core:PerceiverDecoder"),
        "TextOutputAdapter": ("perceiver.model.core.TokenOutputAdapter", "perceiver.model.core:TokenOutputAdapter"),
    },
)
