"""Liveness of a cameo registration recording: a pure library, no models or tasks.

result = check_liveness(path, "471", ["left", "right"], mirrored=False)
if result.is_live:
    result.references  # 3-5 face crops with their embeddings (result.engine_id)
else:
    result.failures  # every problem found: (code, message for the user)
"""

from __future__ import annotations

from cameos.liveness.check import (
    FailureCode,
    LivenessFailure,
    LivenessResult,
    ReferenceFace,
    check_liveness,
)
from cameos.liveness.container import (
    ContainerLimits,
    DecodedRecording,
    RecordingRefused,
    RefusalCode,
    SampledFrame,
    open_recording,
)
from cameos.liveness.speech import DigitsResult, check_digits

__all__ = [
    "ContainerLimits",
    "DecodedRecording",
    "DigitsResult",
    "FailureCode",
    "LivenessFailure",
    "LivenessResult",
    "RecordingRefused",
    "ReferenceFace",
    "RefusalCode",
    "SampledFrame",
    "check_digits",
    "check_liveness",
    "open_recording",
]
