from perceiver.model.text.common.backend import TextEncoder, TextEncoderConfig

__all__ = ["TextEncoder", "TextEncoderConfig"]
