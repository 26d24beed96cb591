"""Vision models: image classification and optical flow."""
