"""Processing: the layer below `perceiver.data` and `perceiver.model` that turns raw inputs (MIDI performances, ...)
into token ids and token ids back into outputs people can use (MIDI, audio, pictures). It imports neither `data` nor
`model`, so both can build on it."""
