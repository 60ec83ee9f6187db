"""The consent audit trail (one function per event kind) and live pushes to cameo owners.

Audit events are rows written in the caller's transaction, so they commit with the change they
record; a refused use is recorded by its own statement, since the refused request rolls back.
Live pushes are hints sent after commit (sora_social.events).
"""

from __future__ import annotations

from typing import Any

from cameos.models import Appearance, Cameo, CameoEvent
from sora_social.accounts.models import User
from sora_social.events import send_user_event
from sora_social.notifications.actions import do_notify


def _event(
    cameo: Cameo,
    kind: CameoEvent.Kind,
    *,
    actor: User | None = None,
    video_id: str = "",
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> CameoEvent:
    return CameoEvent.objects.create(
        cameo=cameo,
        kind=kind,
        actor=actor,
        video_id=video_id,
        reason=reason,
        details=details or {},
    )


def consent_given_event(cameo: Cameo, *, notice_version: str, client: str) -> CameoEvent:
    return _event(
        cameo,
        CameoEvent.Kind.CONSENT_GIVEN,
        actor=cameo.owner,
        details={"notice_version": notice_version, "client": client},
    )


def check_passed_event(cameo: Cameo, *, references: int) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.CHECK_PASSED, details={"references": references})


def check_failed_event(cameo: Cameo, *, failures: list[dict[str, str]]) -> CameoEvent:
    codes = ",".join(failure["code"] for failure in failures)
    return _event(cameo, CameoEvent.Kind.CHECK_FAILED, reason=codes[:40],
                  details={"failures": failures})


def sent_to_review_event(cameo: Cameo, *, reason: str) -> CameoEvent:
    # Which other cameo matched is for reviewers, not written where the owner reads it.
    return _event(cameo, CameoEvent.Kind.SENT_TO_REVIEW, reason=reason)


def settings_changed_event(cameo: Cameo, *, changes: dict[str, Any]) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.SETTINGS_CHANGED, actor=cameo.owner, details=changes)


def use_allowed_event(cameo: Cameo, *, author: User, video_id: str, reason: str) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.USE_ALLOWED, actor=author, video_id=video_id,
                  reason=reason)


def use_refused_event(
    cameo: Cameo,
    *,
    author: User,
    reason: str,
    details: dict[str, Any] | None = None,
    video_id: str = "",
) -> CameoEvent:
    event = _event(cameo, CameoEvent.Kind.USE_REFUSED, actor=author, reason=reason,
                   details=details, video_id=video_id)
    send_cameo_event(cameo, "cameo.use_refused", {"by": author.handle, "reason": reason})
    return event


def appearance_detected_event(
    cameo: Cameo, *, author: User, video_id: str, reason: str, distance: float
) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.APPEARANCE_DETECTED, actor=author, video_id=video_id,
                  reason=reason, details={"distance": round(distance, 4)})


def appearance_uncertain_event(
    cameo: Cameo, *, author: User, video_id: str, distance: float
) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.APPEARANCE_UNCERTAIN, actor=author,
                  video_id=video_id, details={"distance": round(distance, 4)})


def owner_decided_event(
    cameo: Cameo, kind: CameoEvent.Kind, *, video_id: str, reason: str = ""
) -> CameoEvent:
    """The owner approved, declined or removed a video of them."""
    if kind not in (CameoEvent.Kind.VIDEO_APPROVED, CameoEvent.Kind.VIDEO_DECLINED,
                    CameoEvent.Kind.VIDEO_REMOVED):
        raise ValueError(f"{kind} is not an owner's decision about a video")
    return _event(cameo, kind, actor=cameo.owner, video_id=video_id, reason=reason)


def revoked_event(cameo: Cameo) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.REVOKED, actor=cameo.owner)


def revocation_completed_event(
    cameo: Cameo, *, withdrawn: int, cancelled: int
) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.REVOCATION_COMPLETED,
                  details={"videos_withdrawn": withdrawn, "jobs_cancelled": cancelled})


def biometrics_erased_event(cameo: Cameo, *, erased: dict[str, int], why: str) -> CameoEvent:
    return _event(cameo, CameoEvent.Kind.BIOMETRICS_ERASED, reason=why, details=erased)


def send_cameo_event(cameo: Cameo, kind: str, data: dict[str, Any] | None = None) -> None:
    """Tell the owner's open clients about their cameo, after the transaction commits."""
    payload = {"id": cameo.id, "handle": cameo.handle, "status": cameo.status, **(data or {})}
    send_user_event(cameo.owner_id, {"type": kind, "data": payload})


def tell_owner_of_appearance(appearance: Appearance, *, author: User) -> None:
    """A new video with the owner's cameo: a notification, and a live push to their open
    clients (where-I-appear lists refresh on it). After commit, as both are."""
    cameo = appearance.cameo
    if appearance.is_uncertain:
        title = "Someone who may be you is in a video: please check it"
        body = f"@{author.handle} made a video with a face that may be yours."
    elif appearance.source == Appearance.Source.DETECTED:
        title = "You appear in a new video"
        body = f"@{author.handle} made a video in which your face was found."
    else:
        title = "You were tagged in a new video"
        body = f"@{author.handle} is making a video with your cameo @{cameo.handle}."
    do_notify(cameo.owner_id, kind="appearance.new", title=title, body=body,
              data={"video_id": appearance.video_id, "cameo_id": cameo.pk,
                    "appearance_id": appearance.pk})
    send_cameo_event(cameo, "cameo.appearance", {"video_id": appearance.video_id,
                                                 "appearance_id": appearance.pk})
