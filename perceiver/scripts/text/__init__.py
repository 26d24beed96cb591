"""Text training scripts: `mlm`, `classifier` and `clm`.

The text data modules are importable from here too, as in perceiver-io 0.11 (whose CLIs found them by this import).
"""

from perceiver.data.text import (  # noqa: F401
    BookCorpusDataModule,
    BookCorpusOpenDataModule,
    C4DataModule,
    Enwik8DataModule,
    ImdbDataModule,
    WikipediaDataModule,
    WikiTextDataModule,
)
