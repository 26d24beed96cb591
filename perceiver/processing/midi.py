"""MIDI event tokenizer of the Music Transformer (Huang et al., arXiv 1809.04281; Oore et al., arXiv 1808.03715), as
used by perceiver-io 0.11's symbolic audio model: a performance is a sequence of 389 token ids,

====================  ==========  ==================================================================
token ids             count       event
====================  ==========  ==================================================================
0 - 127               128         note-on of MIDI pitch `id`
128 - 255             128         note-off of MIDI pitch `id - 128`
256 - 355             100         time shift of `id - 255` steps of 10 ms (10 ms to 1 s)
356 - 387             32          velocity bin `id - 356` (MIDI velocity // 4) of the following note-ons
388                   1           padding (training only)
====================  ==========  ==================================================================

Two encodings (`MidiTokenizer(encoding=...)`, see docs/symbolic-audio.md):

- "0.11" (default): token for token what perceiver-io 0.11 wrote, the encoding its published models were trained
  on, including its quirks: each gap between events is rounded to 10 ms on its own (rounding errors add up), a
  velocity id is written when the bin of a note-on differs from the raw MIDI velocity of the event before it,
  and the sustain pedal (control change 64) lengthens notes in a way that loses the notes an instrument plays after
  its last pedal release (and repeats notes when a pedal is pressed after the last note). Lost notes are reported
  with one `UserWarning` per encoded performance.
- "corrected": the same vocabulary and event order, but times are rounded on the absolute 10 ms grid, a velocity id
  is written whenever the bin changes, and the pedal lengthens each note it holds (to the pedal release or the next
  onset of the same pitch) without losing or repeating any note.

Notes of all instruments (drums included) are merged into one performance, which decodes as a single piano.
"""

import math
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, List, Literal, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:  # pretty_midi is an optional dependency (the `audio` extra)
    import pretty_midi

NUM_PITCHES = 128
NUM_TIME_SHIFTS = 100
NUM_VELOCITY_BINS = 32

NOTE_ON_OFFSET = 0
NOTE_OFF_OFFSET = NOTE_ON_OFFSET + NUM_PITCHES
TIME_SHIFT_OFFSET = NOTE_OFF_OFFSET + NUM_PITCHES
VELOCITY_OFFSET = TIME_SHIFT_OFFSET + NUM_TIME_SHIFTS
PAD_TOKEN_ID = VELOCITY_OFFSET + NUM_VELOCITY_BINS
VOCAB_SIZE = PAD_TOKEN_ID + 1

STEPS_PER_SECOND = 100  # time resolution: 10 ms
VELOCITY_BIN_SIZE = 128 // NUM_VELOCITY_BINS
SUSTAIN_PEDAL = 64  # MIDI control change number of the sustain (damper) pedal

ENCODINGS = ("0.11", "corrected")
DEFAULT_MAX_TOKENS = 1_000_000  # a long concert is about 100,000 ids; far more means a corrupt file or a long pause
DEFAULT_PROGRAM = 1  # decoded instrument, as in 0.11 (General MIDI 1, bright acoustic piano)

Encoding = Literal["0.11", "corrected"]
MidiInput = Union["pretty_midi.PrettyMIDI", str, os.PathLike]


class MidiFileError(ValueError):
    """A MIDI file that can not be read (corrupt, truncated, not MIDI) or that encodes into too many tokens."""


def _pretty_midi():
    try:
        import pretty_midi
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("MIDI tokenization needs pretty_midi: pip install 'perceiver-io[audio]'") from e
    return pretty_midi


def load_midi(path: Union[str, os.PathLike]) -> "pretty_midi.PrettyMIDI":
    """Reads a MIDI file; raises `FileNotFoundError` or `MidiFileError` (a ValueError) naming the file and the
    problem (pretty_midi raises many kinds of errors on corrupt or truncated files)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MIDI file {path!r} does not exist")
    try:
        with warnings.catch_warnings():
            # pretty_midi warns about tempo events on non-zero tracks of real-world files: not our concern here
            warnings.filterwarnings("ignore", message="Tempo, Key or Time signature")
            return _pretty_midi().PrettyMIDI(path)
    except Exception as e:  # noqa: BLE001 - mido/pretty_midi raise OSError, EOFError, KeyError, ValueError, ...
        problem = str(e) or ("the file ends early (truncated)" if isinstance(e, EOFError) else "no details")
        raise MidiFileError(f"MIDI file {path!r} can not be read ({type(e).__name__}: {problem})") from e


@dataclass
class _Note:
    """A copy of a `pretty_midi.Note` (pedal handling changes `end`; the caller's notes stay as they are)."""

    start: float
    end: float
    pitch: int
    velocity: int


class MidiTokenizer:
    """Encodes MIDI performances to event token ids and decodes token ids to MIDI (see the module's table).

    :param encoding: "0.11" (default, what perceiver-io 0.11 and its published models use) or "corrected" (see the
        module docstring and docs/symbolic-audio.md).
    :param max_tokens: the most ids one performance may encode into; a longer one raises `MidiFileError` (a long
        pause alone can make millions of time-shift ids). None: no limit.
    """

    vocab_size: int = VOCAB_SIZE
    pad_token_id: int = PAD_TOKEN_ID

    def __init__(self, encoding: Encoding = "0.11", max_tokens: Optional[int] = DEFAULT_MAX_TOKENS):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding={encoding!r} must be one of {list(ENCODINGS)}")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ValueError(f"max_tokens={max_tokens!r} must be a positive int or None")
        self.encoding = encoding
        self.max_tokens = max_tokens

    def __len__(self) -> int:
        return self.vocab_size

    def __call__(self, midi: MidiInput) -> List[int]:
        return self.encode(midi)

    # ------------------------------------------------------------------------------------------------------------
    # encoding
    # ------------------------------------------------------------------------------------------------------------

    def encode(self, midi: MidiInput) -> List[int]:
        """Token ids of a `pretty_midi.PrettyMIDI` or of a MIDI file (path)."""
        source = "the performance"
        if isinstance(midi, (str, os.PathLike)):
            source = f"MIDI file {os.fspath(midi)!r}"
            midi = load_midi(midi)
        corrected = self.encoding == "corrected"

        notes: List[_Note] = []
        lost = repeated = 0
        for instrument in midi.instruments:
            instrument_notes = [_copy_note(note) for note in instrument.notes]
            periods = _pedal_periods(instrument.control_changes)
            if corrected:
                notes.extend(_sustain_corrected(instrument_notes, periods))
            elif periods:
                kept = _sustain_011(instrument_notes, periods)
                distinct = len({id(note) for note in kept})
                lost += len(instrument_notes) - distinct
                repeated += len(kept) - distinct
                notes.extend(kept)
            else:
                notes.extend(instrument_notes)
        if lost or repeated:
            warnings.warn(
                f"{source}: the 0.11 encoding's sustain-pedal handling lost {lost} of its notes (those an instrument "
                f"plays after its last pedal release) and repeated {repeated}, as perceiver-io 0.11 did; encode with "
                "MidiTokenizer(encoding='corrected') to keep every note once",
                UserWarning,
                stacklevel=2,
            )
        return self._events_to_ids(_ordered_events(notes), corrected, source)

    def _events_to_ids(self, events: List[Tuple[float, bool, _Note]], corrected: bool, source: str) -> List[int]:
        ids: List[int] = []
        limit = self.max_tokens
        prev_time, prev_step = 0.0, 0
        prev_velocity: Optional[int] = 0  # 0.11: raw velocity of the previous event (None after a note-off)
        last_bin: Optional[int] = None  # corrected: the bin of the last velocity id
        for time, is_off, note in events:
            if corrected:
                step = round(time * STEPS_PER_SECOND)
                steps, prev_step = step - prev_step, step
            else:
                steps = int(round((time - prev_time) * STEPS_PER_SECOND))  # each gap on its own: errors add up
            prev_time = time
            if steps > 0:
                if limit is not None and len(ids) + math.ceil(steps / NUM_TIME_SHIFTS) > limit:
                    raise MidiFileError(
                        f"{source} encodes into more than max_tokens={limit} ids (a pause of {steps / 100:.2f} s "
                        f"at {time:.2f} s needs {math.ceil(steps / NUM_TIME_SHIFTS)} time shifts); raise max_tokens "
                        "or pass max_tokens=None to encode it anyway"
                    )
                ids.extend(time_shift_ids(steps))
            if is_off:
                ids.append(NOTE_OFF_OFFSET + note.pitch)
                prev_velocity = None
            else:
                velocity_bin = note.velocity // VELOCITY_BIN_SIZE
                if corrected:
                    if velocity_bin != last_bin:
                        ids.append(VELOCITY_OFFSET + velocity_bin)
                        last_bin = velocity_bin
                elif velocity_bin != prev_velocity:
                    ids.append(VELOCITY_OFFSET + velocity_bin)
                prev_velocity = note.velocity
                ids.append(NOTE_ON_OFFSET + note.pitch)
            if limit is not None and len(ids) > limit:
                raise MidiFileError(
                    f"{source} encodes into more than max_tokens={limit} ids; raise max_tokens or pass "
                    "max_tokens=None to encode it anyway"
                )
        return ids

    # ------------------------------------------------------------------------------------------------------------
    # decoding
    # ------------------------------------------------------------------------------------------------------------

    def decode(
        self, ids: Iterable[int], program: int = DEFAULT_PROGRAM, name: str = "", initial_velocity_bin: int = 0
    ) -> "pretty_midi.PrettyMIDI":
        """A `pretty_midi.PrettyMIDI` with one instrument (`program`, `name`) playing the notes of `ids`.

        Ids of an encoded performance decode to the notes perceiver-io 0.11 decodes (times on the 10 ms grid). Any
        sequence of ids decodes into notes that never overlap notes of the same pitch, where 0.11 loses or silences
        notes: a note-on of a sounding pitch ends that note first (0.11 forgets the first note), velocity bin 0
        decodes to velocity 1 (0.11: 0, a silent note), notes still sounding at the end last until there, at least
        one step (0.11 drops them). A note-off without a sounding note is ignored, a note ended at its start step is
        dropped (as in 0.11), padding is skipped. Velocity bins decode to bin * 4; before the first velocity id, bin
        `initial_velocity_bin` holds (0, as in 0.11's encoder).
        """
        pretty_midi = _pretty_midi()
        if not 0 <= initial_velocity_bin < NUM_VELOCITY_BINS:
            raise ValueError(f"initial_velocity_bin={initial_velocity_bin} must be in [0, {NUM_VELOCITY_BINS})")
        instrument = pretty_midi.Instrument(program=program, is_drum=False, name=name)
        step = 0
        velocity = _bin_velocity(initial_velocity_bin)
        sounding = {}  # pitch -> (start step, velocity)

        def end_note(pitch: int, end: int) -> None:
            start, note_velocity = sounding.pop(pitch)
            if end > start:
                instrument.notes.append(
                    pretty_midi.Note(note_velocity, pitch, start / STEPS_PER_SECOND, end / STEPS_PER_SECOND)
                )

        for id_ in ids:
            id_ = int(id_)
            if not 0 <= id_ < VOCAB_SIZE:
                raise ValueError(f"token id {id_} out of range [0, {VOCAB_SIZE})")
            if id_ < NOTE_OFF_OFFSET:
                pitch = id_ - NOTE_ON_OFFSET
                if pitch in sounding:
                    end_note(pitch, step)
                sounding[pitch] = (step, velocity)
            elif id_ < TIME_SHIFT_OFFSET:
                pitch = id_ - NOTE_OFF_OFFSET
                if pitch in sounding:
                    end_note(pitch, step)
            elif id_ < VELOCITY_OFFSET:
                step += id_ - TIME_SHIFT_OFFSET + 1
            elif id_ < PAD_TOKEN_ID:
                velocity = _bin_velocity(id_ - VELOCITY_OFFSET)
        for pitch in list(sounding):
            end_note(pitch, max(step, sounding[pitch][0] + 1))
        instrument.notes.sort(key=lambda note: (note.start, note.pitch))
        midi = pretty_midi.PrettyMIDI()
        midi.instruments.append(instrument)
        return midi


def _bin_velocity(velocity_bin: int) -> int:
    return max(velocity_bin * VELOCITY_BIN_SIZE, 1)


def _copy_note(note) -> _Note:
    if not 0 <= note.pitch < NUM_PITCHES:
        raise ValueError(f"note pitch {note.pitch} out of range [0, {NUM_PITCHES})")
    if not 0 <= note.velocity < NUM_PITCHES:
        raise ValueError(f"note velocity {note.velocity} out of range [0, 128)")
    if not (math.isfinite(note.start) and math.isfinite(note.end) and note.start >= 0):
        raise ValueError(f"note times start={note.start}, end={note.end} must be finite, start >= 0")
    return _Note(note.start, note.end, note.pitch, note.velocity)


def _last_end(notes: Sequence[_Note]) -> float:
    return max((note.end for note in notes), default=0.0)


def _pedal_periods(control_changes) -> List[List[float]]:
    """[down, up] times of the sustain pedal, from control changes 64 in file order: values >= 64 press it, values
    < 64 release it; a release while it is up moves the previous release later (as 0.11 reads pedals). A pedal
    still down at the end has release time `math.inf`."""
    periods: List[List[float]] = []
    down: Optional[float] = None
    for change in control_changes:
        if change.number != SUSTAIN_PEDAL:
            continue
        if change.value >= 64:
            if down is None:
                down = change.time
        elif down is not None:
            periods.append([down, change.time])
            down = None
        elif periods:
            periods[-1][1] = change.time
    if down is not None:
        # 0.11 ignores a pedal never released; the corrected encoding holds it to the end (see _sustain_corrected)
        periods.append([down, math.inf])
    return periods


def _sustain_011(notes: List[_Note], periods: List[List[float]]) -> List[_Note]:
    """The notes of one instrument after 0.11's sustain-pedal handling, in 0.11's order (stable by start time).

    0.11 walks the notes in file order once per pedal period, from where the previous period stopped: notes starting
    before the press pass through, notes starting while it is down are held, and the first note starting after the
    release ends the walk and lengthens the held notes (each to the onset of the next held note of its pitch, in file
    order, else to the release if that is later). Consequences kept on purpose: notes after the last release that
    stopped a walk are lost, a walk that reaches the end (no note after the release) lengthens nothing and leaves
    the next walk to pass the same notes again, and a pedal never released is ignored.
    """
    periods = [p for p in periods if p[1] != math.inf]
    if not periods:
        return list(notes)
    passed: List[_Note] = []
    held_per_period: List[List[_Note]] = []
    first = 0  # where the walk of the next period starts
    for down, up in periods:
        held: List[_Note] = []
        for index in range(first, len(notes)):
            note = notes[index]
            if note.start < down:
                passed.append(note)
            elif note.start > up:
                first = index
                _hold_011(held, up)
                break
            else:
                held.append(note)
        held_per_period.append(held)
    kept = passed + [note for held in held_per_period for note in held]
    kept.sort(key=lambda note: note.start)
    return kept


def _hold_011(held: List[_Note], up: float) -> None:
    next_onset = {}  # pitch -> start of the next held note of that pitch (file order)
    for note in reversed(held):
        note.end = next_onset[note.pitch] if note.pitch in next_onset else max(up, note.end)
        next_onset[note.pitch] = note.start


def _sustain_corrected(notes: List[_Note], periods: List[List[float]]) -> List[_Note]:
    """Every note once; a note starting while the pedal is down lasts until the release (a pedal never released:
    until the instrument's last note ends), or until the next onset of its pitch if that comes first, and never
    less than it was played. Order: by start time, then file order (like the 0.11 encoding)."""
    notes = sorted(notes, key=lambda note: note.start)
    if not periods:
        return notes
    last_end = _last_end(notes)
    onsets = {}  # pitch -> start times, ascending
    for note in notes:
        onsets.setdefault(note.pitch, []).append(note.start)
    for note in notes:
        for down, up in periods:
            if down <= note.start <= up:
                release = last_end if up == math.inf else up
                later = [t for t in onsets[note.pitch] if t > note.start]
                if later:
                    release = min(release, later[0])
                note.end = max(note.end, release)
                break
    return notes


def _ordered_events(notes: List[_Note]) -> List[Tuple[float, bool, _Note]]:
    """Note-on and note-off events in 0.11's order: by float time; at equal times in the order of their notes
    (stable by start time, then instrument and file order), a note's on before its off."""
    ranked = sorted(notes, key=lambda note: note.start)
    keyed = []
    for rank, note in enumerate(ranked):
        keyed.append((note.start, rank, 0, note))
        keyed.append((note.end, rank, 1, note))
    keyed.sort(key=lambda event: event[:3])
    return [(time, bool(is_off), note) for time, _, is_off, note in keyed]


def time_shift_ids(steps: int) -> List[int]:
    """Time-shift token ids advancing `steps` steps of 10 ms (one id per second, then the rest)."""
    ids = [TIME_SHIFT_OFFSET + NUM_TIME_SHIFTS - 1] * (steps // NUM_TIME_SHIFTS)
    if steps % NUM_TIME_SHIFTS:
        ids.append(TIME_SHIFT_OFFSET + steps % NUM_TIME_SHIFTS - 1)
    return ids


def encode_midi(midi: MidiInput, encoding: Encoding = "0.11", max_tokens: Optional[int] = DEFAULT_MAX_TOKENS):
    """Token ids of a `pretty_midi.PrettyMIDI` or a MIDI file; see `MidiTokenizer.encode`."""
    return MidiTokenizer(encoding=encoding, max_tokens=max_tokens).encode(midi)


def decode_midi(
    ids: Sequence[int], file_path: Optional[Union[str, os.PathLike]] = None, program: int = DEFAULT_PROGRAM
) -> "pretty_midi.PrettyMIDI":
    """A `pretty_midi.PrettyMIDI` of token ids (see `MidiTokenizer.decode`), also written to `file_path` if given
    (as 0.11's `decode_midi(ids, file_path)`)."""
    midi = MidiTokenizer().decode(ids, program=program)
    if file_path is not None:
        midi.write(os.fspath(file_path))
    return midi


def encode_files(
    files: Sequence[Union[str, os.PathLike]],
    encoding: Encoding = "0.11",
    max_tokens: Optional[int] = DEFAULT_MAX_TOKENS,
    num_workers: int = 1,
) -> Tuple[List[Tuple[str, List[int]]], List[Tuple[str, str]]]:
    """Encodes MIDI files (in `num_workers` processes): `(path, ids)` of the files that encode, in the order given,
    and `(path, problem)` of the files skipped because they can not be read or exceed `max_tokens`."""
    from concurrent.futures import ProcessPoolExecutor

    paths = [os.fspath(f) for f in files]
    tokenizer = MidiTokenizer(encoding=encoding, max_tokens=max_tokens)
    if num_workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(num_workers) as pool:
            results = list(pool.map(_try_encode, [tokenizer] * len(paths), paths, chunksize=8))
    else:
        results = [_try_encode(tokenizer, path) for path in paths]
    encoded = [(path, ids) for path, (ids, _) in zip(paths, results) if ids is not None]
    skipped = [(path, problem) for path, (ids, problem) in zip(paths, results) if ids is None]
    return encoded, skipped


def _try_encode(tokenizer: MidiTokenizer, path: str) -> Tuple[Optional[List[int]], str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # 0.11's lost pedal notes: expected in corpus files
            return tokenizer.encode(path), ""
    except (MidiFileError, FileNotFoundError) as e:
        return None, str(e)
