"""Where I appear: every video with an owner's cameo in it, and what the owner does about one:
approve it, decline it, or remove it for everyone."""

from __future__ import annotations

from enum import StrEnum

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import NotFound

from cameos.events import owner_decided_event, send_cameo_event
from cameos.models import Appearance, CameoEvent
from cameos.output import APPROVAL_HOLD
from generation.actions.output import release_hold
from generation.actions.withdrawal import WithdrawalReport, do_withdraw_videos
from generation.errors import Conflict
from generation.models import VideoJob
from sora_social.accounts.models import User
from sora_social.notifications.actions import do_notify

REMOVED_CODE = "cameo_owner_removed"
REMOVED_MESSAGE = "A person who appears in this video removed it."
DECLINED_CODE = "cameo_owner_declined"
DECLINED_MESSAGE = "A person who appears in this video did not approve it."

# Jobs that never made a video show nothing: their attempts are in the owner's audit log.
_NO_VIDEO = (VideoJob.Status.FAILED, VideoJob.Status.CANCELLED)


class AppearanceStatus(StrEnum):
    """What the owner sees of a video they are in."""

    IN_PROGRESS = "in_progress"  # still being made
    AWAITING_APPROVAL = "awaiting_approval"  # held until the owner decides
    DRAFT = "draft"  # made, the author's own until published
    REMOVED = "removed"  # withdrawn (by the owner, a revocation or a moderator)


def appearance_status(appearance: Appearance) -> AppearanceStatus:
    video = appearance.video
    if video.is_withdrawn:
        return AppearanceStatus.REMOVED
    if video.status != VideoJob.Status.COMPLETED:
        return AppearanceStatus.IN_PROGRESS
    if appearance.owner_decision == Appearance.OwnerDecision.PENDING:
        return AppearanceStatus.AWAITING_APPROVAL
    return AppearanceStatus.DRAFT


def with_status(
    appearances: QuerySet[Appearance], wanted: AppearanceStatus
) -> QuerySet[Appearance]:
    """The queryset twin of `appearance_status`: those of `appearances` in state `wanted`."""
    withdrawn = Q(video__withdrawn_at__isnull=False)
    made = Q(video__status=VideoJob.Status.COMPLETED) & ~withdrawn
    pending = Q(owner_decision=Appearance.OwnerDecision.PENDING)
    return appearances.filter({
        AppearanceStatus.REMOVED: withdrawn,
        AppearanceStatus.IN_PROGRESS: ~withdrawn & ~Q(video__status=VideoJob.Status.COMPLETED),
        AppearanceStatus.AWAITING_APPROVAL: made & pending,
        AppearanceStatus.DRAFT: made & ~pending,
    }[wanted])


def appearances_of(user: User) -> QuerySet[Appearance]:
    """Every video the user's cameos are in, newest first (drafts of others included)."""
    return (
        Appearance.objects.filter(cameo__owner=user)
        .exclude(video__status__in=_NO_VIDEO)
        .select_related("video__user", "cameo")
        .order_by("-created_at", "-id")
    )


def access_appearance(user: User, appearance_id: int | str) -> Appearance:
    """One of the user's appearances; anyone else's, or none, is the same NotFound."""
    appearance = None
    if str(appearance_id).isdigit():
        appearance = appearances_of(user).filter(pk=int(appearance_id)).first()
    if appearance is None:
        raise NotFound(f"No appearance found with id '{appearance_id}'.")
    return appearance


def _lock(user: User, appearance_id: int | str) -> tuple[VideoJob, Appearance]:
    """The video row, then the appearance row, locked (the order the output check uses)."""
    found = access_appearance(user, appearance_id)
    video = VideoJob.objects.select_for_update().get(pk=found.video_id)
    appearance = Appearance.objects.select_for_update().select_related("cameo", "video__user").get(
        pk=found.pk
    )
    return video, appearance


def _lock_pending(user: User, appearance_id: int | str) -> tuple[VideoJob, Appearance]:
    video, appearance = _lock(user, appearance_id)
    if appearance.owner_decision != Appearance.OwnerDecision.PENDING or video.is_withdrawn:
        raise Conflict("This video is not waiting for your approval.", param="appearance_id",
                       code="nothing_to_approve")
    return video, appearance


def _decide(appearance: Appearance, decision: Appearance.OwnerDecision) -> None:
    appearance.owner_decision = decision
    appearance.decided_at = timezone.now()
    appearance.save(update_fields=["owner_decision", "decided_at"])


def do_approve_appearance(user: User, appearance_id: int | str) -> Appearance:
    """Approve a video waiting for the owner; once nothing else holds it, its author may
    download and publish it."""
    with transaction.atomic():
        video, appearance = _lock_pending(user, appearance_id)
        _decide(appearance, Appearance.OwnerDecision.APPROVED)
        is_released = release_hold(video, kind=APPROVAL_HOLD, reference=str(appearance.pk))
        owner_decided_event(appearance.cameo, CameoEvent.Kind.VIDEO_APPROVED, video_id=video.id)
        if is_released:
            do_notify(video.user_id, kind="video.approved", title="Your video was approved",
                      body="Everyone in your video approved it; you can download and post it.",
                      data={"video_id": video.id})
        send_cameo_event(appearance.cameo, "cameo.appearance", {"video_id": video.id,
                                                                "appearance_id": appearance.pk})
    return appearance


def _withdraw_for_owner(
    video: VideoJob, appearance: Appearance, decision: Appearance.OwnerDecision, *,
    event: CameoEvent.Kind, code: str, message: str,
) -> WithdrawalReport:
    """Record the owner's decision and withdraw the video with its remixes. Caller holds the
    video's and the appearance's row locks."""
    _decide(appearance, decision)
    owner_decided_event(appearance.cameo, event, video_id=video.id)
    report = do_withdraw_videos([video.id], code=code, message=message)
    send_cameo_event(appearance.cameo, "cameo.appearance", {"video_id": video.id,
                                                            "appearance_id": appearance.pk})
    return report


def do_decline_appearance(user: User, appearance_id: int | str) -> WithdrawalReport:
    """Decline a video waiting for the owner: it is withdrawn, with its remixes."""
    with transaction.atomic():
        video, appearance = _lock_pending(user, appearance_id)
        return _withdraw_for_owner(video, appearance, Appearance.OwnerDecision.DECLINED,
                                   event=CameoEvent.Kind.VIDEO_DECLINED, code=DECLINED_CODE,
                                   message=DECLINED_MESSAGE)


def do_remove_appearance(user: User, appearance_id: int | str) -> WithdrawalReport:
    """Remove a video the owner is in, for everyone: withdrawn with its remixes (a render still
    in progress is cancelled). Removing it again changes nothing."""
    with transaction.atomic():
        video, appearance = _lock(user, appearance_id)
        if appearance.owner_decision == Appearance.OwnerDecision.REMOVED:
            return WithdrawalReport()
        return _withdraw_for_owner(video, appearance, Appearance.OwnerDecision.REMOVED,
                                   event=CameoEvent.Kind.VIDEO_REMOVED, code=REMOVED_CODE,
                                   message=REMOVED_MESSAGE)
