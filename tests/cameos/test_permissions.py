"""Who may use a cameo: `can_use_cameo`, the one function every path asks."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from cameos.actions.owner import do_decide_access
from cameos.models import Cameo, CameoAccess
from cameos.permissions import can_use_cameo
from sora_social.accounts.actions import do_block, do_follow
from tests.cameos.cameos import registered_cameo
from tests.conftest import Member

pytestmark = pytest.mark.django_db


def _with_audience(cameo: Cameo, audience: str) -> Cameo:
    Cameo.objects.filter(pk=cameo.pk).update(audience=audience)
    return Cameo.objects.select_related("owner").get(pk=cameo.pk)


def test_only_the_owner_may_use_a_new_cameo(alice: Member, bob: Member) -> None:
    cameo = registered_cameo(alice.user)

    assert can_use_cameo(alice.user, cameo).is_allowed
    assert can_use_cameo(alice.user, cameo).reason == "owner"
    assert not can_use_cameo(bob.user, cameo).is_allowed
    assert can_use_cameo(bob.user, cameo).reason == "only_me"


def test_approved_people_may_use_it_and_others_may_not(
    alice: Member, bob: Member, charlie: Member
) -> None:
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.APPROVED)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)

    assert can_use_cameo(bob.user, cameo).reason == "approved"
    assert not can_use_cameo(charlie.user, cameo).is_allowed
    assert can_use_cameo(charlie.user, cameo).reason == "not_approved"


def test_mutual_followers_need_both_follows(alice: Member, bob: Member) -> None:
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.MUTUALS)
    do_follow(bob.user, alice.user)

    assert can_use_cameo(bob.user, cameo).reason == "not_mutuals"
    do_follow(alice.user, bob.user)
    assert can_use_cameo(bob.user, cameo).is_allowed
    assert can_use_cameo(bob.user, cameo).reason == "mutuals"


def test_a_denial_beats_the_everyone_audience(alice: Member, bob: Member, charlie: Member) -> None:
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.EVERYONE)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.DENIED)

    assert can_use_cameo(bob.user, cameo).reason == "denied"
    assert can_use_cameo(charlie.user, cameo).reason == "everyone"


def test_a_blocked_person_is_refused_even_when_approved(alice: Member, bob: Member) -> None:
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.EVERYONE)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)
    do_block(alice.user, bob.user)

    decision = can_use_cameo(bob.user, cameo)
    assert not decision.is_allowed
    assert decision.reason == "blocked"


def test_a_minors_cameo_is_usable_only_by_people_they_approved(
    alice: Member, bob: Member, charlie: Member
) -> None:
    alice.user.birth_date = timezone.now().date() - datetime.timedelta(days=15 * 365)
    alice.user.save(update_fields=["birth_date"])
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.EVERYONE)
    do_decide_access(alice.user, cameo.pk, bob.user, CameoAccess.Decision.APPROVED)

    assert can_use_cameo(bob.user, cameo).is_allowed
    assert can_use_cameo(charlie.user, cameo).reason == "minor_requires_approval"


@pytest.mark.parametrize("status", [Cameo.Status.REVOKED, Cameo.Status.IN_REVIEW,
                                    Cameo.Status.FAILED, Cameo.Status.CHECKING])
def test_a_cameo_that_is_not_verified_is_usable_by_nobody(
    alice: Member, bob: Member, status: str
) -> None:
    cameo = _with_audience(registered_cameo(alice.user), Cameo.Audience.EVERYONE)
    Cameo.objects.filter(pk=cameo.pk).update(status=status)
    cameo.refresh_from_db()

    assert can_use_cameo(alice.user, cameo).reason == "unavailable"
    assert can_use_cameo(bob.user, cameo).reason == "unavailable"
