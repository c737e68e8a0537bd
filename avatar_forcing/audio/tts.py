"""Text to speech with eSpeak NG (library and data from the PyPI package `espeakng-loader`), via ctypes.

`synthesize(text)` returns 16 kHz mono audio plus timed phoneme and word events from eSpeak's C API
(espeak_Synth in AUDIO_OUTPUT_SYNCHRONOUS mode, events delivered to a synth callback). eSpeak keeps one
global state per process, so every call holds one module-wide lock: calls are thread-safe but serial
(use processes for parallel synthesis).

Voices are names such as "en", "en-us", "en-gb", "fr", optionally with a variant: "en+f3", "en-us+m2",
"en+klatt". `voices()` and `variants()` list what the bundled data provides.

Determinism: eSpeak keeps the phase of its pitch flutter and of its "roughness" amplitude modulation in
static C variables that no API call resets (not even espeak_Terminate), so by default the same text sounds
slightly different on every call. We run eSpeak on a private overlay of its data folder (symlinks, built
once per process in a temp folder) in which every voice variant also sets `flutter 0` and `roughness 0`,
and a plain voice name gets the variant "steady" that does only that. With the random seed set before
each call (espeak_ng_SetRandSeed, for breathy voices), the same input gives the same samples and events.

Non-speech such as laughter has no special support: "ha ha ha" is plain text and comes out as spoken
syllables (which is what the synthetic corpus wants: its laughter events are text plus labels).
"""

from __future__ import annotations

import ctypes
import hashlib
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatar_forcing.audio.io import SAMPLE_RATE, resample
from avatar_forcing.errors import ConfigError, InputError

# --- eSpeak NG C API constants (speak_lib.h) ---
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_DONT_EXIT = 0x8000   # return errors instead of calling exit()
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_SENTENCE, EVENT_PHONEME = 0, 1, 2, 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
PAUSE_SYMBOLS = ("_", "_:", "_!", "_|", "_;", "||", "|")  # eSpeak's pause / boundary mnemonics


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),   # 1-based character position in the text
        ("length", ctypes.c_int),          # characters (word events)
        ("audio_position", ctypes.c_int),  # milliseconds since the start of this espeak_Synth call
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),    # (priority byte, language string) pairs
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


# int callback(short *wav, int n_samples, espeak_EVENT *events)
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True)
class TTSConfig:
    buffer_ms: int = 500          # audio per callback; larger = fewer Python calls
    steady_variant: str = "steady"                 # our variant for voices given without "+variant"
    steady_lines: bytes = b"\nflutter 0\nroughness 0\n"  # appended to every variant (see module doc)
    min_rate: int = 80            # words per minute, eSpeak's accepted range
    max_rate: int = 450
    max_chars: int = 100_000      # refuse absurdly long texts in one call


@dataclass
class Phoneme:
    start: float                  # seconds
    end: float
    # eSpeak phoneme mnemonic, e.g. "h", "@", "_:" (pause); vowels may carry a stress prefix:
    # "'" primary, "," secondary ("'oU", ",aU")
    symbol: str

    @property
    def is_pause(self) -> bool:
        return self.symbol in PAUSE_SYMBOLS


@dataclass
class Word:
    start: float
    end: float
    text: str


@dataclass
class Speech:
    pcm: np.ndarray               # float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    sentences: list[float] = field(default_factory=list)  # sentence start times (s)

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


class _Engine:
    """The process-wide eSpeak instance. Use only under `_LOCK`."""

    def __init__(self, cfg: TTSConfig):
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ConfigError("text to speech needs the package espeakng-loader "
                              "(pip install espeakng-loader)") from e
        self.data_path = Path(espeakng_loader.get_data_path())
        self.overlay = _steady_overlay(self.data_path, cfg)
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint),
                                     ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, cfg.buffer_ms, str(self.overlay).encode(),
                                     INITIALIZE_PHONEME_EVENTS | INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise ConfigError(f"eSpeak NG failed to initialise with data at {self.data_path}")
        self.lib, self.native_rate = lib, rate
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, int, int, int, bytes | int]] = []
        self.voice_table: dict[str, str] = {}  # filled on first use
        self.variants = sorted(p.name for p in (self.overlay / "voices" / "!v").iterdir())
        self.callback = _CALLBACK(self._on_synth)  # keep a reference: ctypes must not free it
        lib.espeak_SetSynthCallback(self.callback)

    def _on_synth(self, wav, n_samples, events) -> int:
        if n_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            ident: bytes | int = e.id.string if e.type == EVENT_PHONEME else e.id.number
            self.events.append((e.type, e.audio_position, e.text_position, e.length, ident))
            i += 1
        return 0  # 0 = continue synthesis


def _steady_overlay(data: Path, cfg: TTSConfig) -> Path:
    """A copy of eSpeak's data folder made of symlinks, with steady (repeatable) voice variants.

    It is built once per data folder and settings in the temp dir and shared by every process (the
    corpus forks a fresh process per conversation, and forked children skip atexit clean-up)."""
    key = hashlib.sha1(f"{data.resolve()}|{cfg.steady_variant}|".encode() + cfg.steady_lines).hexdigest()[:16]
    final = Path(tempfile.gettempdir()) / f"avatar-forcing-espeak-{key}"
    if (final / "espeak-ng-data" / "voices" / "!v" / cfg.steady_variant).is_file():
        return final / "espeak-ng-data"
    root = Path(tempfile.mkdtemp(prefix="avatar-forcing-espeak-build-"))
    overlay = root / "espeak-ng-data"
    for folder_in, folder_out in ((data, overlay), (data / "voices", overlay / "voices")):
        folder_out.mkdir()
        for item in folder_in.iterdir():
            if item.name not in ("voices", "!v"):
                (folder_out / item.name).symlink_to(item)
    variants_out = overlay / "voices" / "!v"
    variants_out.mkdir()
    for item in (data / "voices" / "!v").iterdir():
        if item.is_file():
            (variants_out / item.name).write_bytes(item.read_bytes() + cfg.steady_lines)
    (variants_out / cfg.steady_variant).write_bytes(
        b"language variant\nname " + cfg.steady_variant.encode() + cfg.steady_lines)
    try:
        root.rename(final)  # atomic: concurrent builders race, one wins
    except OSError:
        shutil.rmtree(root, ignore_errors=True)
    return final / "espeak-ng-data"


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine(TTSConfig())
    return _ENGINE


def _voice_table(eng: _Engine) -> dict[str, str]:
    """Language code (e.g. "en-gb") -> voice file identifier (e.g. "gmw/en"), from espeak_ListVoices."""
    if eng.voice_table:
        return eng.voice_table
    table, found, i = eng.voice_table, eng.lib.espeak_ListVoices(None), 0
    while found[i]:
        voice = found[i].contents
        # `languages` starts with one (priority byte, NUL-terminated code) pair; we read the first
        language = (voice.languages or b"")[1:].decode("utf-8", "replace")
        identifier = (voice.identifier or b"").decode("utf-8", "replace")
        table.setdefault(language, identifier)
        table.setdefault(identifier.rsplit("/", 1)[-1].lower(), identifier)  # file name: "fr", "en"
        i += 1
    return table


def voices() -> list[str]:
    """Language voice names available to `synthesize` (e.g. "en", "en-us", "en-gb", "fr")."""
    with _LOCK:
        return sorted(_voice_table(_engine()))


def variants() -> list[str]:
    """Voice variants usable as "<voice>+<variant>" (e.g. "f3", "m2", "klatt", "steady")."""
    with _LOCK:
        return list(_engine().variants)


def _check(code: int, what: str) -> None:
    if code != 0:
        raise InputError(f"eSpeak NG: {what} failed (error {code})")


def synthesize(text: str, voice: str = "en", rate: int = 170, pitch: int = 50, pitch_range: int = 50,
               sample_rate: int = SAMPLE_RATE, seed: int = 0, cfg: TTSConfig = TTSConfig()) -> Speech:
    """Speak `text`; rate in words per minute, pitch and pitch_range in eSpeak's 0..100 units."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("text to speak is empty")
    if len(text) > cfg.max_chars:
        raise InputError(f"text to speak is too long ({len(text)} characters, at most {cfg.max_chars})")
    if not cfg.min_rate <= rate <= cfg.max_rate:
        raise InputError(f"speech rate must be {cfg.min_rate}..{cfg.max_rate} words/min, got {rate}")
    for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
        if not 0 <= value <= 100:
            raise InputError(f"{name} must be 0..100, got {value}")
    data = text.encode("utf-8") + b"\0"
    with _LOCK:
        eng = _engine()
        base, _, variant = voice.partition("+")
        base = _voice_table(eng).get(base.lower(), base)
        variant = variant or cfg.steady_variant
        if variant not in eng.variants or eng.lib.espeak_SetVoiceByName(f"{base}+{variant}".encode()) != 0:
            raise InputError(f"unknown eSpeak voice {voice!r}; "
                             "see voices() and variants() in avatar_forcing.audio.tts")
        _check(eng.lib.espeak_SetParameter(PARAM_RATE, int(rate), 0), "setting the rate")
        _check(eng.lib.espeak_SetParameter(PARAM_PITCH, int(pitch), 0), "setting the pitch")
        _check(eng.lib.espeak_SetParameter(PARAM_RANGE, int(pitch_range), 0), "setting the pitch range")
        eng.lib.espeak_ng_SetRandSeed(int(seed))  # eSpeak adds random jitter; reseed for repeatability
        eng.chunks, eng.events = [], []
        buf = ctypes.create_string_buffer(data)
        _check(eng.lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None), "synthesis")
        _check(eng.lib.espeak_Synchronize(), "synthesis")
        chunks, events, native = eng.chunks, eng.events, eng.native_rate
        eng.chunks, eng.events = [], []
    raw = np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0, np.float32)
    pcm = resample(raw, native, sample_rate)
    return _assemble(text, pcm, sample_rate, events)


def _assemble(text: str, pcm: np.ndarray, sample_rate: int, events: list) -> Speech:
    """Turn raw events into phonemes (end = next start) and words (end = end of their last phoneme)."""
    duration = len(pcm) / sample_rate
    starts, symbols, words, sentences = [], [], [], []
    for kind, ms, text_pos, length, ident in events:
        t = min(ms / 1000.0, duration)
        if kind == EVENT_PHONEME:
            symbol = ident.decode("utf-8", "replace")
            if symbol:
                starts.append(t)
                symbols.append(symbol)
        elif kind == EVENT_WORD:
            words.append((t, text[max(text_pos - 1, 0): max(text_pos - 1, 0) + length]))
        elif kind == EVENT_SENTENCE:
            sentences.append(t)
    # eSpeak can report out-of-order times at clause joins; keep timelines monotonic
    starts = list(np.maximum.accumulate(starts)) if starts else []
    ends = starts[1:] + [duration]
    phonemes = [Phoneme(float(s), float(e), sym) for s, e, sym in zip(starts, ends, symbols, strict=True)]
    word_list = []
    for k, (t, w) in enumerate(words):
        nxt = words[k + 1][0] if k + 1 < len(words) else duration
        spoken = [p.end for p in phonemes if t <= p.start < nxt and not p.is_pause]
        word_list.append(Word(t, max(spoken) if spoken else nxt, w))
    return Speech(pcm, sample_rate, phonemes, word_list, sentences)
