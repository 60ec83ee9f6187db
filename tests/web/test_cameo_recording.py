"""Recording a cameo in the browser: headless Chromium films a turning head saying the challenge
digits through its fake camera and microphone (fed from files built here), MediaRecorder makes
the WebM, the page uploads it, a real CPU worker checks it, and the page shows the verdict."""

from __future__ import annotations

import shutil
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from cameos.consent import NOTICE_VERSION
from cameos.models import Cameo, LivenessCheck
from tests.cameos.recordings import (
    AUDIO_RATE,
    RecordingSpec,
    heard_correctly,
    render_frames,
    spoken_digits,
    through_codec,
)
from tests.conftest import LiveStack, Member
from tests.web.conftest import sign_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# The page records 8 s. The files hold a still, silent face for LEAD_SECONDS (a recorder that
# starts late on a busy machine still gets the whole challenge), then the 5 s challenge, then
# the face still again (the camera file would loop, and a second turn is a different answer)
# while the microphone falls silent.
LEAD_SECONDS = 1.5
CLIP_SECONDS = 5.0
HOLD_SECONDS = 3.0


def _write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> None:
    height, width = frames[0].shape[:2]
    with path.open("wb") as output:
        output.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            output.write(b"FRAME\n")
            for plane, (plane_width, plane_height) in zip(
                frame.planes, ((width, height), (width // 2, height // 2),
                               (width // 2, height // 2)), strict=True,
            ):
                rows = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
                output.write(rows[:plane_height, :plane_width].tobytes())


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture
def filmed_browser(
    tmp_path: Path, live_stack: LiveStack, alice: Member
) -> Iterator[tuple[webdriver.Chrome, dict[str, object]]]:
    """A Chromium whose camera and microphone play alice answering her open challenge."""
    started = httpx.post(
        f"{live_stack.url}/api/cameos/registrations",
        headers={"Authorization": f"Bearer {alice.key}"},
        json={"notice_version": NOTICE_VERSION, "agreed": True}, timeout=30,
    )
    assert started.status_code == 201, started.text
    challenge = started.json()["challenge"]
    spec = heard_correctly(
        RecordingSpec(digits="".join(challenge["digits"]), turns=tuple(challenge["turns"]),
                      seconds=CLIP_SECONDS),
        audio_round_trip=lambda samples: through_codec(samples, "libopus", "webm"),
    )
    camera, microphone = tmp_path / "camera.y4m", tmp_path / "microphone.wav"
    frames = list(render_frames(spec, round(spec.seconds * spec.fps)))
    frames = [frames[0]] * round(LEAD_SECONDS * spec.fps) + frames
    frames += [frames[-1]] * round(HOLD_SECONDS * spec.fps)
    _write_y4m(camera, frames, spec.fps)
    speech = spoken_digits(spec)
    quiet = speech[: round(0.3 * AUDIO_RATE)]  # the noise floor before the first word
    lead = np.tile(quiet, int(np.ceil(LEAD_SECONDS / 0.3)))[: round(LEAD_SECONDS * AUDIO_RATE)]
    _write_wav(microphone, np.concatenate([lead, speech]), AUDIO_RATE)

    profile = tempfile.mkdtemp(prefix="chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--no-first-run", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1200,900",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        f"--use-file-for-fake-audio-capture={microphone}%noloop",
    ):
        options.add_argument(flag)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver, challenge
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_cameo_recorded_in_the_browser_is_verified_live(
    live_stack: LiveStack, alice: Member,
    filmed_browser: tuple[webdriver.Chrome, dict[str, object]],
) -> None:
    browser, challenge = filmed_browser
    sign_in(browser, live_stack, "alice")
    browser.get(f"{live_stack.url}/cameo/")
    assert browser.find_element(By.ID, "challenge").get_attribute("data-challenge-id") == (
        challenge["id"]
    )

    browser.find_element(By.ID, "record").click()

    def settled(driver: webdriver.Chrome) -> bool:
        """The page reloaded with the verdict, or the recording or upload failed."""
        verdict = driver.find_elements(By.ID, "status-text")
        errors = driver.find_elements(By.ID, "record-error")
        return bool(
            (verdict and verdict[0].text in ("verified", "failed"))
            or (errors and errors[0].text)
        )

    # The page reloads when the verdict arrives: an element read as it goes is stale, so look again.
    WebDriverWait(browser, 150, ignored_exceptions=(StaleElementReferenceException,)).until(
        settled
    )
    assert not [error.text for error in browser.find_elements(By.ID, "record-error")
                if error.text]
    check = LivenessCheck.objects.get(cameo__owner=alice.user)
    assert browser.find_element(By.ID, "status-text").text == "verified", check.failures
    assert Cameo.objects.get(owner=alice.user).status == Cameo.Status.VERIFIED
    assert browser.find_elements(By.ID, "settings-form")
