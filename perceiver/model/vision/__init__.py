"""Vision models: image classification and optical flow."""

from perceiver._compat import deprecated_aliases

# names that early perceiver-io versions exported here
__getattr__ = deprecated_aliases(
    __name__,
    {
        "ImageEncoderConfig": (
            "perceiver.model.vision.image_classifier.ImageEncoderConfig",
            "perceiver.model.vision.image_classifier:ImageEncoderConfig",
        ),
        "ImageInputAdapter": (
            "perceiver.model.vision.image_classifier.backend.ImageInputAdapter",
            "perceiver.model.vision.image_classifier.backend:ImageInputAdapter",
        ),
    },
)
