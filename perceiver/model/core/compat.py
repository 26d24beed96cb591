"""perceiver-io 0.11 model classes whose constructor changed, as thin subclasses of the current ones."""

from perceiver.model.core.adapter import TokenOutputAdapter


class TextOutputAdapter(TokenOutputAdapter):
    """perceiver-io 0.11's causal LM output layer: a `TokenOutputAdapter` with arguments in 0.11's order."""

    def __init__(self, num_channels: int, vocab_size: int):
        super().__init__(vocab_size=vocab_size, num_output_query_channels=num_channels)
