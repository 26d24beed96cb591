"""Audio models: `symbolic` (Perceiver AR over symbolic music, i.e. MIDI event tokens)."""
