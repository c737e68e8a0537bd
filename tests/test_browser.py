"""The web page in a real browser: Debian's Chromium (headless, Selenium) with fake media read from files.

Chromium's fake camera plays a y4m of a real face (the astronaut photo, nodding) and its fake
microphone a wav of eSpeak NG speech. The tests:
  * the page and its plumbing, with the fast test engine: connection, decoded frames at a measured
    fps, audio arriving, the latency readout, the busy message;
  * the token flow (the page asks, keeps it for the tab, reloads the portraits), the preview, the
    progress state until the first frame and a clean page after Stop;
  * the same page with a busy process beside the server (frames keep coming; fps reported);
  * the real avatar (the default model): the mouth moves while typed text is spoken and the motion
    changes when the user speaks. Skipped while no default model is installed.
Both save a screenshot to out/.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from avatar_forcing.motion.vector import POSE_SLICE, idx
from avatar_forcing.serve.app import Server, default_engine_factory
from tests.browser_util import (
    CHROMIUM_FLAGS,
    ServerThread,
    find_browser,
    user_face_frames,
    user_speech,
    write_wav,
    write_y4m,
)
from tests.serve_fakes import FakeEngine, make_config

pytestmark = pytest.mark.browser
BROWSER = find_browser()
if BROWSER is None:
    pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver; "
                ".ci/run does it)", allow_module_level=True)

OUT = Path("out")
STATS_JS = """
const done = arguments[arguments.length - 1];
const pc = window.avatarApp.pc;
if (!pc) { done(null); return; }
pc.getStats().then((report) => {
  const out = {};
  report.forEach((s) => { if (s.type === 'inbound-rtp') out[s.kind] = s; });
  done(out);
});
"""


@pytest.fixture(scope="module")
def media_files():
    folder = Path(tempfile.mkdtemp(prefix="avatar-browser-"))
    write_y4m(folder / "user.y4m", user_face_frames(seconds=2.0))
    write_wav(folder / "user.wav", user_speech())
    yield folder
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()


@pytest.fixture
def browser(media_files):
    from selenium import webdriver

    chromium, chromedriver = BROWSER
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.TemporaryDirectory(prefix="avatar-chromium-")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile.name}")
    options.add_argument(f"--use-file-for-fake-video-capture={media_files / 'user.y4m'}")
    options.add_argument(f"--use-file-for-fake-audio-capture={media_files / 'user.wav'}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.set_script_timeout(10)
    yield driver
    driver.quit()
    profile.cleanup()


def app_value(driver, expr: str):
    return driver.execute_script(f"return window.avatarApp.{expr};")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def measure_decoded_fps(driver, seconds: float = 2.0) -> float:
    """Avatar frames decoded per second, from the browser's own WebRTC statistics."""
    first = driver.execute_async_script(STATS_JS)["video"]
    time.sleep(seconds)
    last = driver.execute_async_script(STATS_JS)["video"]
    elapsed_s = (last["timestamp"] - first["timestamp"]) / 1000
    return (last["framesDecoded"] - first["framesDecoded"]) / elapsed_s


def open_page(driver, url: str) -> None:
    driver.get(url)
    wait_until(lambda: driver.execute_script("return document.getElementById('portrait').options.length"),
               10, "the portrait list")


def start_session(driver, url: str) -> None:
    open_page(driver, url)
    driver.find_element("id", "start").click()
    wait_until(lambda: app_value(driver, "state") == "connected" or app_value(driver, "error"),
               20, "the WebRTC connection")
    assert app_value(driver, "state") == "connected", app_value(driver, "error")


def test_page_streams_in_chromium(browser):
    cfg = make_config(max_sessions=1, size=512)
    server = Server(cfg, lambda portrait: FakeEngine(portrait, cfg.size))
    with ServerThread(server) as srv:
        start_session(browser, srv.url)
        wait_until(lambda: app_value(browser, "videoFrames") > 60, 15, "avatar frames decoded")
        fps = wait_until(lambda: app_value(browser, "fps"), 5, "a measured fps")
        decoded_fps = measure_decoded_fps(browser)
        stats = browser.execute_async_script(STATS_JS)
        browser.find_element("id", "say-text").send_keys("Hello there, nice to meet you.")
        browser.find_element("id", "say").click()
        wait_until(lambda: (app_value(browser, "stats") or {}).get("e2e_ms_p50"), 10, "a latency figure")
        time.sleep(1.0)
        latency_text = browser.find_element("id", "latency").text
        server_stats = srv.call(lambda: next(iter(server.manager.sessions.values())).stats())
        OUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUT / "browser_screenshot_plumbing.png"))
        # a second page while the only slot is taken: the busy message
        browser.execute_script("window.open('about:blank')")
        first = browser.window_handles[0]
        browser.switch_to.window(browser.window_handles[1])
        open_page(browser, srv.url)
        browser.find_element("id", "start").click()
        busy = wait_until(lambda: app_value(browser, "error"), 10, "the busy message")
        browser.close()
        browser.switch_to.window(first)

    print(f"browser fps: presented {fps:.1f}, decoded {decoded_fps:.1f}; "
          f"audio bytes {stats['audio']['bytesReceived']}, latency {latency_text}")
    # frames flow at a video rate (exact fps is a benchmark figure, not a test: the CPU is shared)
    assert fps > 5 and 5 < decoded_fps < 40
    assert stats["video"]["framesDecoded"] > 60
    assert stats["audio"]["bytesReceived"] > 0
    assert latency_text.endswith("ms")
    assert server_stats["user_audio_frames"] > 0 and server_stats["user_video_frames"] > 0
    assert server_stats["jaw_open_std"] > 0.01  # the typed text was spoken (the fake jaw follows loudness)
    assert "busy" in busy


def test_token_flow_preview_progress_and_stop_in_chromium(browser):
    cfg = make_config(max_sessions=1, size=512, token="s3cret")
    server = Server(cfg, lambda portrait: FakeEngine(portrait, cfg.size))
    with ServerThread(server) as srv:
        browser.get(srv.url)
        # without a token the portrait list fails (401): the page asks for one
        wait_until(lambda: app_value(browser, "needsToken"), 10, "the token form")
        assert browser.find_element("id", "token-form").is_displayed()
        assert browser.execute_script("return document.getElementById('portrait').options.length") == 0
        browser.find_element("id", "token").send_keys("s3cret")
        browser.find_element("id", "token-use").click()
        wait_until(lambda: app_value(browser, "portraitsLoaded"), 10, "the portraits, reloaded")
        assert not browser.find_element("id", "token-form").is_displayed()
        wait_until(lambda: browser.execute_script(
            "const p = document.getElementById('preview'); return p.complete && p.naturalWidth > 0"),
            10, "the portrait preview")
        browser.find_element("id", "start").click()
        progress = wait_until(lambda: app_value(browser, "progress"), 10, "a progress message")
        wait_until(lambda: app_value(browser, "live"), 20, "the first avatar frame")
        assert app_value(browser, "progress") == ""
        assert not browser.find_element("id", "preview").is_displayed()
        wait_until(lambda: app_value(browser, "stats"), 10, "live figures")
        step_text = wait_until(lambda: browser.find_element("id", "step").text.strip("–"), 5, "the step")
        browser.find_element("id", "say-text").send_keys("Hello there, nice to meet you.")
        browser.find_element("id", "say").click()
        wait_until(lambda: "on" in browser.find_element("id", "avatar-speaking").get_attribute("class"),
                   10, "the speaking badge")
        browser.find_element("id", "stop").click()
        wait_until(lambda: app_value(browser, "state") == "closed", 5, "the page to stop")
        after = browser.execute_script("""
            const on = [...document.querySelectorAll('.badge.on')].length;
            const figures = ['latency', 'latency-p95', 'fps', 'step', 'av'].map(
                (id) => document.getElementById(id).textContent);
            return {on, figures, video: document.getElementById('avatar').srcObject,
                    progress: document.getElementById('progress').hidden};""")
        gone = wait_until(lambda: srv.call(lambda: not server.manager.sessions), 10, "the session to end")
        # the token is kept for the tab: a reload needs no new prompt
        browser.refresh()
        wait_until(lambda: app_value(browser, "portraitsLoaded"), 10, "the portraits after a reload")
        needs_token = app_value(browser, "needsToken")
        stored = browser.execute_script("return sessionStorage.getItem('avatar-forcing-token')")
    print(f"progress message: {progress!r}; step shown: {step_text!r}")
    assert after["on"] == 0 and set(after["figures"]) == {"–"}
    assert after["video"] is None and after["progress"] and gone
    assert not needs_token and stored == "s3cret"


def test_page_streams_beside_a_busy_process(browser):
    from avatar_forcing.eval.bench_serve import BackgroundLoad

    cfg = make_config(max_sessions=1, size=512)
    server = Server(cfg, lambda portrait: FakeEngine(portrait, cfg.size))
    with ServerThread(server) as srv, BackgroundLoad(1):
        start_session(browser, srv.url)
        wait_until(lambda: app_value(browser, "videoFrames") > 50, 20, "avatar frames decoded")
        decoded_fps = measure_decoded_fps(browser, seconds=3.0)
        stats = srv.call(lambda: next(iter(server.manager.sessions.values())).stats())
    print(f"beside a busy process: decoded {decoded_fps:.1f} fps, server unique {stats['unique_fps']} fps, "
          f"e2e p50 {stats['e2e_ms_p50']:.0f} ms, A/V p95 {stats['av_offset_ms_p95']:.0f} ms, "
          f"step {stats['step_name']}")
    assert decoded_fps > 5 and stats["video_repeated"] == 0  # frames flow; none is ever a repeat


def real_engine_or_skip(cfg):
    from avatar_forcing.errors import AvatarForcingError
    from avatar_forcing.stream.options import SessionOptions
    from avatar_forcing.stream.session import load_engine_model

    try:
        load_engine_model(None, None, None, SessionOptions())
        import avatar_forcing.motion.renderer  # noqa: F401
    except (AvatarForcingError, ImportError) as exc:
        pytest.skip(f"the real avatar needs the default model and renderer: {exc}")
    return default_engine_factory(cfg)


def test_real_avatar_talks_and_reacts_in_chromium(browser):
    cfg = make_config(max_sessions=1, size=512, playout_delay_s=0.8)
    server = Server(cfg, real_engine_or_skip(cfg))
    jaw, window = idx("jawOpen"), 50

    def recent_motion(n: int = window) -> np.ndarray:
        session = next(iter(server.manager.sessions.values()))
        return np.asarray(list(session.metrics.motion)[-n:])

    with ServerThread(server) as srv:
        start_session(browser, srv.url)
        # 1) the user is silent (mic muted), the avatar is silent: a baseline
        browser.execute_script("window.avatarApp.local.getAudioTracks()[0].enabled = false;")
        wait_until(lambda: app_value(browser, "videoFrames") > 50, 20, "avatar frames decoded")
        time.sleep(3.0)
        quiet = srv.call(recent_motion)
        # 2) the user speaks (mic on): the avatar should react
        browser.execute_script("window.avatarApp.local.getAudioTracks()[0].enabled = true;")
        time.sleep(3.0)
        listening = srv.call(recent_motion)
        browser.execute_script("window.avatarApp.local.getAudioTracks()[0].enabled = false;")
        # 3) the avatar speaks typed text: the mouth moves
        browser.find_element("id", "say-text").send_keys("Hello! It is really nice to talk with you today.")
        browser.find_element("id", "say").click()

        def mouth_moving() -> bool:  # under load the speech reaches the frames after a backlog
            recent = srv.call(recent_motion)
            return len(recent) > 0 and float(recent[:, jaw].max()) > 0.15

        wait_until(mouth_moving, 30, "the avatar's mouth moving with the typed text")
        time.sleep(2.0)  # the speech onset was just seen: let the window fill with speaking frames
        talking = srv.call(recent_motion)
        fps = measure_decoded_fps(browser)
        stats = browser.execute_async_script(STATS_JS)
        latency = srv.call(lambda: next(iter(server.manager.sessions.values())).stats())["e2e_ms_p50"]
        OUT.mkdir(exist_ok=True)
        browser.save_screenshot(str(OUT / "browser_screenshot.png"))

    pose_shift = np.abs(listening[:, POSE_SLICE].mean(0) - quiet[:, POSE_SLICE].mean(0)).max()
    print(f"fps {fps:.1f}, e2e p50 {latency:.0f} ms, jawOpen std quiet {quiet[:, jaw].std():.3f} "
          f"talking {talking[:, jaw].std():.3f}, pose shift on user speech {pose_shift:.4f}")
    assert fps > 5 and stats["audio"]["bytesReceived"] > 0  # 2 shared cores: frames arrive, not 25 fps
    assert latency is not None and latency > 0
    assert talking[:, jaw].std() > 2 * quiet[:, jaw].std() and talking[:, jaw].max() > 0.15
    # the user's voice changes what the avatar does (many of the 58 channels never move: look at the largest)
    assert np.abs(listening - quiet).max() > 5e-3 and pose_shift > 1e-3
