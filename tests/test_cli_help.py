"""Every option of every training script has a description in `--help`."""

import importlib
import pkgutil
import re
from typing import Dict, List

import pytest

import perceiver.scripts

# the scripts: modules of perceiver.scripts with a `main`; the preprocessing scripts are no training scripts
ALL_SCRIPTS = sorted(
    info.name
    for info in pkgutil.walk_packages(perceiver.scripts.__path__, "perceiver.scripts.")
    if not info.ispkg and hasattr(importlib.import_module(info.name), "main")
)
PREPROC_SCRIPTS = [name for name in ALL_SCRIPTS if name.endswith(".preproc")]
SCRIPTS = [name for name in ALL_SCRIPTS if name not in PREPROC_SCRIPTS]


def help_text(capsys, script: str, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(script).main([*args, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def option_descriptions(text: str) -> Dict[str, str]:
    """Option name -> description (without the `(type: ..., default: ...)` part) of an argparse help text."""
    entries: Dict[str, List[str]] = {}
    current = None
    lines = text.splitlines()
    for line in lines[lines.index("") :]:  # after the usage
        match = re.match(r"^  (-[^\s,]+)(?:[ =]\S+)*?(?:, -\S+(?: \S+)?)*(?:\s{2,}(.*))?$", line)
        if match:
            current = match.group(1)
            entries[current] = [match.group(2) or ""]
        elif current is not None and line.startswith(" " * 4):
            entries[current].append(line.strip())
        else:
            current = None
    descriptions = {}
    for option, parts in entries.items():
        text = " ".join(p for p in parts if p)
        descriptions[option] = re.split(r"\(type: |\(default: ", text)[0].strip()
    return descriptions


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_has_a_description(capsys, script):
    text = help_text(capsys, script, "fit")
    descriptions = option_descriptions(text)
    assert "--model.lr" in descriptions and "--trainer.max_steps" in descriptions and "--data" in descriptions
    missing = sorted(option for option, description in descriptions.items() if not description)
    assert not missing, f"{script} fit --help: no description for {missing}"
    assert "lacks type and help" not in text


@pytest.mark.parametrize("script", PREPROC_SCRIPTS)
def test_every_preprocessing_option_has_a_description(capsys, script):
    subcommand = ["wikitext"] if script == "perceiver.scripts.text.preproc" else []  # its datasets are subcommands
    descriptions = option_descriptions(help_text(capsys, script, *subcommand))
    assert "-h" in descriptions and "--max_seq_len" in descriptions
    missing = sorted(option for option, description in descriptions.items() if not description)
    assert not missing, f"{script} --help: no description for {missing}"


DATA_MODULES = (
    [
        ("perceiver.scripts.text.clm", name)
        for name in (
            "TextDataModule",
            "TextFilesDataModule",
            "WikiTextDataModule",
            "Enwik8DataModule",
            "ImdbDataModule",
            "C4DataModule",
            "BookCorpusDataModule",
            "BookCorpusOpenDataModule",
            "WikipediaDataModule",
        )
    ]
    + [
        ("perceiver.scripts.vision.image_classifier", name)
        for name in ("ImageDataModule", "DigitsDataModule", "MNISTDataModule", "ImageNetDataModule")
    ]
    + [("perceiver.scripts.audio.symbolic", "SymbolicAudioDataModule")]
)


@pytest.mark.parametrize("script,data_module", DATA_MODULES)
def test_every_data_option_has_a_description(capsys, script, data_module):
    descriptions = option_descriptions(help_text(capsys, script, "fit", "--data.help", data_module))
    assert "--data.batch_size" in descriptions
    missing = sorted(option for option, description in descriptions.items() if not description)
    assert not missing, f"{script} fit --data.help {data_module}: no description for {missing}"
