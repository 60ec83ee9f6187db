from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sora_social.accounts.actions import do_create_user, do_issue_api_key
from sora_social.accounts.models import User


class Command(BaseCommand):
    help = "Print a new /v1 API key for USERNAME (the user's handle), alone on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--create-user", action="store_true", help="create the user if missing")
        parser.add_argument("--name", default="issued by manage.py", help="a label for the key")

    def handle(self, *args: Any, **options: Any) -> None:
        handle = options["username"].lower()
        user = User.objects.filter(handle=handle).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"no user @{handle}; pass --create-user to create one")
            user = do_create_user(handle=handle, password=None)
        issued = do_issue_api_key(user, name=options["name"])
        self.stdout.write(issued.secret)
