"""Demos: `python -m perceiver.demos.digits` (the README's `make demo`), `perceiver.demos.pydoc_clm`,
`perceiver.demos.convert_mlm`."""
