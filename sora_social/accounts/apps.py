from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "sora_social.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Registers the schema extension that describes bearer-key authentication.
        from sora_social.accounts.api import schema  # noqa: F401
