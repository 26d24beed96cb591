"""Training scripts for audio models: `python -m perceiver.scripts.audio.symbolic fit ...`."""
