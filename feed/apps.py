from django.apps import AppConfig


class FeedConfig(AppConfig):
    """Posts, follows, likes, comments and remix lineage: built in a later stage."""

    name = "feed"
