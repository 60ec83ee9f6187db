"""The two gates every video passes, whatever way it was asked for (ARCHITECTURE.md).

Generation knows nothing of the apps that plug checks in: `settings.REQUEST_GATE` lists dotted
paths of request checks (run in order before anything is created or charged) and
`settings.RENDER_INPUTS` lists providers of extra render inputs (run by the render worker).

A request check is called as `check(user, request)`. It refuses by raising an `OpenAIError`
(the request then changes nothing), or returns None, or returns a `GateDecision` whose
`record(job)` runs inside the transaction that inserts the job: what must be remembered (the
declared cameos and their consent) commits with the job or not at all, and `record` may still
refuse (raising) after re-checking under row locks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from generation.actions.requests import GenerationRequest
    from generation.models import VideoJob
    from sora_social.accounts.models import User


class GateDecision(Protocol):
    def record(self, job: VideoJob) -> None:
        """Write what the job must remember; the caller holds the job's transaction."""


RequestCheck = Callable[["User", "GenerationRequest"], GateDecision | None]
# Returns keyword arguments for `RenderRequest` (e.g. {"cameos": (...)}); files it needs go in
# `workdir`, the render's private temporary folder. Raises PermanentRenderError to fail the job.
RenderInputProvider = Callable[["VideoJob", Path], dict[str, Any]]


@cache
def load_paths(paths: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(import_string(path) for path in paths)


def request_checks() -> tuple[RequestCheck, ...]:
    return load_paths(tuple(settings.REQUEST_GATE))


def render_input_providers() -> tuple[RenderInputProvider, ...]:
    return load_paths(tuple(settings.RENDER_INPUTS))


def run_request_gate(user: User, request: GenerationRequest) -> list[GateDecision]:
    """Run every request check in order; the first refusal raises and stops the rest."""
    decisions = []
    for check in request_checks():
        decision = check(user, request)
        if decision is not None:
            decisions.append(decision)
    return decisions
