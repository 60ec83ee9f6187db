"""The reference backend, speech and encoding, exercised for real: no mocks, no database."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from generation.backends import get_backend
from generation.backends.base import RenderedClip, RenderRequest
from generation.backends.reference import (
    FRAMES_PER_SECOND,
    SAMPLE_RATE,
    ReferenceBackend,
    plan_captions,
)
from generation.media import speech
from generation.media.encode import EncodedMedia, encode_clip

DIALOGUE_PROMPT = 'A fox in a neon city looks at the camera and says "watch this!" then leaps.'
QUIET_PROMPT = "A fox in a neon city looks at the camera and then leaps over a parked car."


def render(
    prompt: str,
    *,
    seconds: int = 2,
    width: int = 256,
    height: int = 448,
    seed: int = 7,
    **inputs: Path,
) -> RenderedClip:
    return ReferenceBackend().render(
        RenderRequest(
            prompt=prompt, seconds=seconds, width=width, height=height, seed=seed, **inputs
        )
    )


def frames_of(clip: RenderedClip) -> list[np.ndarray]:
    return list(clip.frames)


def decoded_frames(video: Path) -> list[np.ndarray]:
    with av.open(str(video)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def top_level_boxes(mp4: Path) -> list[str]:
    data = mp4.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


def gray_correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.mean(axis=2).ravel(), second.mean(axis=2).ravel())[0, 1])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


@pytest.fixture(scope="module")
def dialogue_media(tmp_path_factory: pytest.TempPathFactory) -> EncodedMedia:
    return encode_clip(render(DIALOGUE_PROMPT), tmp_path_factory.mktemp("dialogue"))


# --- speech --------------------------------------------------------------------------------


def test_speech_returns_audible_samples_of_plausible_length() -> None:
    samples, sample_rate = speech.synthesize("Watch this, it is amazing!")

    assert sample_rate == 22_050
    assert samples.dtype == np.float32
    assert 0.8 < len(samples) / sample_rate < 4.0
    assert rms(samples) > 0.02
    assert np.abs(samples).max() <= 1.0


def test_speech_of_blank_text_is_empty() -> None:
    samples, _ = speech.synthesize("   ")

    assert len(samples) == 0


def test_speech_refuses_an_unknown_voice() -> None:
    with pytest.raises(speech.SpeechError, match="no voice"):
        speech.synthesize("hello", voice="no-such-voice")


# --- the reference backend -----------------------------------------------------------------


def test_the_same_request_renders_identical_frames_and_audio() -> None:
    first, second = render(DIALOGUE_PROMPT), render(DIALOGUE_PROMPT)

    first_frames, second_frames = frames_of(first), frames_of(second)
    assert len(first_frames) == len(second_frames) == 2 * FRAMES_PER_SECOND
    assert all(np.array_equal(a, b) for a, b in zip(first_frames, second_frames, strict=True))
    assert np.array_equal(first.audio, second.audio)


def test_a_different_prompt_renders_different_frames() -> None:
    first = frames_of(render(QUIET_PROMPT))[10]
    second = frames_of(render("A paper boat drifts down a gutter in the rain."))[10]

    assert np.abs(first.astype(int) - second.astype(int)).mean() > 20


def test_a_different_seed_renders_different_frames() -> None:
    first = frames_of(render(QUIET_PROMPT, seed=1))[10]
    second = frames_of(render(QUIET_PROMPT, seed=2))[10]

    assert np.abs(first.astype(int) - second.astype(int)).mean() > 20


@pytest.mark.parametrize(("seconds", "width", "height"), [(4, 720, 1280), (2, 1280, 720)])
def test_it_renders_exactly_the_requested_frames(seconds: int, width: int, height: int) -> None:
    clip = render(QUIET_PROMPT, seconds=seconds, width=width, height=height)

    frames = frames_of(clip)
    assert clip.fps == FRAMES_PER_SECOND
    assert clip.frame_count == len(frames) == seconds * FRAMES_PER_SECOND
    assert {frame.shape for frame in frames} == {(height, width, 3)}
    assert {frame.dtype for frame in frames} == {np.dtype(np.uint8)}
    assert clip.sample_rate == SAMPLE_RATE
    assert len(clip.audio) == seconds * SAMPLE_RATE
    assert clip.audio.dtype == np.float32


def test_frames_show_visible_motion() -> None:
    frames = frames_of(render(QUIET_PROMPT))

    assert np.abs(frames[0].astype(int) - frames[24].astype(int)).mean() > 15
    consecutive = [
        np.abs(a.astype(int) - b.astype(int)).mean()
        for a, b in zip(frames, frames[1:], strict=False)
    ]
    assert min(consecutive) > 0.5


def test_captions_cover_the_prompt_and_give_dialogue_its_own_caption() -> None:
    captions = plan_captions(DIALOGUE_PROMPT, frame_count=4 * FRAMES_PER_SECOND)

    assert [(caption.text, caption.is_dialogue) for caption in captions] == [
        ("A fox in a neon city looks at the camera and says", False),
        ("watch this!", True),
        ("then leaps.", False),
    ]
    assert captions[0].start_frame == 0
    assert captions[-1].end_frame == 4 * FRAMES_PER_SECOND
    assert all(a.end_frame == b.start_frame for a, b in zip(captions, captions[1:], strict=False))


def test_dialogue_is_spoken_while_its_caption_is_on_screen() -> None:
    spoken, silent = render(DIALOGUE_PROMPT, seconds=4), render(QUIET_PROMPT, seconds=4)
    dialogue = next(
        caption
        for caption in plan_captions(DIALOGUE_PROMPT, 4 * FRAMES_PER_SECOND)
        if caption.is_dialogue
    )
    start = dialogue.start_frame * SAMPLE_RATE // FRAMES_PER_SECOND
    end = dialogue.end_frame * SAMPLE_RATE // FRAMES_PER_SECOND

    assert rms(spoken.audio[start:end]) > 4 * rms(silent.audio[start:end])
    assert rms(silent.audio) > 0.005  # the ambient pad is always there


def test_image_to_video_starts_from_the_image(tmp_path: Path) -> None:
    image_path = tmp_path / "reference.png"
    Image.new("RGB", (640, 480), (200, 40, 90)).save(image_path)

    frames = frames_of(render(QUIET_PROMPT, input_reference=image_path))

    # The top half: the caption sits near the bottom.
    top_half = frames[0][: frames[0].shape[0] // 2].reshape(-1, 3).mean(axis=0)
    assert np.abs(top_half - (200, 40, 90)).max() < 3


def test_image_to_video_zooms_into_the_image(tmp_path: Path) -> None:
    image_path = tmp_path / "reference.png"
    picture = Image.new("RGB", (640, 480), (20, 60, 160))
    picture.paste((250, 210, 40), (280, 200, 360, 280))
    picture.save(image_path)

    frames = frames_of(render(QUIET_PROMPT, input_reference=image_path))

    def yellow_share(frame: np.ndarray) -> float:
        return float(((frame[..., 0] > 200) & (frame[..., 2] < 100)).mean())

    assert yellow_share(frames[-1]) > 1.15 * yellow_share(frames[0])


def test_a_remix_starts_from_the_source_frames(tmp_path: Path) -> None:
    source = encode_clip(render(QUIET_PROMPT, seed=1), tmp_path / "source")
    source_frames = decoded_frames(source.video)

    remix = frames_of(
        render("Make it a cold blue winter night.", seed=2, source_video=source.video)
    )
    fresh = frames_of(render("Make it a cold blue winter night.", seed=2))

    assert gray_correlation(remix[0], source_frames[0]) > 0.8
    assert gray_correlation(remix[-1], source_frames[-1]) > 0.8
    assert abs(gray_correlation(fresh[0], source_frames[0])) < 0.5
    # ...and it is visibly transformed, not a copy.
    assert np.abs(remix[0].astype(int) - source_frames[0].astype(int)).mean() > 8


def test_a_remix_stretches_a_shorter_source_over_the_new_duration(tmp_path: Path) -> None:
    source = encode_clip(render(QUIET_PROMPT, seconds=1), tmp_path / "source")

    remix = render("Slow it down.", seconds=2, source_video=source.video)

    assert len(frames_of(remix)) == 2 * FRAMES_PER_SECOND


# --- encoding ------------------------------------------------------------------------------


def test_the_mp4_is_h264_and_aac_of_the_requested_size_and_duration(
    dialogue_media: EncodedMedia,
) -> None:
    with av.open(str(dialogue_media.video)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert (video.width, video.height) == (256, 448)
        assert video.frames == 2 * FRAMES_PER_SECOND
        assert container.duration is not None
        assert abs(container.duration / 1_000_000 - 2.0) <= 1 / FRAMES_PER_SECOND
        assert audio.codec_context.name == "aac"
        samples = np.concatenate(
            [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
        )
    assert rms(samples) > 0.01
    assert dialogue_media.duration_seconds == 2.0
    assert len(decoded_frames(dialogue_media.video)) == 2 * FRAMES_PER_SECOND


def test_the_mp4_starts_with_its_index_for_streaming(dialogue_media: EncodedMedia) -> None:
    boxes = top_level_boxes(dialogue_media.video)

    assert boxes.index("moov") < boxes.index("mdat")


def test_the_thumbnail_is_a_webp_and_the_spritesheet_a_jpeg_grid(
    dialogue_media: EncodedMedia,
) -> None:
    with Image.open(dialogue_media.thumbnail) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == (256, 448)  # already under 640 px: kept as is
    with Image.open(dialogue_media.spritesheet) as spritesheet:
        assert spritesheet.format == "JPEG"
        assert spritesheet.size == (
            dialogue_media.spritesheet_columns * dialogue_media.spritesheet_tile_width,
            dialogue_media.spritesheet_rows * dialogue_media.spritesheet_tile_height,
        )
    assert dialogue_media.spritesheet_columns * dialogue_media.spritesheet_rows == 10
    assert max(dialogue_media.spritesheet_tile_width, dialogue_media.spritesheet_tile_height) == 160


def test_a_large_thumbnail_is_scaled_to_640_pixels_keeping_its_aspect(tmp_path: Path) -> None:
    media = encode_clip(render(QUIET_PROMPT, seconds=1, width=1280, height=720), tmp_path)

    with Image.open(media.thumbnail) as thumbnail:
        assert thumbnail.size == (640, 360)


def test_the_watermark_is_burned_into_every_frame_and_moves(tmp_path: Path) -> None:
    clip_frames = frames_of(render(QUIET_PROMPT))
    clip = render(QUIET_PROMPT)
    media = encode_clip(clip, tmp_path)

    encoded = decoded_frames(media.video)
    differences = [
        np.abs(a.astype(int) - b.astype(int)).mean(axis=2) > 40
        for a, b in zip(encoded, clip_frames, strict=True)
    ]
    marked_areas = [np.argwhere(difference) for difference in differences]
    assert all(len(area) > 50 for area in marked_areas)
    assert not np.array_equal(
        marked_areas[0].mean(axis=0).round(), marked_areas[-1].mean(axis=0).round()
    )


def test_identical_clips_encode_to_identical_files(tmp_path: Path) -> None:
    first = encode_clip(render(DIALOGUE_PROMPT), tmp_path / "first")
    second = encode_clip(render(DIALOGUE_PROMPT), tmp_path / "second")

    assert first.video.read_bytes() == second.video.read_bytes()
    assert first.thumbnail.read_bytes() == second.thumbnail.read_bytes()
    assert first.spritesheet.read_bytes() == second.spritesheet.read_bytes()


def test_progress_climbs_to_100(tmp_path: Path) -> None:
    reports: list[int] = []

    encode_clip(render(QUIET_PROMPT), tmp_path, progress=reports.append)

    assert reports[0] == 0
    assert reports[-1] == 100
    assert reports == sorted(reports)
    assert 5 <= len(reports) <= 30


def test_a_raising_progress_callback_aborts_without_leaving_files(tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    def cancel_halfway(percent: int) -> None:
        if percent >= 50:
            raise Cancelled

    with pytest.raises(Cancelled):
        encode_clip(render(QUIET_PROMPT), tmp_path, progress=cancel_halfway)

    assert list(tmp_path.iterdir()) == []


def test_a_clip_with_fewer_frames_than_promised_is_refused(tmp_path: Path) -> None:
    clip = render(QUIET_PROMPT)
    short = RenderedClip(
        fps=clip.fps,
        frame_count=clip.frame_count,
        frames=iter(frames_of(clip)[:-1]),
        audio=clip.audio,
        sample_rate=clip.sample_rate,
    )

    with pytest.raises(ValueError, match="expected 48"):
        encode_clip(short, tmp_path)

    assert list(tmp_path.iterdir()) == []


# --- the backend registry ------------------------------------------------------------------


def test_get_backend_hands_out_one_instance_per_process() -> None:
    backend = get_backend("reference")

    assert isinstance(backend, ReferenceBackend)
    assert get_backend("reference") is backend


def test_get_backend_names_the_valid_backends_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match="choose one of reference"):
        get_backend("sorcery")
