"""perceiver-io 0.11's module of classification building blocks; they live in `perceiver.model.core`."""

from perceiver._compat import deprecated_aliases

__getattr__ = deprecated_aliases(
    __name__,
    {
        "ClassificationOutputAdapter": (
            "perceiver.model.core.ClassificationOutputAdapter",
            "perceiver.model.core.adapter:ClassificationOutputAdapter",
        ),
        "ClassificationDecoderConfig": (
            "perceiver.model.core.ClassificationDecoderConfig",
            "perceiver.model.core.config:ClassificationDecoderConfig",
        ),
        "ClassificationDecoder": (
            "perceiver.model.core.PerceiverDecoder",
            "perceiver.model.core.modules:PerceiverDecoder",
        ),
    },
)
