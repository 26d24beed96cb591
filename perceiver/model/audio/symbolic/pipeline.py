"""The `symbolic-audio-generation` pipeline: a MIDI prompt -> a generated MIDI continuation (`pretty_midi`)."""

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from transformers import Pipeline

from perceiver.processing.midi import MidiTokenizer

Prompt = Union["pretty_midi.PrettyMIDI", str, os.PathLike, Sequence[int], torch.Tensor]  # noqa: F821

_GENERATE_KWARGS = ("do_sample", "top_k", "top_p", "temperature", "num_beams", "use_cache", "min_new_tokens")


class SymbolicAudioGenerationPipeline(Pipeline):
    """Generates a MIDI continuation of a prompt with a `PerceiverSymbolicAudioModel`:

    ```python
    from transformers import pipeline
    from perceiver.model.audio import symbolic  # registers the pipeline

    generator = pipeline("symbolic-audio-generation", model="<model directory>")
    midi = generator("prompt.mid", num_latents=64, max_new_tokens=512, do_sample=True, top_k=20)
    midi.write("generated.mid")  # or: generator(..., output_file="generated.mid")
    ```

    The prompt is a `pretty_midi.PrettyMIDI`, a MIDI file path, or a sequence (or 1-d tensor) of event token ids
    (`perceiver.data.audio.MidiTokenizer`). A list of prompts that are not token ids gives a list of results.

    Call arguments: `num_latents` (latent positions at the end of the prompt when generation starts, default 1,
    at most the model's `max_latents`), `max_new_tokens` (default 256), the sampling arguments of `generate`
    (`do_sample`, `top_k`, `top_p`, `temperature`, ... or `generate_kwargs`), `return_full_sequence` (default True:
    the result holds the prompt followed by the generated events; False: only the generated events) and
    `output_file` (also write the result to that `.mid` file). Returns a `pretty_midi.PrettyMIDI`.
    """

    midi_tokenizer = MidiTokenizer()

    def __call__(self, inputs: Union[Prompt, List[Prompt]], **kwargs: Any):
        if isinstance(inputs, torch.Tensor) or (
            isinstance(inputs, (list, tuple)) and len(inputs) > 0 and all(isinstance(i, int) for i in inputs)
        ):
            inputs = torch.as_tensor(inputs, dtype=torch.long)  # one prompt of token ids, not a batch
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        num_latents: Optional[int] = None,
        max_new_tokens: Optional[int] = None,
        return_full_sequence: Optional[bool] = None,
        output_file: Optional[Union[str, os.PathLike]] = None,
        generate_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ):
        unknown = set(kwargs) - set(_GENERATE_KWARGS)
        if unknown:
            raise TypeError(f"unknown arguments {sorted(unknown)}; pass other generate arguments as generate_kwargs")
        forward_params = {**(generate_kwargs or {}), **kwargs}
        if num_latents is not None:
            forward_params["num_latents"] = num_latents
        if max_new_tokens is not None:
            forward_params["max_new_tokens"] = max_new_tokens
        postprocess_params = {}
        if return_full_sequence is not None:
            postprocess_params["return_full_sequence"] = return_full_sequence
        if output_file is not None:
            postprocess_params["output_file"] = output_file
        return {}, forward_params, postprocess_params

    def preprocess(self, prompt: Prompt) -> Dict[str, torch.Tensor]:
        if isinstance(prompt, torch.Tensor):
            ids = prompt.long().flatten()
        elif isinstance(prompt, (list, tuple)):
            ids = torch.as_tensor(prompt, dtype=torch.long)
        else:
            ids = torch.as_tensor(self.midi_tokenizer.encode(prompt), dtype=torch.long)
        if ids.numel() == 0:
            raise ValueError("the prompt holds no events")
        vocab_size = self.model.backend_model.config.vocab_size
        if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
            raise ValueError(f"prompt token ids must be in [0, {vocab_size})")
        max_seq_len = self.model.backend_model.config.max_seq_len
        return {"input_ids": ids[-max_seq_len:].unsqueeze(0)}

    def _forward(self, model_inputs: Dict[str, torch.Tensor], **generate_kwargs: Any) -> Dict[str, torch.Tensor]:
        input_ids = model_inputs["input_ids"]
        generate_kwargs.setdefault("max_new_tokens", 256)
        generate_kwargs.setdefault("pad_token_id", self.midi_tokenizer.pad_token_id)
        # sequences are never padded: the attention mask is all ones
        output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **generate_kwargs)
        return {"input_ids": input_ids, "sequences": output}

    def postprocess(
        self,
        model_outputs: Dict[str, torch.Tensor],
        return_full_sequence: bool = True,
        output_file: Optional[Union[str, os.PathLike]] = None,
    ):
        sequence = model_outputs["sequences"][0]
        if not return_full_sequence:
            sequence = sequence[model_outputs["input_ids"].shape[1] :]
        midi = self.midi_tokenizer.decode(sequence.tolist())
        if output_file is not None:
            midi.write(os.fspath(output_file))
        return midi
