"""What an owner does with their cameo: read it, choose who may use it, write rules."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound

from cameos.events import send_cameo_event, settings_changed_event
from cameos.models import MAX_PREFERENCES_CHARACTERS, Cameo, CameoAccess, CameoEvent
from generation.errors import InvalidRequest
from sora_social.accounts.models import User


def access_own_cameo(user: User, cameo_id: str, *, for_update: bool = False) -> Cameo:
    """One of the user's own cameos; anyone else's, or none, is the same NotFound."""
    queryset = Cameo.objects.filter(owner=user, pk=cameo_id)
    if for_update:
        queryset = queryset.select_for_update()
    cameo = queryset.first()
    if cameo is None:
        raise NotFound(f"No cameo found with id '{cameo_id}'.")
    return cameo


def check_rules(rules: list[str]) -> list[str]:
    """Cleaned rules, or InvalidRequest naming what is wrong (too many, too long, not a rule)."""
    from cameos.rules import RuleTextError, validate_rules

    try:
        return validate_rules(rules)
    except RuleTextError as error:
        raise InvalidRequest(str(error), param="rules", code="invalid_rules") from None


def do_update_cameo_settings(
    user: User,
    cameo_id: str,
    *,
    audience: str | None = None,
    rules: list[str] | None = None,
    preferences: str | None = None,
    requires_approval: bool | None = None,
) -> Cameo:
    changes: dict[str, Any] = {}
    if rules is not None:
        rules = check_rules(rules)
    if preferences is not None:
        preferences = " ".join(preferences.split())
        if len(preferences) > MAX_PREFERENCES_CHARACTERS:
            raise InvalidRequest(
                f"Preferences are at most {MAX_PREFERENCES_CHARACTERS} characters.",
                param="preferences",
            )
    if audience is not None and audience not in Cameo.Audience.values:
        raise InvalidRequest(
            f"audience must be one of {', '.join(Cameo.Audience.values)}.", param="audience"
        )
    with transaction.atomic():
        cameo = access_own_cameo(user, cameo_id, for_update=True)
        for field, value in (("audience", audience), ("rules", rules),
                             ("preferences", preferences),
                             ("requires_approval", requires_approval)):
            if value is not None and getattr(cameo, field) != value:
                changes[field] = {"from": getattr(cameo, field), "to": value}
                setattr(cameo, field, value)
        if changes:
            cameo.save(update_fields=list(changes))
            settings_changed_event(cameo, changes=changes)
            send_cameo_event(cameo, "cameo.updated")
    return cameo


def do_decide_access(user: User, cameo_id: str, person: User, decision: str | None) -> None:
    """Approve or deny `person` for the cameo; None forgets the decision."""
    with transaction.atomic():
        cameo = access_own_cameo(user, cameo_id, for_update=True)
        if person.pk == user.pk:
            raise InvalidRequest("You always may use your own cameo.", param="handle")
        if decision is None:
            CameoAccess.objects.filter(cameo=cameo, user=person).delete()
        else:
            CameoAccess.objects.update_or_create(
                cameo=cameo, user=person, defaults={"decision": decision}
            )
        settings_changed_event(cameo, changes={"access": {"handle": person.handle,
                                                          "decision": decision}})


def cameo_access_list(cameo: Cameo) -> QuerySet[CameoAccess]:
    return CameoAccess.objects.filter(cameo=cameo).select_related("user").order_by("decided_at")


def cameo_events(cameo: Cameo) -> QuerySet[CameoEvent]:
    return CameoEvent.objects.filter(cameo=cameo).select_related("actor").order_by(
        "-created_at", "-id"
    )
