from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from cameos.faces import check_engine_configuration, get_engine


class Command(BaseCommand):
    help = "Load the configured face engine (FACE_ENGINE, FACE_MODEL_DIR) or say what is wrong."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            check_engine_configuration()
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        engine = get_engine()
        self.stdout.write(f"face engine {engine.id}: {engine.dimension}-d, {engine.metric}")
