"""Turning raw inputs into model inputs and back: image processing, tokenizer loading, MIDI encoding.

This layer sits below both `perceiver.data` and `perceiver.model`: both import it, it imports neither.
"""
