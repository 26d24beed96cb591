from perceiver._compat import deprecated_aliases
from perceiver.model.text.common.backend import TextEncoder, TextEncoderConfig

__all__ = ["TextEncoder", "TextEncoderConfig"]

# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__,
    {
        "TextInputAdapter": ("perceiver.model.core.TokenInputAdapter", "perceiver.model.core:TokenInputAdapter"),
        "TiedTextOutputAdapter": (
            "perceiver.model.core.TiedTokenOutputAdapter",
            "perceiver.model.core:TiedTokenOutputAdapter",
        ),
    },
)
