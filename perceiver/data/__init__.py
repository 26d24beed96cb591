"""Lightning data modules built on 🤗 datasets: `perceiver.data.text`, `perceiver.data.vision` and
`perceiver.data.audio` (MIDI)."""
