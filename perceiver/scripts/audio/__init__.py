"""Training scripts for audio models: `python -m perceiver.scripts.audio.symbolic fit ...`.

The MIDI data modules are importable from here too, as in perceiver-io 0.11.
"""

from perceiver.data.audio import GiantMidiPianoDataModule, MaestroV3DataModule  # noqa: F401
