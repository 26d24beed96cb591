from perceiver._compat import deprecated_names
from perceiver.model.text.common.backend import TextEncoder, TextEncoderConfig

__all__ = ["TextEncoder", "TextEncoderConfig"]

# perceiver-io 0.11's names
__getattr__ = deprecated_names(
    __name__,
    {
        "TextInputAdapter": ("perceiver.model.core", "TokenInputAdapter"),
        "TiedTextOutputAdapter": ("perceiver.model.core", "TiedTokenOutputAdapter"),
    },
)
