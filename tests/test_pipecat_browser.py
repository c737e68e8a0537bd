"""The Pipecat example bot (examples/pipecat_bot.py) in a real browser: Debian's Chromium, headless, its
fake camera and microphone reading files (a nodding face; silence, then the user speaking, then silence).

One conversation: the bot greets, the user barges in while the avatar speaks, the avatar stops at once
and listens, the user stops, the avatar answers. The bot stamps each frame's index into a corner of the
picture, so the page can tell which generated frame it presents and when. Measured (printed, and in
docs/INTEGRATIONS.md): time to first frame, unique frames per second, the A/V offset as presented
(the received voice's loudness against the loudness the bot sent with each frame) and the time from
the user's speech reaching the bot to the first presented frame with the mouth closed.

Skipped without the `pipecat` extra or without chromium + chromedriver (.ci/run installs both).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pipecat", reason="the Pipecat integration needs the extra: "
                                      "pip install 'avatar-forcing[pipecat]' (.ci/run installs it)")

from tests.browser_util import (  # noqa: E402
    CHROMIUM_FLAGS,
    ServerThread,
    find_browser,
    user_face_frames,
    write_wav,
    write_y4m,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
BROWSER = find_browser()
if BROWSER is None:
    pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver; "
                ".ci/run does it)", allow_module_level=True)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pipecat_bot.py"
OUT = Path("out")
USER_SPEECH_AT_S = 6.0  # into the microphone file: a few seconds into the avatar's greeting
USER_TEXT = "Wait, wait, I really have to tell you about my trip to the mountains last week."
CLOSED = 0.1  # jawOpen below this is a closed mouth
SPEECH_RMS = 0.01  # microphone chunks louder than this are the user speaking
# The voice is judged silent from this long after the mouth closed: the receiver's jitter buffer may still
# play the greeting's last packets (on a loaded machine they were heard up to ~0.3 s after the picture).
VOICE_SETTLE_S = 0.5
MIN_UNIQUE_FPS = 2.0  # below this the avatar is a slide show, whatever the load

# Per presented avatar frame: wall time (ms) it is due on screen and the index stamped in its corner;
# per 512-sample block of the received voice through Web Audio: wall time (ms) and RMS (Web Audio adds
# ~0.1 s of its own, so the A/V offset uses the WebRTC receiver's playout times and levels instead).
METER_JS = """
const m = window.meter = { frames: [], audio: [], played: [], errors: [] };
const video = document.getElementById('avatar');
const canvas = document.createElement('canvas');
const g = canvas.getContext('2d', { willReadFrequently: true });
function onFrame(now, meta) {
  try {
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      const c = Math.max(6, Math.floor(Math.min(w, h) / 40));
      canvas.width = 8 * c; canvas.height = 2 * c;
      g.drawImage(video, 0, 0, 8 * c, 2 * c, 0, 0, 8 * c, 2 * c);
      const px = g.getImageData(0, 0, 8 * c, 2 * c).data;
      let v = 0;
      for (let bit = 0; bit < 16; bit++) {
        const y = (bit >> 3) * c + (c >> 1), x = (bit & 7) * c + (c >> 1), i = (y * 8 * c + x) * 4;
        v = (v << 1) | ((px[i] + px[i + 1] + px[i + 2]) / 3 > 128 ? 1 : 0);
      }
      m.frames.push([performance.timeOrigin + meta.expectedDisplayTime, v]);
    }
  } catch (e) { m.errors.push(String(e)); }
  video.requestVideoFrameCallback(onFrame);
}
video.requestVideoFrameCallback(onFrame);
// The voice as WebRTC plays it out: the receiver's level of the newest frame delivered to the track,
// with its delivery time (polled every 5 ms; the delivery timestamps are what count).
setInterval(() => {
  const pc = window.avatarApp.pc;
  if (!pc) return;
  for (const r of pc.getReceivers()) {
    if (r.track.kind !== 'audio') continue;
    for (const s of r.getSynchronizationSources()) {
      const last = m.played[m.played.length - 1];
      if (!last || last[0] !== s.timestamp) m.played.push([s.timestamp, s.audioLevel || 0, Date.now()]);
    }
  }
}, 5);
const timer = setInterval(() => {
  const app = window.avatarApp;
  if (!app.remote || !app.remote.getAudioTracks().length) return;
  clearInterval(timer);
  const ac = new AudioContext();
  const source = ac.createMediaStreamSource(new MediaStream([app.remote.getAudioTracks()[0]]));
  const tap = ac.createScriptProcessor(512, 1, 1);
  tap.onaudioprocess = (e) => {
    const d = e.inputBuffer.getChannelData(0);
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i] * d[i];
    const ts = ac.getOutputTimestamp();
    const t = performance.timeOrigin + ts.performanceTime + (e.playbackTime - ts.contextTime) * 1000;
    m.audio.push([t, Math.sqrt(s / d.length)]);
  };
  const mute = ac.createGain();
  mute.gain.value = 0;
  source.connect(tap); tap.connect(mute); mute.connect(ac.destination);
  ac.resume();
}, 50);
"""


def load_example():
    spec = importlib.util.spec_from_file_location("pipecat_bot", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def media_files():
    from avatar_forcing.audio.tts import synthesize

    folder = Path(tempfile.mkdtemp(prefix="avatar-pipecat-"))
    write_y4m(folder / "user.y4m", user_face_frames(seconds=2.0))
    speech = np.asarray(synthesize(USER_TEXT).pcm, np.float32)
    silence = lambda s: np.zeros(int(s * 16000), np.float32)
    write_wav(folder / "user.wav", np.concatenate([silence(USER_SPEECH_AT_S), speech, silence(30)]))
    yield folder, len(speech) / 16000
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()


@pytest.fixture
def browser(media_files):
    from selenium import webdriver

    folder, _ = media_files
    chromium, chromedriver = BROWSER
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.TemporaryDirectory(prefix="avatar-chromium-")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile.name}")
    options.add_argument(f"--use-file-for-fake-video-capture={folder / 'user.y4m'}")
    options.add_argument(f"--use-file-for-fake-audio-capture={folder / 'user.wav'}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    profile.cleanup()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def peak(values: np.ndarray) -> float:
    return float(values.max()) if values.size else float("nan")


def av_offset_ms(frames: np.ndarray, audio: np.ndarray, sent_rms: dict[int, float]) -> tuple[float, float]:
    """The lag (ms, + = voice after picture) that best lines up the received voice's loudness with the
    loudness the bot sent with each presented frame, and the correlation there."""
    t_frames = frames[:, 0]
    sent = np.array([sent_rms.get(int(i), 0.0) for i in frames[:, 1]])
    keep = np.r_[True, np.diff(frames[:, 1]) != 0]  # each generated frame once (repeats carry old audio)
    t_frames, sent = t_frames[keep], sent[keep]
    order = np.argsort(audio[:, 0])
    t_audio, rms = audio[order, 0], audio[order, 1]
    best = (0.0, -1.0)
    for lag in np.arange(-400.0, 400.0, 5.0):
        heard = np.interp(t_frames + 20.0 + lag, t_audio, rms)  # +20: the middle of the frame's 40 ms
        if heard.std() > 0 and sent.std() > 0:
            corr = float(np.corrcoef(heard, sent)[0, 1])
            if corr > best[1]:
                best = (float(lag), corr)
    return best


def onset_offsets_ms(frames: np.ndarray, audio: np.ndarray, records: list) -> list[float]:
    """At each speech onset (a loud frame after >= 0.3 s of silence): when the voice got loud in the
    browser minus when the picture pushed with that voice was presented (+ = voice late). The picture's
    time comes from its neighbours that were generated in time (pushed 40 ms apart, shown once each)."""
    first_shown: dict[int, float] = {}
    for when, stamp_index in frames:
        first_shown.setdefault(int(stamp_index), float(when))
    by_index = {r.index: r for r in records}
    out = []
    for rec in records:
        quiet = [by_index.get(i) for i in range(rec.index - 8, rec.index)]
        if rec.onset_s is None or any(r is None or r.speaking for r in quiet):  # speech after silence
            continue
        own = [by_index[i] for i in range(rec.index - 10, rec.index + 11)
               if i in by_index and by_index[i].shown == i and i in first_shown]
        if not own:
            continue
        t_frame = float(np.median([first_shown[r.index] + (rec.index - r.index) * 40.0 for r in own]))
        t_sent = t_frame + rec.onset_s * 1000.0
        window = (audio[:, 0] > t_sent - 400) & (audio[:, 0] < t_sent + 600) & (audio[:, 1] > 0.01)
        if window.any():
            out.append(float(audio[window, 0].min() - t_sent))
    return out


def test_pipecat_bot_talks_listens_and_stops_when_interrupted(browser, media_files):
    from avatar_forcing.integrations.pipecat import AvatarServiceConfig

    _, user_speech_s = media_files
    example = load_example()
    cfg = example.BotConfig(nfe=4, output_size=320, block_size=5, threads=1, max_bots=1,
                            avatar=AvatarServiceConfig(stamp_frames=True, playout_delay_s=0.8))
    server = example.BotServer(cfg)
    with ServerThread(server) as srv:
        # The fake microphone has no echo path, as with headphones: the page's "headphones" mode turns the
        # browser's echo canceller off (with it on, the VAD heard a barge-in 0.7-2.2 s late in ~1/3 of runs)
        browser.get(srv.url + "?headphones")
        browser.execute_script(METER_JS)
        browser.find_element("id", "connect").click()
        wait_until(lambda: browser.execute_script("return avatarApp.firstFrame"), 30, "the first frame")
        bot = server.bots[0]
        agent = bot.agent.processors[1]
        wait_until(lambda: agent.events.interruptions, 30, "the user barging in")
        wait_until(lambda: agent.events.user_stopped, 30, "the end of the user's turn")
        time.sleep(5.0)  # the avatar answers
        meter = browser.execute_script("return window.meter")
        app = browser.execute_script("return {start: avatarApp.connectStart, first: avatarApp.firstFrame,"
                                     " error: avatarApp.error, origin: performance.timeOrigin}")
        OUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUT / "pipecat_browser.png"))
        stats, events = bot.avatar.stats, agent.events
        records = list(stats.frames)
        runner_stats = bot.avatar.runner.stats

    assert app["error"] is None and not meter["errors"]
    frames, audio = np.array(meter["frames"], float), np.array(meter["audio"], float)
    played = np.array(meter["played"], float)
    assert len(frames) > 100 and len(audio) > 100 and len(played) > 100
    if abs(played[-1, 0] - played[-1, 2]) > 60_000:  # delivery times on the page's clock, not the epoch
        played[:, 0] += app["origin"]
    played = played[:, :2]
    by_index = {r.shown: r for r in records}
    sent_rms = {r.index: r.rms for r in records}
    valid = np.array([int(i) in by_index for i in frames[:, 1]])
    assert valid.mean() > 0.95  # the stamps are read back: the page shows the bot's frames
    frames = frames[valid]
    jaw = np.array([by_index[int(i)].jaw_open for i in frames[:, 1]])
    t = frames[:, 0] / 1000.0  # wall clock, seconds

    # 1. time to first frame: from pressing Connect (camera and microphone granted) to a frame on screen
    ttff = (app["first"] - app["start"]) / 1000.0
    # 2. unique frames per second over the conversation's steady part (after the first 2 s)
    steady = t > t[0] + 2.0
    unique_fps = len(np.unique(frames[steady, 1])) / (t[steady][-1] - t[steady][0])
    # 3. A/V offset as presented
    offset_ms, corr = av_offset_ms(frames, played, sent_rms)
    onsets = onset_offsets_ms(frames, played, records)
    webaudio_onsets = onset_offsets_ms(frames, audio, records)
    # 4. barge-in: the user's speech reaches the bot -> the first presented frame with the mouth closed
    mic = np.array(stats.user_audio)  # (arrival, rms) per 20 ms chunk; speech = 3 loud chunks in a row
    loud = mic[:, 1] > SPEECH_RMS
    onset = float(mic[next(i for i in range(len(mic) - 2) if loud[i:i + 3].all()), 0])
    print(f"user speech reached the bot {onset - stats.started:.2f} s into the session, first loud chunk "
          f"{mic[np.argmax(loud), 0] - stats.started:.2f} s, interruption "
          f"{events.interruptions[0] - stats.started:.2f} s")
    # the mouth is closed from the first frame after which it stays closed (between two syllables it
    # closes for a frame or two while still talking)
    closed_at = next((t[i] for i in range(len(t))
                      if t[i] > onset and (jaw[i:][t[i:] < t[i] + 0.6] < CLOSED).all()), np.inf)
    barge_in_s = closed_at - onset
    vad_s = events.interruptions[0] - onset  # the agent's VAD deciding it is a barge-in
    avatar_s = closed_at - events.interruptions[0]  # the interruption -> a closed mouth on screen
    greeting = (t > t[0] + 1.0) & (t < onset)
    listening = (t > closed_at) & (t < events.user_stopped[0])
    reply_start = events.replies[-1][0]
    reply = t > reply_start + cfg.avatar.playout_delay_s + 0.3
    audio_t = audio[:, 0] / 1000.0
    heard_listening = audio[(audio_t > closed_at + VOICE_SETTLE_S) & (audio_t < events.user_stopped[0]), 1]
    heard_reply = audio[audio_t > reply_start + cfg.avatar.playout_delay_s + 0.3, 1]

    print(f"\npipecat bot in Chromium: time to first frame {ttff:.2f} s, unique fps {unique_fps:.1f}, "
          f"A/V offset at speech onsets {[round(x) for x in onsets]} ms (through Web Audio "
          f"{[round(x) for x in webaudio_onsets]}), loudness cross-correlation "
          f"{offset_ms:+.0f} ms (r {corr:.2f}), barge-in to mouth closed "
          f"{barge_in_s * 1000:.0f} ms (VAD {vad_s * 1000:.0f} ms, avatar {avatar_s * 1000:.0f} ms); "
          f"jawOpen greeting max {peak(jaw[greeting]):.2f}, listening max {peak(jaw[listening]):.2f} over "
          f"{listening.sum()} frames, reply max {peak(jaw[reply]):.2f}; repeated {stats.repeated}, "
          f"skipped {runner_stats.skipped}, tracked {runner_stats.tracked}, "
          f"last block {runner_stats.step_ms:.0f} ms")
    sent = np.array([(r.time, r.shown) for r in records])
    sent_fps = len(np.unique(sent[sent[:, 0] > t[0] + 2.0, 1])) / (sent[-1, 0] - t[0] - 2.0)
    print(f"sent: {len(records)} frames, unique fps {sent_fps:.1f}; presented {len(frames)} frames over "
          f"{t[-1] - t[0]:.1f} s")
    assert ttff < 10.0
    # The picture keeps changing (not a frozen frame); the rate itself is a performance figure: ~18 fps
    # presented on a quiet 2-core machine, far less when other work shares the cores, so it is reported.
    assert unique_fps > MIN_UNIQUE_FPS
    if unique_fps < 12:
        print(f"WARNING: {unique_fps:.1f} unique fps presented (a busy machine?)")
    # Sync over the whole run (loudness cross-correlation) is asserted; a single speech onset is one
    # sample of the receiver's jitter buffer (once in about ten runs it read +470 ms): reported, and
    # asserted only when there are several onsets to take a median over.
    assert abs(offset_ms) < 150  # onsets can be missed entirely when the receiver's stats lag
    if len(onsets) >= 3:
        assert abs(float(np.median(onsets))) < 150
    elif onsets and abs(float(np.median(onsets))) >= 150:
        print(f"WARNING: A/V offset at the only speech onset(s) {onsets} ms")
    # the avatar spoke the greeting, stopped at once when the user barged in, listened, then answered
    assert jaw[greeting].max() > 0.2 and jaw[greeting].std() > 0.03
    # The target is 0.5 s from barge-in to a closed mouth: 0.35-0.47 s here (VAD 0.23-0.25 s, the
    # avatar 0.11-0.22 s), but the avatar's part once took 0.8 s in a fresh-clone CI run, so the assertion
    # leaves room for a loaded machine and the figures are printed (docs/INTEGRATIONS.md).
    assert avatar_s <= 1.0 and barge_in_s <= 1.0
    if barge_in_s > 0.5:
        print(f"WARNING: barge-in to mouth closed took {barge_in_s:.2f} s (VAD {vad_s:.2f} s, avatar "
              f"{avatar_s:.2f} s): over the 0.5 s target")
    assert listening.sum() > 25 and np.quantile(jaw[listening], 0.95) < CLOSED
    assert heard_listening.size and np.quantile(heard_listening, 0.95) < 0.01  # silent while listening
    assert jaw[reply].max() > 0.2 and heard_reply.max() > 0.02
    assert runner_stats.tracked > 10  # the user's camera reached the engine
