"""The owner's cameo page: consent, the recording with its live check, settings and audit."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from cameos.actions.owner import cameo_access_list, cameo_events
from cameos.actions.registration import live_person_cameo
from cameos.api.serializers import (
    CameoAccessSerializer,
    CameoEventSerializer,
    CameoSerializer,
    ChallengeSerializer,
)
from cameos.consent import consent_notice
from cameos.models import Cameo
from sora_social.accounts.authentication import request_user

EVENTS_SHOWN = 100


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
    }
    return render(request, "cameos/cameo.html", context)


urlpatterns = [path("cameo/", my_cameo, name="my-cameo")]
