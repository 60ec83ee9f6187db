"""The owner's cameo page (consent, the recording with its live check, settings and audit) and
the "Where I appear" page (every video with the owner's cameo in it, and what to do about it)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from cameos.actions.appearances import appearances_of
from cameos.actions.owner import cameo_access_list, cameo_events
from cameos.actions.registration import live_person_cameo
from cameos.api.appearances import AppearanceSerializer, DeletionReceiptSerializer
from cameos.api.serializers import (
    CameoAccessSerializer,
    CameoEventSerializer,
    CameoSerializer,
    ChallengeSerializer,
)
from cameos.consent import consent_notice
from cameos.models import Cameo, DeletionReceipt
from sora_social.accounts.authentication import request_user
from sora_social.accounts.models import Block, User

EVENTS_SHOWN = 100
APPEARANCES_SHOWN = 50


@login_required
def my_cameo(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    cameo = live_person_cameo(user)
    challenge = None
    if cameo is not None and cameo.status == Cameo.Status.AWAITING_RECORDING:
        open_challenge = (
            cameo.challenges.filter(used_at__isnull=True, expires_at__gt=timezone.now())
            .order_by("-created_at")
            .first()
        )
        challenge = ChallengeSerializer(open_challenge).data if open_challenge else None
    context = {
        "notice": consent_notice(),
        "cameo": CameoSerializer(cameo).data if cameo else None,
        "challenge": challenge,
        "access": CameoAccessSerializer(cameo_access_list(cameo), many=True).data
        if cameo else [],
        "events": CameoEventSerializer(cameo_events(cameo)[:EVENTS_SHOWN], many=True).data
        if cameo else [],
        "audiences": Cameo.Audience.choices,
        **_latest_receipt(user),
    }
    return render(request, "cameos/cameo.html", context)


def _latest_receipt(user: User) -> dict[str, Any]:
    """The receipt of the user's most recently revoked cameo, if any."""
    receipt = (DeletionReceipt.objects.filter(cameo__owner=user).select_related("cameo")
               .order_by("-requested_at").first())
    if receipt is None:
        return {"receipt": None}
    return {"receipt": DeletionReceiptSerializer(receipt).data,
            "receipt_handle": receipt.cameo.handle}


@login_required
def my_appearances(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    cameo = live_person_cameo(user)
    appearances = appearances_of(user)
    context = {
        "cameo": CameoSerializer(cameo).data if cameo else None,
        # The list's first page as GET /api/appearances answers it: the script shows it at
        # once, then keeps it current from the API.
        "first_page": {
            "count": appearances.count(),
            "results": AppearanceSerializer(appearances[:APPEARANCES_SHOWN], many=True).data,
        },
        "page_size": APPEARANCES_SHOWN,
        "blocked_handles": sorted(
            Block.objects.filter(blocker=user).values_list("blocked__handle", flat=True)
        ),
    }
    return render(request, "cameos/appearances.html", context)


urlpatterns = [
    path("cameo/", my_cameo, name="my-cameo"),
    path("cameo/appearances/", my_appearances, name="cameo-appearances"),
]
