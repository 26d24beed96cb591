"""Text data modules: masked (`mlm`) and causal (`clm`) language modeling and classification (`clf`) data."""

from perceiver.data.text.bookcorpus import BookCorpusDataModule, BookCorpusOpenDataModule
from perceiver.data.text.c4 import C4DataModule
from perceiver.data.text.collator import (
    CausalLanguageModelCollator,
    ClassificationCollator,
    RandomTruncateCollator,
    TextBatch,
    TokenMaskingCollator,
    WordMaskingCollator,
)
from perceiver.data.text.common import RandomShiftDataset, Task, TextDataModule, TextPreprocessor
from perceiver.data.text.enwik8 import Enwik8DataModule
from perceiver.data.text.files import TextFilesDataModule
from perceiver.data.text.imdb import ImdbDataModule
from perceiver.data.text.tokenizer import PERCEIVER_BYTES, load_tokenizer
from perceiver.data.text.wikibook import WikiBookDataModule
from perceiver.data.text.wikipedia import WikipediaDataModule
from perceiver.data.text.wikitext import WikiTextDataModule

__all__ = [
    "PERCEIVER_BYTES",
    "BookCorpusDataModule",
    "BookCorpusOpenDataModule",
    "C4DataModule",
    "CausalLanguageModelCollator",
    "ClassificationCollator",
    "Enwik8DataModule",
    "ImdbDataModule",
    "RandomShiftDataset",
    "RandomTruncateCollator",
    "Task",
    "TextDataModule",
    "TextBatch",
    "TextFilesDataModule",
    "TextPreprocessor",
    "TokenMaskingCollator",
    "WikiBookDataModule",
    "WikiTextDataModule",
    "WikipediaDataModule",
    "WordMaskingCollator",
    "load_tokenizer",
]
