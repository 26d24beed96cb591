"""Vision training scripts: `image_classifier`.

`MNISTDataModule` is importable from here too, as in perceiver-io 0.11.
"""

from perceiver.data.vision.mnist import MNISTDataModule  # noqa: F401
