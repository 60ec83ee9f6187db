"""The liveness check on real recordings: a 3D head rendered from a package photo, digits spoken
by eSpeak NG, encoded with PyAV. The face engine and the recogniser are the real ones.

Each clip is built once per session (tests/cameos/recordings.py); most are 3 s at 640x360,
which is all their point needs. The accepted recording is the realistic one: 5 s, 720p, 30 fps.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from cameos.faces import DetectedFace, get_engine
from cameos.liveness import (
    ContainerLimits,
    FailureCode,
    LivenessResult,
    RefusalCode,
    check_digits,
    check_liveness,
    motion,
    open_recording,
)
from tests.cameos.recordings import (
    T1_DAVID,
    RecordingSpec,
    build_recording,
    plain_clip,
    speak_digits,
    speak_words,
    webm_clip,
    with_display_rotation,
)

CHALLENGE_DIGITS = "471"
CHALLENGE_TURNS = ["left", "right"]
SHORT = RecordingSpec(seconds=3.0)


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


def clip(recordings: Path, spec: RecordingSpec = SHORT, **changes: object) -> Path:
    return build_recording(recordings, RecordingSpec(**{**spec.__dict__, **changes}))


def check(path: Path, **options: object) -> LivenessResult:
    return check_liveness(path, CHALLENGE_DIGITS, CHALLENGE_TURNS, **options)  # type: ignore[arg-type]


def messages(result: LivenessResult) -> dict[str, str]:
    return {failure.code: failure.message for failure in result.failures}


def test_it_accepts_a_turning_head_saying_the_digits(recordings: Path) -> None:
    path = clip(recordings, RecordingSpec(seconds=5.0, width=1280, height=720, fps=30))
    stages: list[tuple[int, str]] = []

    result = check(path, progress=lambda percent, stage: stages.append((percent, stage)))

    assert result.failures == ()
    assert result.is_live
    assert result.digits_heard == "471"
    assert result.turns_seen == ("left", "right")
    engine = get_engine()
    assert result.engine_id == engine.id
    assert 3 <= len(result.references) <= 5
    for reference in result.references:
        assert reference.image.shape == (256, 256, 3)
        assert reference.image.dtype == np.uint8
        assert reference.embedding.engine == engine.id
        assert reference.embedding.vector.shape == (engine.dimension,)
    # The crops are spread over the clip and all show the same person.
    times = [reference.time for reference in result.references]
    assert times == sorted(times)
    assert times[-1] - times[0] > 2.5
    for first, second in itertools.combinations(result.references, 2):
        assert engine.compare(first.embedding, second.embedding).is_match
    percents = [percent for percent, _stage in stages]
    assert percents == sorted(percents)
    assert stages[0] == (0, "decoding")
    assert stages[-1] == (100, "done")
    assert {stage for _percent, stage in stages} >= {"speech", "faces", "motion", "identity"}


def test_it_accepts_a_mirrored_upload_when_told_it_is_mirrored(recordings: Path) -> None:
    path = clip(recordings, mirrored=True)

    result = check(path, mirrored=True)

    assert result.failures == ()
    assert result.turns_seen == ("left", "right")
    # Read as an ordinary recording, the person seems to turn the other way first.
    assert check(path).codes == {FailureCode.TURNS_OUT_OF_ORDER}


def test_it_refuses_a_still_photo(recordings: Path) -> None:
    result = check(clip(recordings, motion="still"))

    assert result.codes == {FailureCode.STILL_PICTURE, FailureCode.TURN_MISSING}
    assert result.references == ()
    assert messages(result)[FailureCode.TURN_MISSING] == "the head did not turn left or right"


def test_it_refuses_a_photo_slid_and_tilted_as_a_plane(recordings: Path) -> None:
    result = check(clip(recordings, motion="flat"))

    assert result.codes == {FailureCode.FLAT_PICTURE, FailureCode.TURN_MISSING}
    assert "photo" in messages(result)[FailureCode.FLAT_PICTURE]
    assert result.references == ()


def test_it_refuses_the_wrong_digits(recordings: Path) -> None:
    result = check(clip(recordings, digits="358"))

    assert result.codes == {FailureCode.DIGITS_MISMATCH}
    assert messages(result)[FailureCode.DIGITS_MISMATCH] == (
        "we heard 3 5 8, the challenge was 4 7 1"
    )
    assert result.references == ()


def test_it_refuses_the_digits_in_the_wrong_order(recordings: Path) -> None:
    result = check(clip(recordings, digits="417"))

    assert result.codes == {FailureCode.DIGITS_MISMATCH}
    assert messages(result)[FailureCode.DIGITS_MISMATCH] == (
        "we heard 4 1 7, the challenge was 4 7 1"
    )


def test_it_refuses_a_head_that_does_not_turn(recordings: Path) -> None:
    result = check(clip(recordings, turns=()))

    assert result.codes == {FailureCode.TURN_MISSING}
    assert result.turns_seen == ()


def test_it_refuses_a_missing_turn(recordings: Path) -> None:
    result = check(clip(recordings, turns=("left",)))

    assert result.codes == {FailureCode.TURN_MISSING}
    assert messages(result)[FailureCode.TURN_MISSING] == "the head did not turn right"


def test_it_refuses_turns_in_the_wrong_order(recordings: Path) -> None:
    result = check(clip(recordings, turns=("right", "left")))

    assert result.codes == {FailureCode.TURNS_OUT_OF_ORDER}
    assert messages(result)[FailureCode.TURNS_OUT_OF_ORDER] == (
        "the head turned right, left; the challenge was left, right"
    )


def test_it_refuses_a_second_person_in_the_frame(recordings: Path) -> None:
    result = check(clip(recordings, second_face=True))

    assert result.codes == {FailureCode.SECOND_PERSON}
    assert messages(result)[FailureCode.SECOND_PERSON].startswith("a second person is in the frame")


def test_it_refuses_a_face_that_changes_halfway(recordings: Path) -> None:
    result = check(clip(recordings, swapped_face=T1_DAVID))

    # The second man's photo is itself turned to his left, so his turn to the right falls
    # short of the threshold as well.
    assert result.codes == {FailureCode.IDENTITY_CHANGED, FailureCode.TURN_MISSING}
    assert messages(result)[FailureCode.IDENTITY_CHANGED].startswith("the face changes")
    assert result.references == ()


def test_it_refuses_an_empty_room(recordings: Path) -> None:
    result = check(clip(recordings, motion="nobody"))

    assert result.codes == {FailureCode.NO_FACE, FailureCode.TURN_MISSING}
    assert messages(result)[FailureCode.NO_FACE] == (
        "no face was found in most of the video (in 0 of 24 frames)"
    )


def test_it_collects_every_failure_at_once(recordings: Path) -> None:
    result = check(clip(recordings, motion="still", digits="358"))

    assert result.codes == {
        FailureCode.STILL_PICTURE,
        FailureCode.TURN_MISSING,
        FailureCode.DIGITS_MISMATCH,
    }


# --- Digits --------------------------------------------------------------------------------


def test_it_hears_oh_as_zero() -> None:
    audio = speak_words(["four", "oh", "six"], seconds=4.0)

    assert check_digits(audio, 16_000, "406").heard == "406"


@pytest.mark.parametrize("challenge", ["471", "358", "902", "615"])
def test_it_hears_digits_between_stretches_of_digital_silence(challenge: str) -> None:
    # Synthetic speech with exact zeros between the words: without the checker's own dither
    # pocketsphinx drops or confuses digits here (heard "410", "35", "9", "15").
    audio = speak_digits(challenge, seconds=4.0, noise_snr_db=None)

    assert check_digits(audio, 16_000, challenge).is_match


# --- Turns from landmarks -----------------------------------------------------------------


def face_with(
    eyes: tuple[tuple[float, float], tuple[float, float]], nose: tuple[float, float]
) -> DetectedFace:
    points = np.array([eyes[1], eyes[1], eyes[0], eyes[0], nose], dtype=np.float64)
    return DetectedFace(
        box=(0, 0, 100, 100),
        landmarks=points,
        score=1.0,
        eye_left=eyes[0],
        eye_right=eyes[1],
        nose=nose,
    )


def rotated(point: tuple[float, float], degrees: float) -> tuple[float, float]:
    angle = np.radians(degrees)
    x, y = point
    return (x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle))


def test_the_yaw_proxy_reads_along_the_eye_line() -> None:
    upright = face_with(((-20.0, 0.0), (20.0, 0.0)), (6.0, 25.0))
    rolled = face_with(
        (rotated((-20.0, 0.0), 30), rotated((20.0, 0.0), 30)), rotated((6.0, 25.0), 30)
    )

    assert motion.yaw_proxy(upright) == pytest.approx(0.15)
    assert motion.yaw_proxy(rolled) == pytest.approx(0.15)


def test_a_turn_counts_once_until_the_head_comes_back() -> None:
    back_and_forth = np.array([0, 0, 0.15, 0.16, 0.12, 0.0, 0.0, -0.14, -0.15, -0.02, 0])
    wobbling_left = np.array([0, 0, 0.15, 0.16, 0.08, 0.08, 0.15, 0.15, 0.0, 0.0])
    with_lost_faces = np.array([0, 0, 0.15, np.nan, 0.16, 0.0, 0.0, np.nan, -0.15, -0.15, 0])

    assert [turn.direction for turn in motion.find_turns(back_and_forth)] == ["left", "right"]
    assert [turn.direction for turn in motion.find_turns(wobbling_left)] == ["left"]
    assert [turn.direction for turn in motion.find_turns(with_lost_faces)] == ["left", "right"]
    assert motion.yaw_series(
        [face_with(((-20.0, 0.0), (20.0, 0.0)), (x, 25.0)) for x in (0.0, 0.0, 8.0)],
        mirrored=True,
    ) == pytest.approx([0, 0, -0.2])


# --- The container ------------------------------------------------------------------------


def refusal(path: Path, limits: ContainerLimits | None = None) -> tuple[str, str]:
    result = check(path, **({"limits": limits} if limits else {}))
    assert len(result.failures) == 1, result.failures
    assert result.digits_heard is None
    return result.failures[0].code, result.failures[0].message


def test_it_refuses_random_bytes_and_text(tmp_path: Path) -> None:
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).bytes(200_000))
    text = tmp_path / "notes.mp4"
    text.write_text("these are not the frames you are looking for\n" * 100)

    assert refusal(noise) == (RefusalCode.NOT_A_VIDEO, "the file is not a video")
    assert refusal(text) == (RefusalCode.NOT_A_VIDEO, "the file is not a video")


def test_it_refuses_a_truncated_file(tmp_path: Path) -> None:
    whole = plain_clip(tmp_path / "whole.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 6 // 10])

    code, message = refusal(cut)

    assert code == RefusalCode.TRUNCATED
    assert "truncated" in message


def test_it_refuses_a_recording_that_is_too_long(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "long.mp4", seconds=12.0, fps=5)

    assert refusal(path) == (RefusalCode.TOO_LONG, "too long: 12.0 s, at most 10 s")


def test_it_refuses_a_recording_that_is_too_short(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "short.mp4", seconds=2.0)

    assert refusal(path) == (RefusalCode.TOO_SHORT, "too short: 2.0 s, at least 3 s")


def test_it_refuses_a_file_that_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "huge.mp4"
    with path.open("wb") as file:
        file.truncate(51_000_000)  # sparse: nothing is written

    code, message = refusal(path)

    assert code == RefusalCode.TOO_LARGE
    assert message == "the file is too large: 51.0 MB, at most 50 MB"


def test_it_refuses_a_png_renamed_mp4(tmp_path: Path) -> None:
    import skimage.data
    from PIL import Image

    path = tmp_path / "photo.mp4"
    Image.fromarray(skimage.data.astronaut()).save(path, format="PNG")

    assert refusal(path)[0] == RefusalCode.STILL_IMAGE


def test_it_refuses_an_audio_only_file(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "voice.m4a", has_video=False)

    assert refusal(path) == (RefusalCode.NO_VIDEO, "the file has sound but no video track")


def test_it_refuses_a_video_without_sound(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "silent.mp4", has_audio=False)

    assert refusal(path) == (RefusalCode.NO_AUDIO, "the video has no audio track")


def test_it_refuses_frames_that_claim_to_be_huge(tmp_path: Path) -> None:
    declared = webm_clip(tmp_path / "declared.webm", claimed_side=16_000)
    in_stream_only = webm_clip(tmp_path / "stream.webm", claimed_side=16_000, in_header=False)

    assert declared.stat().st_size < 50_000
    assert refusal(declared) == (
        RefusalCode.RESOLUTION_TOO_HIGH,
        "the picture is too large: 16000x16000, at most 1920x1920",
    )
    # Declared 320x320 by the container: the decoder's own pixel limit stops the first frame.
    assert refusal(in_stream_only)[0] == RefusalCode.TRUNCATED


def test_it_refuses_thousands_of_tiny_frames(tmp_path: Path) -> None:
    # Matroska declares no frame count, so this is caught while decoding.
    path = plain_clip(
        tmp_path / "frames.mkv",
        width=320,
        height=320,
        fps=300,
        seconds=3.2,
        container_format="matroska",
    )

    assert path.stat().st_size < 200_000
    assert refusal(path) == (
        RefusalCode.TOO_MANY_FRAMES,
        "the video has too many frames: more than 900",
    )


def test_it_stops_decoding_past_the_pixel_budget(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "plain.mp4")
    small_budget = ContainerLimits(max_decoded_pixels=480 * 360 * 20)

    code, message = refusal(path, small_budget)

    assert code == RefusalCode.TOO_MANY_PIXELS
    assert "megapixels" in message


def test_it_refuses_a_picture_too_small_to_check(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "tiny.mp4", width=240, height=180)

    assert refusal(path)[0] == RefusalCode.RESOLUTION_TOO_LOW


def test_it_opens_only_local_regular_files() -> None:
    # A URL is only a missing local file name: FFmpeg never sees it.
    with pytest.raises(FileNotFoundError):
        open_recording("http://127.0.0.1:9/recording.mp4")
    with pytest.raises(TypeError):
        open_recording(b"\x00\x00\x00\x18ftypmp42")  # type: ignore[arg-type]
    # A device could be read forever; only a regular file has a size to check.
    with pytest.raises(ValueError, match="not a regular file"):
        open_recording("/dev/zero")


def test_it_samples_frames_and_audio_at_fixed_rates(tmp_path: Path) -> None:
    path = plain_clip(tmp_path / "plain.mp4", seconds=4.0, width=1280, height=720, fps=30)

    with path.open("rb") as file:
        recording = open_recording(file)

    assert recording.frame_count == 120
    assert recording.duration == pytest.approx(4.0)
    assert len(recording.frames) == 32  # 8 per second
    times = [frame.time for frame in recording.frames[:3]]
    assert times == pytest.approx([0, 0.125, 0.25], abs=0.02)
    assert recording.frames[0].image.shape == (540, 960, 3)  # the working resolution
    assert (recording.width, recording.height) == (1280, 720)
    assert recording.audio_sample_rate == 16_000
    assert recording.audio.dtype == np.float32
    assert recording.audio.size == pytest.approx(4.0 * 16_000, rel=0.03)


def test_it_turns_a_portrait_phone_recording_upright(tmp_path: Path) -> None:
    # Landscape frames, dark on the left and bright on the right, to be shown turned clockwise.
    landscape = plain_clip(tmp_path / "landscape.mp4", width=640, height=360)
    portrait = with_display_rotation(landscape, tmp_path / "portrait.mp4")

    recording = open_recording(portrait)

    image = recording.frames[0].image
    assert image.shape == (640, 360, 3)
    assert (recording.width, recording.height) == (360, 640)
    # Turned clockwise, the dark left edge is now at the top.
    assert image[:20].mean() < 40
    assert image[-20:].mean() > 215


def test_it_opens_a_browsers_webm(tmp_path: Path) -> None:
    recording = open_recording(webm_clip(tmp_path / "browser.webm"))

    assert (recording.format_name, recording.video_codec, recording.audio_codec) == (
        "matroska,webm",
        "vp8",
        "opus",
    )
    assert recording.frame_count == 16
    assert recording.duration == pytest.approx(3.2)
    assert len(recording.frames) == 16  # at 5 fps, every frame is a sample
