"""Vision training scripts: `image_classifier`."""
