import threading

import numpy as np
import pytest

from avatar_forcing.audio import tts
from avatar_forcing.errors import InputError

TEXT = "Hello there, how are you today? Ha ha ha!"


@pytest.fixture(scope="module")
def speech() -> tts.Speech:
    return tts.synthesize(TEXT)


def test_audio_is_16k_and_not_silent(speech):
    assert speech.sample_rate == 16000 and speech.pcm.dtype == np.float32 and speech.pcm.ndim == 1
    assert 1.0 < speech.duration < 6.0
    assert np.abs(speech.pcm).max() <= 1.0
    assert np.sqrt(np.mean(speech.pcm ** 2)) > 0.02


def test_phoneme_events_are_ordered_and_inside_the_audio(speech):
    ph = speech.phonemes
    assert len(ph) > 15
    starts = [p.start for p in ph]
    assert starts == sorted(starts)
    assert all(0.0 <= p.start <= p.end <= speech.duration + 1e-6 for p in ph)
    spoken = [p for p in ph if not p.is_pause]
    assert {"h", "l"} <= {p.symbol for p in spoken}
    # spoken phonemes sit on loud audio: mean energy inside them exceeds the whole file's
    stressed = [p for p in spoken if "'" in p.symbol]
    inside = np.concatenate([speech.pcm[int(p.start * 16000):int(p.end * 16000)] for p in stressed])
    assert np.mean(inside ** 2) > np.mean(speech.pcm ** 2)


def test_words(speech):
    expected = ["Hello", "there", "how", "are", "you", "today", "Ha", "ha", "ha"]
    assert [w.text for w in speech.words] == expected
    assert all(w.start < w.end for w in speech.words)
    assert [w.start for w in speech.words] == sorted(w.start for w in speech.words)
    assert len(speech.sentences) == 2


def test_deterministic_across_calls():
    a = tts.synthesize(TEXT, voice="en+f3")
    tts.synthesize("Something else in between, to move eSpeak's internal state.", rate=220, pitch=80)
    b = tts.synthesize(TEXT, voice="en+f3")
    assert np.array_equal(a.pcm, b.pcm) and a.phonemes == b.phonemes and a.words == b.words


def test_voices_variants_and_parameters():
    assert {"en", "en-us", "en-gb", "fr"} <= set(tts.voices())
    assert {"f3", "m2", "klatt"} <= set(tts.variants())
    slow = tts.synthesize("This is a test sentence.", rate=120)
    fast = tts.synthesize("This is a test sentence.", rate=300)
    assert fast.duration < 0.7 * slow.duration
    low = tts.synthesize("aaah", voice="en-us+m2", pitch=20)
    high = tts.synthesize("aaah", voice="en-gb+f3", pitch=90)
    assert not np.array_equal(low.pcm[:1000], high.pcm[:1000])


def test_thread_safe():
    texts = [f"Sentence number {i} is spoken now." for i in range(4)]
    serial = [tts.synthesize(t).pcm for t in texts]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, tts.synthesize(texts[i]).pcm))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(results[i], serial[i]) for i in range(4))


@pytest.mark.parametrize("kwargs", [dict(text=""), dict(text="   "), dict(text="hi", voice="xx-nope"),
                                    dict(text="hi", voice="en+nope"), dict(text="hi", rate=5),
                                    dict(text="hi", pitch=101)])
def test_errors(kwargs):
    with pytest.raises(InputError):
        tts.synthesize(**kwargs)
