"""The consent notice a person reads and agrees to before recording their cameo.

Changing what it says means a new NOTICE_VERSION: agreements record the version they were
given to, so an old agreement is never mistaken for consent to new terms.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

NOTICE_VERSION = "2026-11-29"


def consent_notice() -> dict[str, Any]:
    months = settings.CAMEO_RETENTION_MONTHS
    return {
        "version": NOTICE_VERSION,
        "title": "Your cameo: what we keep, why, and how you stay in control",
        "sections": [
            {
                "heading": "What is stored",
                "text": (
                    "You record a short video saying three digits and turning your head. We "
                    "check it on our servers and then delete the recording. We keep only a few "
                    "still crops of your face, encrypted, and numbers computed from them (face "
                    "embeddings) that let us recognise your face in generated videos."
                ),
            },
            {
                "heading": "Why",
                "text": (
                    "To put your face in videos you and the people you allow make, and to find "
                    "your face in every video generated here, so that nobody can use your "
                    "likeness without your consent and you can see and remove every such video."
                ),
            },
            {
                "heading": "How long",
                "text": (
                    f"Until you revoke your cameo, or until it has not been used for {months} "
                    "months; then the face crops and embeddings are erased. A record that your "
                    "cameo existed, your consent and the list of its uses (without any face "
                    "data) are kept for your audit log."
                ),
            },
            {
                "heading": "Who can use it",
                "text": (
                    "Only you, until you choose otherwise: people you approve, mutual "
                    "followers, or everyone. You can deny or block anyone, and write rules "
                    "(for example 'no political content') that every prompt is checked "
                    "against. Every use and every refused attempt is shown to you."
                ),
            },
            {
                "heading": "How to revoke",
                "text": (
                    "Revoke your cameo at any time in the app or on the web. Videos being made "
                    "with it are cancelled, videos that contain it are withdrawn, and its face "
                    "data is erased; you receive a receipt listing what was erased."
                ),
            },
        ],
    }
