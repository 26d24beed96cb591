"""Text training scripts: `mlm`, `classifier` and `clm`."""
