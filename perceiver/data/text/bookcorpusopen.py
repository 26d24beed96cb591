"""perceiver-io 0.11's module of `BookCorpusOpenDataModule`, which lives in `perceiver.data.text.bookcorpus`."""

from perceiver._compat import deprecated_aliases

__getattr__ = deprecated_aliases(
    __name__,
    {
        "BookCorpusOpenDataModule": (
            "perceiver.data.text.BookCorpusOpenDataModule",
            "perceiver.data.text.bookcorpus:BookCorpusOpenDataModule",
        )
    },
)
