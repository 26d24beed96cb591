"""Processing: the layer below `perceiver.data` and `perceiver.model` that turns raw inputs (images, text, MIDI
performances) into model inputs and model outputs back into what people use (labels, MIDI, audio, pictures). It imports
neither `data` nor `model`, so both can build on it."""
