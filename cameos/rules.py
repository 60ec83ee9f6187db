"""A cameo owner's rules in plain words ("no political content") checked against a prompt.

Each rule is read as a prohibition of a topic. A prompt breaks the rule when it names the topic's
words (keyword match, after light stemming) or when a sentence model finds it close in meaning
to the topic (semantic match): "no politics" refuses "a speech at a campaign rally".

Rule text is user input, bounded by MAX_RULES and MAX_RULE_CHARACTERS; `validate_rules` is what the
API calls when an owner saves rules. `check_prompt_against_rules` runs in the request gate, in the
web process: rules' vectors are cached per process, so a check embeds only the prompt.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import numpy as np

from cameos.sentences import FloatArray, get_sentence_encoder

MAX_RULES = 10
MAX_RULE_CHARACTERS = 200
# A prompt breaks a rule semantically when its similarity to the rule's topic is this many
# standard deviations above the topic's similarity to ordinary prompts (BACKGROUND_PROMPTS).
# Raw cosine similarities don't compare across rules: "alcohol" is 0.37 from "drinking orange
# juice", "saying anything about my employer" only 0.27 from "the company I work for is going
# bankrupt". Calibrated on tests/cameos/rule_cases.json: see tests/cameos/test_rules.py.
SEMANTIC_THRESHOLD = 3.3
# Keeps a topic that is equally close to every ordinary prompt from dividing by nearly zero.
MIN_BACKGROUND_SPREAD = 0.03
# A long prompt is embedded whole (the model reads its first 256 word pieces) and as at most
# this many clause groups, so the cost of a check stays bounded.
MAX_PROMPT_CLAUSES = 16
# A clause of fewer words is joined to its neighbour. Short texts land close to short topics by
# chance: with 3, "her friends cheer" scored 3.4 against "kissing anyone" (5 of 30 ordinary
# prompts refused against five rules); with 5, none, and the labelled figures are unchanged.
MIN_CLAUSE_WORDS = 5
RULE_VECTOR_CACHE_SIZE = 4096


class RuleTextError(ValueError):
    """A rule the owner must rephrase; the message says why, in terms the owner understands."""


class MatchKind(StrEnum):
    KEYWORD = "keyword"
    SEMANTIC = "semantic"


@dataclass(frozen=True)
class ParsedRule:
    """What a rule forbids.

    `topic` is the rule without its negation ("political content"). `alternatives` are the
    topic's parts when it lists several ("guns or weapons" -> "guns", "weapons"), else just the
    topic. `keywords` holds, per alternative, the stems that must all appear in a prompt.
    """

    text: str
    topic: str
    alternatives: tuple[str, ...]
    keywords: tuple[frozenset[str], ...]
    is_prohibition: bool


@dataclass(frozen=True)
class RuleDecision:
    """The verdict on one prompt.

    When refused, `rule_index` and `rule_text` name the rule (for the owner's eyes only),
    `matched_words` the prompt's words a keyword match found. `score` and `scores` (one per
    rule, in order) are semantic scores: standard deviations above the rule's similarity to
    ordinary prompts; SEMANTIC_THRESHOLD or more refuses.
    """

    is_allowed: bool
    rule_index: int | None = None
    rule_text: str | None = None
    match_kind: MatchKind | None = None
    matched_words: tuple[str, ...] = ()
    score: float | None = None
    scores: tuple[float, ...] = ()


# ---------------------------------------------------------------------------------------------
# Reading a rule

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
# Openers that make a rule a prohibition; tried repeatedly, so "please never ever" also works.
_NEGATION = re.compile(
    r"^(?:"
    r"please|pls|kindly|absolutely|strictly|definitely|really|just|and|also|"
    r"i\s+(?:do\s+not|don'?t|never)\s+want(?:\s+to\s+(?:be|see)|\s+to)?|"
    r"i\s*(?:would|'d)\s+rather\s+not(?:\s+be)?|"
    r"never(?:\s+ever)?|no\s+more|no\s+one\s+may|nobody\s+(?:may|can|should)|no|"
    r"(?:do|does)\s+not|don'?t|doesn'?t|"
    r"(?:must|should|can|may|will)\s*not|mustn'?t|shouldn'?t|can'?t|cannot|won'?t|"
    r"nothing|not|avoid|without|zero|stop|ban|forbid|refrain\s+from"
    r")\b\s*"
)
_PROHIBITION_SUFFIX = re.compile(
    r"\s*\b(?:(?:is|are)\s+)?(?:not\s+allowed|off[- ]limits|forbidden|banned|prohibited|"
    r"not\s+ok(?:ay)?|a\s+no[- ]go)$"
)
# What a prohibition may wrap around its topic: "show me", "make me", "use my face for",
# "any", "videos of", "anything involving", "ever", "please".
_FRAME = re.compile(
    r"^(?:"
    r"ever|(?:make|have|let|get|show|depict|portray|film|record|put|place|use|see|render|"
    r"generate|feature|include|create|post|want)(?=\s)|shown|seen|portrayed|depicted|"
    r"me|my\s+(?:face|likeness|cameo|character|avatar|image|body|voice)|"
    r"in|as|for|with|being|be|to\s+be|to|doing|while|of|that\s+is|that's|involving|about|"
    r"related\s+to|showing|featuring|including|"
    r"any(?:thing|one)?|something|stuff|kinds?\s+of|types?\s+of|sorts?\s+of|content|"
    r"videos?|clips?|scenes?|footage|images?|pictures?|posts?"
    r")\b\s*"
)
_TRAILING = re.compile(
    r"\s*\b(?:please|thanks|thank\s+you|ever|at\s+all|of\s+any\s+kind|whatsoever|"
    r"in\s+(?:any|my)\s+(?:videos?|cameos?|clips?))$"
)
_LIST_SEPARATOR = re.compile(r"\s*(?:,|/|;|&|\bor\b|\bnor\b|\band\b)\s*")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words too general to be the thing a rule forbids: a keyword match needs the others.
_STOPWORDS = frozenset(
    """
    a an the this that these those of in on at to for with about from by as into onto like near
    around while during without within over under up down out off than then
    and or nor but so if when where how what which who whom whose why
    i me my mine myself you your yours he him his she her hers it its we us our they them their
    anyone anybody someone somebody everyone everybody anything something everything nothing
    one ones other others own
    be being been is are was were am do does did doing done have has had having
    will would should could can may might must shall get gets getting got go goes going
    content stuff thing things kind kinds type types sort sorts any some all every such
    related involving including videos video clips clip scenes scene images image pictures
    picture footage post posts cameo cameos likeness ever please very really just at
    show shows showing shown make makes making made
    """.split()
)
# (suffix, shortest stem it may leave), longest first, stripped repeatedly. "ion" keeps 4 letters
# so "onion" stays; a plural "s" may leave 2 so "ads" gives "ad".
_SUFFIXES = tuple(
    (suffix, {"ion": 4, "s": 2}.get(suffix, 3))
    for suffix in """
    ations ation ically ical ments ment ness ings ing ities ity ives ive ious ous ence ance ents
    ent ists ist isms ism ians ian ion ies ied ers er ed ly al ic es s e y
    """.split()
)
_VOWELS = frozenset("aeiou")


def normalize_rule_text(text: str) -> str:
    """Lowercase, straight apostrophes, single spaces, no closing punctuation."""
    text = " ".join(text.translate(_APOSTROPHES).lower().split())
    return text.strip(" .!?;:,\"'()")


def stem(word: str) -> str:
    """A light suffix stripper: "politics", "political" and "politician" all give "polit".

    Only ever compared with other stems from this function, so consistency matters more than
    linguistic accuracy.
    """
    changed = True
    while changed:
        changed = False
        for suffix, shortest_stem in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= shortest_stem:
                if suffix == "s" and word.endswith(("ss", "us", "is")):
                    continue
                if suffix == "ed" and word.endswith("eed"):
                    continue  # "bleed", "speed": the "ed" is the word's own
                word = word[: -len(suffix)]
                changed = True
                break
    if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in _VOWELS:
        word = word[:-1]  # "betting" -> "bett" -> "bet", like "bet"
    return word


def _content_words(text: str) -> list[str]:
    words = (word.split("'")[0] for word in _WORD.findall(text.lower()))  # "maya's" -> "maya"
    return [word for word in words if word not in _STOPWORDS]


def content_stems(text: str) -> frozenset[str]:
    """Stems of `text`'s words that are not stopwords."""
    return frozenset(stem(word) for word in _content_words(text))


def _strip_repeatedly(pattern: re.Pattern[str], text: str) -> tuple[str, bool]:
    stripped = False
    while True:
        shorter = pattern.sub("", text, count=1).strip()
        if shorter == text:
            return text, stripped
        text, stripped = shorter, True


def _strip_frame(text: str) -> str:
    text, _ = _strip_repeatedly(_FRAME, text)
    text, _ = _strip_repeatedly(_TRAILING, text)
    return text


@lru_cache(maxsize=RULE_VECTOR_CACHE_SIZE)
def parse_rule(text: str) -> ParsedRule:
    """Read one rule. Never raises: a rule that is not phrased as a prohibition keeps its whole
    text as the topic and `is_prohibition` False (validate_rules refuses those)."""
    normalized = normalize_rule_text(text)
    topic, has_negation = _strip_repeatedly(_NEGATION, normalized)
    topic, has_suffix = _strip_repeatedly(_PROHIBITION_SUFFIX, topic)
    topic = _strip_frame(topic)
    parts = [_strip_frame(part) for part in _LIST_SEPARATOR.split(topic)]
    alternatives = tuple(part for part in parts if content_stems(part))
    if len(alternatives) <= 1:
        alternatives = (topic,) if content_stems(topic) else ()
    return ParsedRule(
        text=text,
        topic=topic,
        alternatives=alternatives,
        keywords=tuple(content_stems(alternative) for alternative in alternatives),
        is_prohibition=(has_negation or has_suffix) and bool(alternatives),
    )


def validate_rules(rules: Sequence[str]) -> list[str]:
    """The rules an owner may save: whitespace collapsed, blank ones dropped. Raises
    RuleTextError naming the first rule that is too long or doesn't read as a prohibition."""
    cleaned = [" ".join(rule.split()) for rule in rules]
    cleaned = [rule for rule in cleaned if rule]
    if len(cleaned) > MAX_RULES:
        raise RuleTextError(f"At most {MAX_RULES} rules are allowed; got {len(cleaned)}.")
    for number, rule in enumerate(cleaned, start=1):
        if len(rule) > MAX_RULE_CHARACTERS:
            raise RuleTextError(
                f"Rule {number} is {len(rule)} characters long; at most {MAX_RULE_CHARACTERS} "
                "are allowed."
            )
        parsed = parse_rule(rule)
        if not parsed.alternatives:
            raise RuleTextError(f'Rule {number} ("{rule}") does not name anything to forbid.')
        if not parsed.is_prohibition:
            raise RuleTextError(
                f'Rule {number} ("{rule}") should say what is not allowed, for example '
                '"no alcohol" or "never show me smoking".'
            )
    return cleaned


# ---------------------------------------------------------------------------------------------
# Reading a prompt

_MENTION = re.compile(r"@([A-Za-z0-9_.]+)")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
_CLAUSE_BREAK = re.compile(
    r",\s*(?:and\s+then\s+|and\s+|then\s+)?|\s+(?:and\s+then|then|while|but)\s+"
)


def prompt_clauses(prompt: str) -> list[str]:
    """The prompt's sentences and comma clauses, short ones joined to their neighbour, in at
    most MAX_PROMPT_CLAUSES groups. A long prompt dilutes a short forbidden part; a clause
    doesn't."""
    clauses: list[str] = []
    for sentence in _SENTENCE_BREAK.split(prompt):
        for clause in _CLAUSE_BREAK.split(sentence):
            clause = clause.strip()
            if not clause:
                continue
            if clauses and (
                len(clause.split()) < MIN_CLAUSE_WORDS
                or len(clauses[-1].split()) < MIN_CLAUSE_WORDS
            ):
                clauses[-1] = f"{clauses[-1]}, {clause}"
            else:
                clauses.append(clause)
    if len(clauses) > MAX_PROMPT_CLAUSES:
        size = -(-len(clauses) // MAX_PROMPT_CLAUSES)
        clauses = [
            ", ".join(clauses[start : start + size]) for start in range(0, len(clauses), size)
        ]
    return clauses


def prompt_texts(prompt: str) -> list[str]:
    """The prompt as the model should read it, then its clauses if there are several."""
    # "@maya" -> "maya": the handle is a name, and the "@" only adds a word piece.
    prompt = " ".join(_MENTION.sub(r"\1", prompt).split())
    clauses = prompt_clauses(prompt)
    return [prompt, *clauses] if len(clauses) > 1 else [prompt]


# ---------------------------------------------------------------------------------------------
# Vectors of rules, cached per process

# Ordinary prompts that break no plausible rule: how close a topic is to these is its baseline.
# Not the calibration set's prompts, so the threshold isn't fitted to its own background.
BACKGROUND_PROMPTS = (
    "a person skateboarding down a hill at sunset",
    "someone baking a chocolate cake in a small kitchen",
    "a woman walking her dog through a snowy park",
    "a man playing guitar on a street corner",
    "two friends laughing on a park bench",
    "a person surfing a huge wave",
    "someone reading a newspaper at a cafe",
    "a girl dancing in the rain",
    "a person riding a horse across a meadow",
    "someone waving at the camera and saying hello",
    "a person cooking pasta and talking about the recipe",
    "a man jogging along the beach at dawn",
    "a woman painting a landscape on a canvas",
    "a person climbing a rock wall",
    "someone unboxing a new pair of headphones",
    "a person playing fetch with a golden retriever",
    "a family having a picnic by the lake",
    "someone doing a magic card trick",
    "a person riding a rollercoaster and screaming with joy",
    "a woman giving a tour of her apartment",
    "a man fixing a flat tire on his bike",
    "a person singing karaoke with friends",
    "someone planting flowers in a garden",
    "a person doing a backflip on a trampoline",
    "a chef chopping vegetables very fast",
    "a person walking through a busy market in Marrakesh",
    "someone playing basketball in the park",
    "a person knitting a scarf by the fire",
    "a woman explaining how a volcano works",
    "a man building a treehouse with his kids",
    "someone ice skating on a frozen pond",
    "a person taking a selfie at the Eiffel tower",
    "a student studying in a library late at night",
    "a person feeding goats on a farm",
    "someone playing the piano in an empty concert hall",
    "a person hiking up a mountain trail in the fog",
    "two people playing chess in the park",
    "someone opening birthday presents",
    "a person paddling a kayak down a river",
    "a woman doing a cartwheel on the beach",
    "a man telling a funny story at a wedding",
    "a person drinking coffee and watching the sunrise",
    "someone trying on hats in a shop",
    "a person juggling oranges",
    "a kid blowing out candles on a cake",
    "a person walking through a field of tulips",
    "someone driving a convertible along the coast",
    "a person recording a podcast in a studio",
)


class _VectorCache:
    """A bounded least-recently-used map from text to its unit vector, safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._vectors: OrderedDict[str, FloatArray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> FloatArray | None:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
            return vector

    def put(self, text: str, vector: FloatArray) -> None:
        vector.setflags(write=False)  # shared between requests
        with self._lock:
            self._vectors[text] = vector
            self._vectors.move_to_end(text)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


_rule_vectors = _VectorCache(RULE_VECTOR_CACHE_SIZE)


@lru_cache(maxsize=1)
def _background_vectors() -> FloatArray:
    """BACKGROUND_PROMPTS embedded once per process (~0.2 s)."""
    vectors = get_sentence_encoder().encode(list(BACKGROUND_PROMPTS))
    vectors.setflags(write=False)
    return vectors


def _embed(texts: list[str], topics: list[str]) -> tuple[FloatArray, FloatArray]:
    """Vectors of the prompt texts and of the topics, with uncached topics embedded in the same
    forward pass as the prompt: one pass costs ~10 ms of reading weights however short it is."""
    topic_vectors = {topic: _rule_vectors.get(topic) for topic in dict.fromkeys(topics)}
    missing = [topic for topic, vector in topic_vectors.items() if vector is None]
    vectors = get_sentence_encoder().encode(texts + missing)
    for offset, topic in enumerate(missing):
        vector = vectors[len(texts) + offset].copy()
        _rule_vectors.put(topic, vector)
        topic_vectors[topic] = vector
    found = [topic_vectors[topic] for topic in topics]
    stacked = (
        np.stack([vector for vector in found if vector is not None]) if topics else vectors[:0]
    )
    return vectors[: len(texts)], stacked


def _rule_topics(parsed: ParsedRule) -> list[str]:
    """What to compare a prompt with: the topic, and each alternative when it lists several."""
    if len(parsed.alternatives) > 1:
        return [parsed.topic, *parsed.alternatives]
    return list(parsed.alternatives)


def warm_up(rules: Sequence[str] = ()) -> None:
    """Load the model and background now, and embed `rules` (e.g. when an owner saves them), so
    that a later check only embeds its prompt."""
    _background_vectors()
    topics = [topic for rule in rules for topic in _rule_topics(parse_rule(rule))]
    if topics:
        _embed([], topics)


def clear_rule_cache() -> None:
    _rule_vectors.clear()


# ---------------------------------------------------------------------------------------------
# The check


def _semantic_score(topic_vectors: FloatArray, prompt_vectors: FloatArray) -> float:
    """How unusually close the prompt is to a rule, in standard deviations of the rule's
    closeness to BACKGROUND_PROMPTS. Both sides take the best of the rule's topics."""
    background = (topic_vectors @ _background_vectors().T).max(axis=0)
    similarity = float((topic_vectors @ prompt_vectors.T).max())
    spread = max(float(background.std()), MIN_BACKGROUND_SPREAD)
    return (similarity - float(background.mean())) / spread


def check_prompt_against_rules(prompt: str, rules: Sequence[str]) -> RuleDecision:
    """Whether `prompt` keeps every rule in `rules`, the rules of one cameo it tags.

    `rules` should have passed validate_rules (at most MAX_RULES of at most MAX_RULE_CHARACTERS).
    A rule not phrased as a prohibition is still enforced on its whole text. Keyword matches
    win over semantic ones; among several, the earliest keyword rule, else the highest score.
    Loads the sentence model on first use.
    """
    parsed_rules = [
        (index, parsed)
        for index, parsed in enumerate(parse_rule(rule) for rule in rules)
        if parsed.alternatives
    ]
    if not parsed_rules or not prompt.strip():
        return RuleDecision(is_allowed=True, scores=(0.0,) * len(rules))
    topics_per_rule = [_rule_topics(parsed) for _, parsed in parsed_rules]
    prompt_vectors, topic_vectors = _embed(
        prompt_texts(prompt), [topic for topics in topics_per_rule for topic in topics]
    )
    # A rule with nothing to compare (no words left once its negation is read) scores 0.
    scores = [0.0] * len(rules)
    row = 0
    for (index, _), topics in zip(parsed_rules, topics_per_rule, strict=True):
        scores[index] = _semantic_score(topic_vectors[row : row + len(topics)], prompt_vectors)
        row += len(topics)

    prompt_stems = content_stems(prompt)
    for index, parsed in parsed_rules:
        for keywords in parsed.keywords:
            if keywords and keywords <= prompt_stems:
                return RuleDecision(
                    is_allowed=False,
                    rule_index=index,
                    rule_text=rules[index],
                    match_kind=MatchKind.KEYWORD,
                    matched_words=tuple(
                        dict.fromkeys(
                            word for word in _content_words(prompt) if stem(word) in keywords
                        )
                    ),
                    score=scores[index],
                    scores=tuple(scores),
                )
    best = max(range(len(rules)), key=scores.__getitem__)
    if scores[best] >= SEMANTIC_THRESHOLD:
        return RuleDecision(
            is_allowed=False,
            rule_index=best,
            rule_text=rules[best],
            match_kind=MatchKind.SEMANTIC,
            score=scores[best],
            scores=tuple(scores),
        )
    return RuleDecision(is_allowed=True, scores=tuple(scores))
