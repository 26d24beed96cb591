"""The `symbolic-audio-generation` pipeline: a MIDI prompt -> generated event ids, MIDI, WAV audio, a piano roll."""

import enum
import os
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from transformers import Pipeline

from perceiver.model.core.perceiver_ar.backend import generation_window
from perceiver.processing.midi import (
    PAD_TOKEN_ID,
    STEPS_PER_SECOND,
    TIME_SHIFT_OFFSET,
    VELOCITY_OFFSET,
    MidiTokenizer,
    load_midi,
)
from perceiver.processing.midi_audio import piano_roll_png, render_wav

Prompt = Union["pretty_midi.PrettyMIDI", str, os.PathLike, Sequence[int], torch.Tensor]  # noqa: F821
PathLike = Union[str, os.PathLike]


class ReturnType(enum.Enum):
    """What the pipeline returns (as in perceiver-io 0.11): token ids, or audio (MIDI, and WAV with `render`)."""

    TENSORS = 0
    AUDIO = 1


class SymbolicAudioPipeline(Pipeline):
    """Continues a MIDI prompt with a `PerceiverSymbolicAudioModel` (task `symbolic-audio-generation`):

    ```python
    from transformers import pipeline
    from perceiver.model.audio import symbolic  # registers the pipeline

    generator = pipeline("symbolic-audio-generation", model="<model directory or hub id>")
    out = generator("prompt.mid", max_new_tokens=512, num_latents=1, do_sample=True, top_p=0.95, render=True)
    out["generated_audio_midi"].write("generated.mid")
    open("generated.wav", "wb").write(out["generated_audio_wav"])
    ```

    Prompts: a `pretty_midi.PrettyMIDI`, a MIDI file path, or a sequence (or 1-d tensor) of event token ids
    (`perceiver.processing.midi.MidiTokenizer`, 0.11's encoding). A list of prompts that are not token ids gives a
    list of results. Each result is a dict (0.11's keys):

    - `return_type=ReturnType.TENSORS`: `generated_token_ids` (list of ids)
    - `return_type=ReturnType.AUDIO` (default): `generated_audio_midi` (`pretty_midi.PrettyMIDI`), and with
      `render=True` also `generated_audio_wav` (WAV bytes: FluidSynth with the SoundFont `sf2_path` when given and
      FluidSynth is installed, otherwise the built-in synthesizer, so rendering works everywhere).

    Arguments: `return_full_audio` (default True: the prompt followed by the continuation; False: the continuation
    only), `max_prompt_length` (0.11: keep the first N ids of the prompt), `truncate_prompt` (default False: a
    prompt longer than the model can take with the requested `num_latents` raises a ValueError; True: its first ids
    are dropped with a warning that says how many), `output_file` (also write the result: `.mid`/`.midi` as MIDI,
    `.wav` rendered), `piano_roll_file` (a PNG of prompt, in blue, and continuation, in orange). Every other
    keyword argument goes to `generate()` (`num_latents`, `max_new_tokens` (default 256), `do_sample`, `top_k`,
    `top_p`, `temperature`, `num_beams`, `use_cache`, ...), or pass them as `generate_kwargs`.
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
        max_prompt_length: Optional[int] = None,
        truncate_prompt: Optional[bool] = None,
        return_full_audio: Optional[bool] = None,
        return_full_sequence: Optional[bool] = None,
        return_type: Optional[ReturnType] = None,
        render: Optional[bool] = None,
        sf2_path: Optional[PathLike] = None,
        output_file: Optional[PathLike] = None,
        piano_roll_file: Optional[PathLike] = None,
        generate_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ):
        preprocess_params: Dict[str, Any] = {}
        if max_prompt_length is not None:
            if not isinstance(max_prompt_length, int) or max_prompt_length < 1:
                raise ValueError(f"max_prompt_length={max_prompt_length!r} must be a positive int")
            preprocess_params["max_prompt_length"] = max_prompt_length
        if truncate_prompt is not None:
            preprocess_params["truncate_prompt"] = bool(truncate_prompt)
        forward_params = {**(generate_kwargs or {}), **kwargs}
        if "num_latents" in forward_params:
            preprocess_params["num_latents"] = forward_params["num_latents"]

        postprocess_params: Dict[str, Any] = {}
        if return_full_audio is None:
            return_full_audio = return_full_sequence  # this library's earlier name
        if return_full_audio is not None:
            postprocess_params["return_full_audio"] = bool(return_full_audio)
        if return_type is not None:
            if not isinstance(return_type, ReturnType):
                raise ValueError(f"return_type={return_type!r} must be ReturnType.TENSORS or ReturnType.AUDIO")
            postprocess_params["return_type"] = return_type
        if render is not None:
            postprocess_params["render"] = bool(render)
        if sf2_path is not None:
            if not os.path.isfile(sf2_path):
                raise ValueError(f"sf2_path={os.fspath(sf2_path)!r} does not exist")
            postprocess_params["sf2_path"] = sf2_path
        if output_file is not None:
            suffix = os.path.splitext(os.fspath(output_file))[1].lower()
            if suffix not in (".mid", ".midi", ".wav"):
                raise ValueError(f"output_file={os.fspath(output_file)!r} must end with .mid, .midi or .wav")
            postprocess_params["output_file"] = output_file
        if piano_roll_file is not None:
            postprocess_params["piano_roll_file"] = piano_roll_file
        return preprocess_params, forward_params, postprocess_params

    def preprocess(
        self,
        prompt: Prompt,
        max_prompt_length: Optional[int] = None,
        truncate_prompt: bool = False,
        num_latents: int = 1,
    ) -> Dict[str, torch.Tensor]:
        if isinstance(prompt, torch.Tensor):
            ids = prompt.long().flatten()
        elif isinstance(prompt, (list, tuple)):
            ids = torch.as_tensor(prompt, dtype=torch.long)
        elif isinstance(prompt, (str, os.PathLike)):
            ids = torch.as_tensor(self.midi_tokenizer.encode(load_midi(prompt)), dtype=torch.long)
        else:
            ids = torch.as_tensor(self.midi_tokenizer.encode(prompt), dtype=torch.long)
        if ids.numel() == 0:
            raise ValueError("the prompt holds no events (no notes)")
        vocab_size = self.model.backend_model.config.vocab_size
        if int(ids.min()) < 0 or int(ids.max()) >= vocab_size:
            raise ValueError(f"prompt token ids must be in [0, {vocab_size})")
        if max_prompt_length is not None:
            ids = ids[:max_prompt_length]  # 0.11: the first ids
        backend = self.model.backend_model
        longest = backend.max_prefix_len + (num_latents if isinstance(num_latents, int) else 1)
        if len(ids) > longest:
            what = (
                f"a prompt of {len(ids)} event ids is longer than the {longest} the model takes with "
                f"num_latents={num_latents} (max_prefix_len={backend.max_prefix_len})"
            )
            if not truncate_prompt:
                raise ValueError(
                    f"{what}; pass max_prompt_length={longest} (keeps the first ids, as 0.11) or truncate_prompt=True "
                    "(keeps the last ids)"
                )
            dropped = ids[: len(ids) - longest].tolist()
            seconds = sum(i - TIME_SHIFT_OFFSET + 1 for i in dropped if TIME_SHIFT_OFFSET <= i < VELOCITY_OFFSET)
            warnings.warn(
                f"{what}: dropped its first {len(dropped)} ids ({seconds / STEPS_PER_SECOND:.2f} s of music)",
                UserWarning,
                stacklevel=2,
            )
            ids, _ = generation_window(ids, None, longest)
        return {"input_ids": ids.unsqueeze(0)}

    def _forward(self, model_inputs: Dict[str, torch.Tensor], **generate_kwargs: Any) -> Dict[str, Any]:
        input_ids = model_inputs["input_ids"]
        generate_kwargs.setdefault("max_new_tokens", 256)
        generate_kwargs.setdefault("pad_token_id", PAD_TOKEN_ID)
        # sequences are never padded: the attention mask is all ones
        output = self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **generate_kwargs)
        return {"prompt_ids": input_ids[0], "sequences": output}

    def postprocess(
        self,
        model_outputs: Dict[str, Any],
        return_type: ReturnType = ReturnType.AUDIO,
        return_full_audio: bool = True,
        render: bool = False,
        sf2_path: Optional[PathLike] = None,
        output_file: Optional[PathLike] = None,
        piano_roll_file: Optional[PathLike] = None,
    ) -> Dict[str, Any]:
        prompt_ids = model_outputs["prompt_ids"].tolist()
        full = model_outputs["sequences"][0].tolist()
        sequence = full if return_full_audio else full[len(prompt_ids) :]
        result: Dict[str, Any] = {}
        if return_type == ReturnType.TENSORS:
            result["generated_token_ids"] = sequence

        midi = None
        if return_type == ReturnType.AUDIO or render or output_file is not None:
            # a continuation alone starts with the prompt's last velocity
            start_bin = 0 if return_full_audio else _last_velocity_bin(prompt_ids)
            midi = self.midi_tokenizer.decode(sequence, initial_velocity_bin=start_bin)
        if return_type == ReturnType.AUDIO:
            result["generated_audio_midi"] = midi
        wav = render_wav(midi, sf2_path) if render else None
        if wav is not None:
            result["generated_audio_wav"] = wav
        if output_file is not None:
            path = os.fspath(output_file)
            if path.lower().endswith(".wav"):
                with open(path, "wb") as f:
                    f.write(wav if wav is not None else render_wav(midi, sf2_path))
            else:
                midi.write(path)
        if piano_roll_file is not None:
            prompt_seconds = _duration(prompt_ids)
            piano_roll_png(self.midi_tokenizer.decode(full), split_time=prompt_seconds, path=piano_roll_file)
        return result


# this library's earlier name of the pipeline class
SymbolicAudioGenerationPipeline = SymbolicAudioPipeline


def _last_velocity_bin(ids: Sequence[int]) -> int:
    for i in reversed(ids):
        if VELOCITY_OFFSET <= i < PAD_TOKEN_ID:
            return i - VELOCITY_OFFSET
    return 0


def _duration(ids: Sequence[int]) -> float:
    steps = sum(i - TIME_SHIFT_OFFSET + 1 for i in ids if TIME_SHIFT_OFFSET <= i < VELOCITY_OFFSET)
    return steps / STEPS_PER_SECOND
