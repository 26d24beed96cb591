"""perceiver-io 0.11's module of text encoder conversion helpers; the one implementation is in the masked language
model's conversion (`perceiver.model.text.mlm.convert`)."""

from perceiver._compat import deprecated_aliases

__getattr__ = deprecated_aliases(
    __name__,
    {
        "copy_text_encoder_params": (
            "perceiver.model.text.mlm.convert.copy_text_encoder",
            "perceiver.model.text.mlm.convert:copy_text_encoder",
        )
    },
)
