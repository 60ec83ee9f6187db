"""The cameo check of the request gate: tags resolved, permissions and owner rules checked.

Runs before anything is created or charged (generation/gate.py). Every refusal of a known cameo
is recorded for its owner, then the request is refused in the OpenAI error shape. What passes
is re-checked under row locks in the job's own transaction, where the declared cameos are
written as appearances with their consent decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import status

from cameos.events import tell_owner_of_appearance, use_allowed_event, use_refused_event
from cameos.models import CAMEO_ID_PREFIX, CHARACTER_ID_PREFIX, Appearance, Cameo
from cameos.permissions import CameoDecision, can_use_cameo
from cameos.tags import MAX_TAGS_PER_VIDEO, find_tags
from generation.actions.requests import GenerationRequest
from generation.errors import InvalidRequest, OpenAIError
from generation.models import VideoJob
from sora_social.accounts.models import User

_NOT_LIVE = (Cameo.Status.REVOKED, Cameo.Status.EXPIRED, Cameo.Status.FAILED)


class CameoPermissionDenied(OpenAIError):
    """The same answer whatever the reason, so a refusal reveals nothing about the owner."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "cameo_permission_denied"

    def __init__(self, tag: str) -> None:
        super().__init__(
            f"You can't use @{tag} in a video: it doesn't exist or its owner hasn't allowed you.",
            param="prompt",
        )


class CameoRuleViolated(OpenAIError):
    code = "cameo_rule_violated"

    def __init__(self, tag: str) -> None:
        super().__init__(
            f"This prompt breaks one of @{tag}'s rules for their cameo. Change the prompt, or "
            "leave them out.",
            param="prompt",
        )


def resolve_tag(text: str) -> Cameo | None:
    """The cameo a tag names: an id, else the live cameo with that handle, else the latest
    dead one (so a tag of a revoked cameo is refused and recorded for its owner)."""
    cameos = Cameo.objects.select_related("owner")
    if text.startswith((CAMEO_ID_PREFIX, CHARACTER_ID_PREFIX)):
        return cameos.filter(pk=text).first()
    live = cameos.filter(handle=text).exclude(status__in=_NOT_LIVE).first()
    return live or cameos.filter(handle=text).order_by("-created_at").first()


@dataclass(frozen=True)
class DeclaredCameo:
    cameo: Cameo
    tag: str
    tag_position: int | None  # None: inherited from a remix's source


@dataclass(frozen=True)
class CameoGateDecision:
    author: User
    declared: tuple[DeclaredCameo, ...]

    def record(self, job: VideoJob) -> None:
        """Re-check under row locks (a revocation or a settings change may have landed since)
        and write one appearance per declared cameo with its consent decision."""
        ids = sorted(declared.cameo.pk for declared in self.declared)
        locked = {
            cameo.pk: cameo
            for cameo in Cameo.objects.select_for_update(of=("self",))
            .select_related("owner")
            .filter(pk__in=ids)
            .order_by("pk")
        }
        for declared in self.declared:
            cameo = locked[declared.cameo.pk]
            decision = can_use_cameo(self.author, cameo)
            if not decision.is_allowed:
                raise CameoPermissionDenied(declared.tag)
            appearance = Appearance.objects.create(
                video=job,
                cameo=cameo,
                source=Appearance.Source.TAGGED,
                tag_position=declared.tag_position,
                consent_decision=Appearance.ConsentDecision.ALLOWED,
                consent_reason=decision.reason,
            )
            use_allowed_event(cameo, author=self.author, video_id=job.id, reason=decision.reason)
            if cameo.owner_id != self.author.pk:
                tell_owner_of_appearance(appearance, author=self.author)
        Cameo.objects.filter(pk__in=ids).update(last_used_at=timezone.now())


def _declared_cameos(request: GenerationRequest) -> list[DeclaredCameo]:
    tags = find_tags(request.prompt)
    if len(tags) > MAX_TAGS_PER_VIDEO:
        raise InvalidRequest(
            f"A video can tag at most {MAX_TAGS_PER_VIDEO} cameos; this prompt tags {len(tags)}.",
            param="prompt",
            code="too_many_cameos",
        )
    declared: list[DeclaredCameo] = []
    for tag in tags:
        cameo = resolve_tag(tag.text)
        if cameo is None:
            raise CameoPermissionDenied(tag.text)
        if all(cameo.pk != known.cameo.pk for known in declared):
            declared.append(DeclaredCameo(cameo=cameo, tag=tag.text, tag_position=tag.position))
    if request.remixed_from is not None:
        # A remix shows its source's cameos again: each is checked for the remixer.
        inherited = (
            Appearance.objects.filter(video=request.remixed_from)
            .exclude(owner_decision__in=[Appearance.OwnerDecision.DECLINED,
                                         Appearance.OwnerDecision.REMOVED])
            .select_related("cameo__owner")
            .order_by("tag_position", "pk")
        )
        for appearance in inherited:
            if all(appearance.cameo_id != known.cameo.pk for known in declared):
                declared.append(DeclaredCameo(
                    cameo=appearance.cameo, tag=appearance.cameo.handle, tag_position=None
                ))
    return declared


def _check_rules(author: User, declared: DeclaredCameo, prompt: str) -> None:
    cameo = declared.cameo
    if not cameo.rules or author.pk == cameo.owner_id:
        return  # rules bind other people, not the owner
    from cameos.rules import check_prompt_against_rules  # loads a sentence model: lazily

    verdict = check_prompt_against_rules(prompt, list(cameo.rules))
    if not verdict.is_allowed:
        use_refused_event(
            cameo,
            author=author,
            reason="rule",
            details={
                "rule": verdict.rule_text,
                "rule_index": verdict.rule_index,
                "matched_by": str(verdict.match_kind),
            },
        )
        raise CameoRuleViolated(declared.tag)


def check_cameo_tags(author: User, request: GenerationRequest) -> CameoGateDecision | None:
    """The request gate's cameo check (listed in settings.REQUEST_GATE)."""
    declared = _declared_cameos(request)
    if not declared:
        return None
    for item in declared:
        decision: CameoDecision = can_use_cameo(author, item.cameo)
        if not decision.is_allowed:
            use_refused_event(item.cameo, author=author, reason=decision.reason)
            raise CameoPermissionDenied(item.tag)
    for item in declared:
        _check_rules(author, item, request.prompt)
    return CameoGateDecision(author=author, declared=tuple(declared))
