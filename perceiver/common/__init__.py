"""The bottom layer: code that every other layer (processing, data, model, scripts) may use and that imports none of
them. Today: reading checkpoints safely (`perceiver.common.checkpoint`)."""
