"""Lightning data modules built on 🤗 datasets: `perceiver.data.text` and `perceiver.data.vision`."""
