"""The Lightning wrappers take their backend config's fields as flat init arguments (so that the Lightning CLI sets
each one, as perceiver-io 0.11's command lines do). The config dataclass is the one source: these tests fail when a
wrapper's argument and its config field drift apart (name, type or default), and check that the CLI's `--help` lists
every field with a description."""

import dataclasses
import importlib
import inspect
import typing

import pytest
from test_cli_help import help_text, option_descriptions

from perceiver.model.audio.symbolic.lightning import LitSymbolicAudioModel
from perceiver.model.core.lightning import LitClassifier, LitModel
from perceiver.model.core.perceiver_ar.lightning import LitCausalSequenceModel
from perceiver.model.text.classifier.lightning import LitTextClassifier
from perceiver.model.text.clm.lightning import LitCausalLanguageModel
from perceiver.model.text.mlm.lightning import LitMaskedLanguageModel
from perceiver.model.vision.image_classifier.lightning import LitImageClassifier
from perceiver.scripts.cli import CLI

WRAPPERS = [
    LitCausalSequenceModel,
    LitCausalLanguageModel,
    LitSymbolicAudioModel,
    LitMaskedLanguageModel,
    LitTextClassifier,
    LitImageClassifier,
]
# fields the CLI must be given (no default in the wrapper, as in 0.11): the nested configs and the latent array shape
# of Perceiver IO models
REQUIRED = {"encoder", "decoder", "num_latents", "num_latent_channels"}
# the wrapper's script, for `--help`
SCRIPTS = {
    LitCausalLanguageModel: "perceiver.scripts.text.clm",
    LitSymbolicAudioModel: "perceiver.scripts.audio.symbolic",
    LitMaskedLanguageModel: "perceiver.scripts.text.mlm",
    LitTextClassifier: "perceiver.scripts.text.classifier",
    LitImageClassifier: "perceiver.scripts.vision.image_classifier",
}


def wrapper_parameters(cls: type) -> dict:
    """name -> (parameter, type hint) of the init arguments `cls` takes, following `**kwargs` to its base classes as
    the Lightning CLI does, without those of `LitModel` and `LitClassifier` (training options of all wrappers)."""
    result = {}
    for klass in cls.__mro__:
        if klass in (LitModel, LitClassifier) or "__init__" not in vars(klass):
            continue
        hints = typing.get_type_hints(klass.__init__)
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in result:
                result[p.name] = (p, hints.get(p.name))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return result


def config_default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return inspect.Parameter.empty


@pytest.mark.parametrize("cls", WRAPPERS, ids=lambda c: c.__name__)
def test_wrapper_arguments_agree_with_config_fields(cls):
    config_class = cls.backend_config_class
    hints = typing.get_type_hints(config_class)
    parameters = wrapper_parameters(cls)
    for field in dataclasses.fields(config_class):
        assert field.name in parameters, f"{cls.__name__} has no argument for {config_class.__name__}.{field.name}"
        parameter, hint = parameters[field.name]
        assert hint == hints[field.name], f"{cls.__name__}({field.name}: {hint}) but the config has {hints[field.name]}"
        if parameter.default is inspect.Parameter.empty:
            assert field.name in REQUIRED, f"{cls.__name__}({field.name}) has no default, the config has one"
        else:
            assert parameter.default == config_default(field), (
                f"{cls.__name__}({field.name}={parameter.default!r}) but {config_class.__name__}.{field.name} "
                f"defaults to {config_default(field)!r}"
            )


@pytest.mark.parametrize("cls", WRAPPERS, ids=lambda c: c.__name__)
def test_wrapper_builds_the_config_it_is_given(cls):
    """Every config field reaches the backend config (none is only passed on, or lost)."""
    parameters = wrapper_parameters(cls)
    fields = [f.name for f in dataclasses.fields(cls.backend_config_class)]
    assert set(fields) <= set(parameters)
    others = sorted(set(parameters) - set(fields))
    docs = "\n".join(inspect.getdoc(klass) or "" for klass in cls.__mro__)  # the CLI reads the bases' too
    for name in others:  # the wrapper's own options (validation samples, class names, ...) are described
        assert f":param {name}:" in docs, f"{cls.__name__}: option {name} has no description"


def linked_options(script: str) -> set:
    """The model options a script's CLI takes from the data module (not shown by `--help`)."""
    module = importlib.import_module(script)
    clis = [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, CLI) and c is not CLI]
    return {target for cli in clis for _, target, *_ in cli.links}


@pytest.mark.parametrize("cls", list(SCRIPTS), ids=lambda c: c.__name__)
def test_cli_help_lists_every_config_field_with_its_description(capsys, cls):
    descriptions = option_descriptions(help_text(capsys, SCRIPTS[cls], "fit"))
    linked = linked_options(SCRIPTS[cls])
    assert linked, f"{SCRIPTS[cls]} links no model options"
    for field in dataclasses.fields(cls.backend_config_class):
        if f"model.{field.name}" in linked:
            continue
        if dataclasses.is_dataclass(typing.get_type_hints(cls.backend_config_class)[field.name]):
            options = [o for o in descriptions if o.startswith(f"--model.{field.name}.")]
            assert options, f"{SCRIPTS[cls]} fit --help lists no --model.{field.name}.* options"
            continue
        option = f"--model.{field.name}"
        assert descriptions.get(option), f"{SCRIPTS[cls]} fit --help: {option} missing or without description"
