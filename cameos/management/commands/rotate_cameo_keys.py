from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cameos.actions.erasure import do_rotate_reference_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every cameo reference image with the first key of CAMEO_ENCRYPTION_KEYS. "
        "Run after putting a new key first; drop the old key once this reports 0 left."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = do_rotate_reference_keys()
        self.stdout.write(f"re-encrypted {rotated} reference images with the current key")
