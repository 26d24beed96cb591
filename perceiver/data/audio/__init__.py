"""Symbolic audio data: MIDI files tokenized into event tokens (`perceiver.processing.midi.MidiTokenizer`, 389 ids)
for Perceiver AR training. `SymbolicAudioDataModule` reads a directory of MIDI files, `MaestroV3DataModule` and
`GiantMidiPianoDataModule` the corpora of perceiver-io 0.11's training examples."""

from perceiver.data.audio.corpus import MidiCorpusDataModule
from perceiver.data.audio.giantmidi_piano import GiantMidiPianoDataModule
from perceiver.data.audio.maestro_v3 import MaestroV3DataModule
from perceiver.data.audio.midi import (
    PAD_TOKEN_ID,
    VOCAB_SIZE,
    MidiFileError,
    MidiTokenizer,
    decode_midi,
    encode_midi,
)
from perceiver.data.audio.symbolic import SymbolicAudioDataModule

__all__ = [
    "PAD_TOKEN_ID",
    "VOCAB_SIZE",
    "GiantMidiPianoDataModule",
    "MaestroV3DataModule",
    "MidiCorpusDataModule",
    "MidiFileError",
    "MidiTokenizer",
    "SymbolicAudioDataModule",
    "decode_midi",
    "encode_midi",
]
