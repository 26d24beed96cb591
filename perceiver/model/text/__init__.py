"""Text models: masked language model (mlm), text classifier (classifier), causal language model (clm)."""

from perceiver._compat import deprecated_aliases

# names that early perceiver-io versions exported here
__getattr__ = deprecated_aliases(
    __name__,
    {
        "TextEncoderConfig": (
            "perceiver.model.text.common.TextEncoderConfig",
            "perceiver.model.text.common:TextEncoderConfig",
        ),
        "TextInputAdapter": ("perceiver.model.core.TokenInputAdapter", "perceiver.model.core:TokenInputAdapter"),
    },
)
