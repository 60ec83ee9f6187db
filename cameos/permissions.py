"""Who may use a cameo: one function, used by the request gate, the web and the output scan."""

from __future__ import annotations

from dataclasses import dataclass

from cameos.models import Cameo, CameoAccess
from sora_social.accounts.models import Block, Follow, User


@dataclass(frozen=True)
class CameoDecision:
    is_allowed: bool
    # Why, for the owner's audit trail: allowed by "owner" | "approved" | "mutuals" |
    # "everyone"; refused for "unavailable" | "blocked" | "denied" | "minor_requires_approval" |
    # "only_me" | "not_approved" | "not_mutuals".
    reason: str


def _allowed(reason: str) -> CameoDecision:
    return CameoDecision(is_allowed=True, reason=reason)


def _refused(reason: str) -> CameoDecision:
    return CameoDecision(is_allowed=False, reason=reason)


def are_mutuals(first: User, second: User) -> bool:
    return (
        Follow.objects.filter(follower=first, followee=second).exists()
        and Follow.objects.filter(follower=second, followee=first).exists()
    )


def can_use_cameo(author: User, cameo: Cameo) -> CameoDecision:
    """May `author` put `cameo` in a video? Checked in this order, the first answer wins:

    the cameo must be verified (not checking, failed, revoked or expired); its owner may;
    someone the owner blocked may not; the owner's explicit denial or approval of this person;
    a minor's cameo only by people they approved; then the audience the owner chose.
    """
    if not cameo.is_usable:
        return _refused("unavailable")
    owner = cameo.owner
    if author.pk == owner.pk:
        return _allowed("owner")
    if Block.objects.filter(blocker=owner, blocked=author).exists():
        return _refused("blocked")
    access = CameoAccess.objects.filter(cameo=cameo, user=author).values_list(
        "decision", flat=True
    ).first()
    if access == CameoAccess.Decision.DENIED:
        return _refused("denied")
    if access == CameoAccess.Decision.APPROVED:
        return _allowed("approved")
    if owner.is_minor:
        return _refused("minor_requires_approval")
    audience = cameo.audience
    if audience == Cameo.Audience.EVERYONE:
        return _allowed("everyone")
    if audience == Cameo.Audience.MUTUALS:
        return _allowed("mutuals") if are_mutuals(author, owner) else _refused("not_mutuals")
    if audience == Cameo.Audience.APPROVED:
        return _refused("not_approved")
    return _refused("only_me")
