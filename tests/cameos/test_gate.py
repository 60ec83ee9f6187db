"""Tags in prompts at the request gate: resolved, checked, recorded, or refused with nothing
created and nothing charged."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from cameos.actions.owner import do_decide_access
from cameos.gate import check_cameo_tags
from cameos.models import Appearance, Cameo, CameoAccess, CameoEvent
from generation.actions.requests import GenerationRequest
from generation.models import DailyGenerationUsage, VideoJob
from sora_social.accounts.actions import do_block
from tests.cameos.cameos import registered_cameo
from tests.conftest import Member

pytestmark = pytest.mark.django_db


def _create(member: Member, prompt: str) -> tuple[int, dict]:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {member.key}")
    response = client.post("/v1/videos", {"prompt": prompt}, format="json")
    return response.status_code, response.json()


def _assert_refused(status: int, body: dict, *, code: str, handle: str) -> None:
    assert status == (403 if code == "cameo_permission_denied" else 400), body
    assert body["error"]["code"] == code
    assert body["error"]["param"] == "prompt"
    assert f"@{handle}" in body["error"]["message"]
    assert VideoJob.objects.count() == 0
    assert not DailyGenerationUsage.objects.filter(used__gt=0).exists()
    assert Appearance.objects.count() == 0


def _refusals(cameo: Cameo) -> list[tuple[str, str]]:
    return list(
        CameoEvent.objects.filter(cameo=cameo, kind=CameoEvent.Kind.USE_REFUSED)
        .order_by("pk")
        .values_list("actor__handle", "reason")
    )


def test_the_owner_tags_their_own_cameo(alice: Member) -> None:
    cameo = registered_cameo(alice.user)

    status, body = _create(alice, "@alice skateboarding at dusk")

    assert status == 200, body
    appearance = Appearance.objects.get()
    assert (appearance.video_id, appearance.cameo_id) == (body["id"], cameo.pk)
    assert appearance.source == Appearance.Source.TAGGED
    assert appearance.tag_position == 1
    assert appearance.consent_decision == Appearance.ConsentDecision.ALLOWED
    assert appearance.consent_reason == "owner"
    assert CameoEvent.objects.filter(
        cameo=cameo, kind=CameoEvent.Kind.USE_ALLOWED, video_id=body["id"]
    ).count() == 1


def test_an_approved_friend_may_tag_and_a_stranger_is_refused_and_recorded(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)

    status, body = _create(charlie, 'a picnic with @alice, she says "hello"')
    _assert_refused(status, body, code="cameo_permission_denied", handle="alice")
    assert _refusals(cameo) == [("charlie", "not_approved")]

    status, body = _create(bob, 'a picnic with @alice, she says "hello"')
    assert status == 200, body
    assert Appearance.objects.get(video_id=body["id"]).consent_reason == "approved"


def test_every_reason_gets_the_same_refusal(alice: Member, bob: Member, charlie: Member) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.EVERYONE)
    do_block(alice.user, bob.user)
    do_decide_access(alice.user, cameo.pk, charlie.user, CameoAccess.Decision.DENIED)

    blocked = _create(bob, "@alice dancing")
    denied = _create(charlie, "@alice dancing")
    unknown = _create(charlie, "@nobody_here dancing")

    for status, body in (blocked, denied):
        _assert_refused(status, body, code="cameo_permission_denied", handle="alice")
    _assert_refused(*unknown, code="cameo_permission_denied", handle="nobody_here")
    assert blocked[1]["error"]["message"] == denied[1]["error"]["message"]
    assert _refusals(cameo) == [("bob", "blocked"), ("charlie", "denied")]


def test_a_revoked_cameo_is_refused_and_its_owner_sees_the_attempt(
    alice: Member, bob: Member
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.EVERYONE)
    Cameo.objects.filter(pk=cameo.pk).update(status=Cameo.Status.REVOKED)

    status, body = _create(bob, "@alice at the beach")

    _assert_refused(status, body, code="cameo_permission_denied", handle="alice")
    assert _refusals(cameo) == [("bob", "unavailable")]


def test_more_than_three_tags_are_refused(alice: Member) -> None:
    registered_cameo(alice.user)

    status, body = _create(alice, "@alice with @b0b, @carl and @dana")

    assert status == 400, body
    assert body["error"]["code"] == "too_many_cameos"
    assert VideoJob.objects.count() == 0


def test_an_email_address_is_not_a_tag(alice: Member) -> None:
    status, body = _create(alice, "a postcard to mail@alice.example")

    assert status == 200, body
    assert Appearance.objects.count() == 0


def test_a_rule_breaking_prompt_is_refused_without_naming_the_rule(
    alice: Member, bob: Member
) -> None:
    cameo = registered_cameo(
        alice.user, audience=Cameo.Audience.EVERYONE, rules=["no political content"]
    )

    status, body = _create(bob, "@alice giving a speech at a campaign rally for a senator")

    assert status == 400, body
    assert body["error"]["code"] == "cameo_rule_violated"
    assert "political" not in body["error"]["message"]
    assert VideoJob.objects.count() == 0
    assert _refusals(cameo) == [("bob", "rule")]
    assert CameoEvent.objects.get(kind=CameoEvent.Kind.USE_REFUSED).details["rule"] == (
        "no political content"
    )
    status, body = _create(bob, "@alice feeding ducks at the pond")
    assert status == 200, body


def test_a_remix_re_checks_the_source_cameos_for_the_remixer(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = registered_cameo(alice.user, audience=Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    status, body = _create(bob, "@alice juggling")
    assert status == 200, body
    source = VideoJob.objects.get(pk=body["id"])

    remix = GenerationRequest(prompt="make it rain", model="sora-2", seconds=4, width=720,
                              height=1280, remixed_from=source)
    decision = check_cameo_tags(bob.user, remix)
    assert decision is not None
    assert [declared.cameo.pk for declared in decision.declared] == [cameo.pk]
    with pytest.raises(Exception, match="@alice") as refusal:
        check_cameo_tags(charlie.user, remix)
    assert getattr(refusal.value, "code", None) == "cameo_permission_denied"
