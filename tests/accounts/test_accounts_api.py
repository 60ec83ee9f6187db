"""Sign-up, login and API keys for the mobile app and developers."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from generation.models import VideoJob
from sora_social.accounts.actions import hash_secret
from sora_social.accounts.models import ApiKey, User
from sora_social.redis import redis_client
from tests.conftest import Member

pytestmark = pytest.mark.django_db


def _bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_signup_returns_a_token_that_authenticates_the_app() -> None:
    response = APIClient().post(
        "/api/auth/signup",
        {"handle": "Maya", "password": "a long passphrase 42", "birth_date": "2010-05-01"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["user"]["handle"] == "maya"
    me = _bearer(response.json()["token"]).get("/api/me")
    assert me.json()["handle"] == "maya"
    assert User.objects.get(handle="maya").is_minor is True


def test_signup_refuses_a_taken_handle_and_a_weak_password(alice: Member) -> None:
    taken = APIClient().post(
        "/api/auth/signup", {"handle": "alice", "password": "another long one 99"}, format="json"
    )
    weak = APIClient().post(
        "/api/auth/signup", {"handle": "newbie", "password": "123"}, format="json"
    )

    assert taken.status_code == weak.status_code == 400
    assert taken.json() == {
        "error": {
            "code": "invalid",
            "message": "handle: This handle is taken.",
            "fields": {"handle": ["This handle is taken."]},
        }
    }
    assert weak.json()["error"]["code"] == "invalid"
    assert "This password is too short" in weak.json()["error"]["message"]
    assert User.objects.count() == 1


def test_login_and_logout_issue_and_revoke_a_session_token(alice: Member) -> None:
    wrong = APIClient().post(
        "/api/auth/login", {"handle": "alice", "password": "nope"}, format="json"
    )
    login = APIClient().post(
        "/api/auth/login",
        {"handle": "ALICE", "password": "correct horse battery staple"},
        format="json",
    )
    token = login.json()["token"]
    logout = _bearer(token).post("/api/auth/logout")

    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": {"code": "invalid_credentials", "message": "Wrong handle or password."}
    }
    assert login.status_code == 200
    assert logout.status_code == 204
    assert _bearer(token).get("/api/me").status_code == 401


def test_an_api_key_is_shown_once_stored_hashed_listed_and_revocable(alice: Member) -> None:
    client = _bearer(alice.key)

    created = client.post("/api/keys", {"name": "ci"}, format="json").json()
    listed = client.get("/api/keys").json()
    secret = created["key"]

    assert secret.startswith("sk-ss-")
    assert ApiKey.objects.filter(secret_hash=hash_secret(secret)).count() == 1
    assert not ApiKey.objects.filter(secret_hash=secret).exists()
    assert all("key" not in item for item in listed)
    assert {item["name"] for item in listed} == {"tests", "ci"}
    assert client.delete(f"/api/keys/{created['id']}").status_code == 204
    assert _bearer(secret).get("/api/me").status_code == 401
    assert client.get("/api/keys").json()[0]["revoked_at"] is not None


def test_another_users_key_cannot_be_revoked(alice: Member, bob: Member) -> None:
    bobs_key = ApiKey.objects.get(user=bob.user)

    response = _bearer(alice.key).delete(f"/api/keys/{bobs_key.pk}")

    assert response.status_code == 404
    bobs_key.refresh_from_db()
    assert bobs_key.revoked_at is None


def test_issue_api_key_prints_only_the_key(db: None) -> None:
    stdout = io.StringIO()

    call_command("issue_api_key", "ops", "--create-user", stdout=stdout)

    secret = stdout.getvalue().strip()
    assert secret.count("\n") == 0 and secret.startswith("sk-ss-")
    assert ApiKey.objects.get(secret_hash=hash_secret(secret)).user.handle == "ops"


@override_settings(CREATE_RATE_LIMIT_PER_MINUTE=3)
def test_creates_are_rate_limited_per_key(
    alice: Member, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    for key in redis_client().scan_iter("ratelimit:*"):
        redis_client().delete(key)
    client = _bearer(alice.key)

    with django_capture_on_commit_callbacks() as callbacks:
        statuses = [
            client.post("/v1/videos", {"prompt": f"n{number}"}, format="multipart").status_code
            for number in range(5)
        ]
    limited = client.post("/v1/videos", {"prompt": "again"}, format="multipart")

    assert statuses == [200, 200, 200, 429, 429]
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited["Retry-After"]) > 0
    assert VideoJob.objects.count() == 3
    assert len(callbacks) == 3  # three jobs, one live event each (their messages go by NOTIFY)


def test_signup_refuses_a_handle_shorter_than_three_characters() -> None:
    response = APIClient().post(
        "/api/auth/signup", {"handle": "ab", "password": "a long passphrase 42"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert list(response.json()["error"]["fields"]) == ["handle"]
    assert User.objects.count() == 0


def test_follows_and_blocks_by_handle(alice: Member, bob: Member) -> None:
    from sora_social.accounts.models import Block, Follow

    client = _bearer(alice.key)

    assert client.put("/api/follows/@bob").status_code == 204
    assert client.put("/api/follows/bob").status_code == 204  # twice is once
    assert Follow.objects.filter(follower=alice.user, followee=bob.user).count() == 1
    assert client.put("/api/follows/alice").status_code == 400
    assert client.put("/api/follows/nobody_at_all").status_code == 404
    _bearer(bob.key).put("/api/follows/alice")
    assert client.put("/api/blocks/bob").status_code == 204
    assert Block.objects.filter(blocker=alice.user, blocked=bob.user).exists()
    # A blocked person stops following the blocker.
    assert not Follow.objects.filter(follower=bob.user, followee=alice.user).exists()
    assert client.delete("/api/blocks/bob").status_code == 204
    assert client.delete("/api/follows/bob").status_code == 204
    assert Block.objects.count() == 0
    assert Follow.objects.count() == 0
