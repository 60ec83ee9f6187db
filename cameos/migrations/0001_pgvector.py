from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """Likeness embeddings live in pgvector columns; the extension is there from the start."""

    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [VectorExtension()]
