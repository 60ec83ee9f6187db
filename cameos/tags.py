"""`@handle` and `@id` tags in a prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TAGS_PER_VIDEO = 3

# An @ that does not follow a word character (so "mail@example.com" is no tag). Handles may
# hold dots but not end with one, so "with @maya." tags "maya"; ids ("char_...") fit too.
_TAG = re.compile(r"(?<![\w@])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,38}[A-Za-z0-9_])?)")


@dataclass(frozen=True)
class Tag:
    text: str  # lowercased, without the '@'
    position: int  # 1-based order of first appearance


def find_tags(prompt: str) -> list[Tag]:
    """Distinct tags in order of first appearance."""
    seen: dict[str, Tag] = {}
    for match in _TAG.finditer(prompt):
        text = match.group(1).lower()
        if text not in seen:
            seen[text] = Tag(text=text, position=len(seen) + 1)
    return list(seen.values())
