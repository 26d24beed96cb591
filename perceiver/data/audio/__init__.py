"""Symbolic audio data: the MIDI event tokenizer (`MidiTokenizer`, 389 token ids) and `SymbolicAudioDataModule`."""

from perceiver.data.audio.midi import (
    PAD_TOKEN_ID,
    VOCAB_SIZE,
    MidiTokenizer,
    decode_midi,
    encode_midi,
)
from perceiver.data.audio.symbolic import SymbolicAudioDataModule

__all__ = [
    "PAD_TOKEN_ID",
    "VOCAB_SIZE",
    "MidiTokenizer",
    "SymbolicAudioDataModule",
    "decode_midi",
    "encode_midi",
]
