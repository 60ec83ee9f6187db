"""Cameo owners' rules against prompts, with the real sentence model (no torch, no mocks).

The numpy encoder is checked against vectors the real sentence-transformers 6.2.0 computed
(minilm_reference.json). The labelled cases (rule_cases.json) chose SEMANTIC_THRESHOLD = 3.3:
on the 136 calibration cases it gives precision 0.875 and recall 0.959 (70 refused rightly,
10 wrongly, 3 missed); on the 52 holdout cases, written before their first run and never used
for tuning, precision 0.79 and recall 0.88. Eight of the ten wrong calibration refusals are
keyword matches of a rule's word in another sense ("a smoking hot barbecue" under "do not show
me smoking"): by design, an owner's own words are honoured literally. None of 30 ordinary
multi-clause prompts is refused under the five rules of the product brief.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cameos.rules import (
    MAX_RULE_CHARACTERS,
    MAX_RULES,
    SEMANTIC_THRESHOLD,
    MatchKind,
    RuleDecision,
    RuleTextError,
    check_prompt_against_rules,
    parse_rule,
    validate_rules,
)
from cameos.sentences import EMBEDDING_DIMENSION, get_sentence_encoder

HERE = Path(__file__).resolve().parent
MAYAS_RULES = [
    "no political content",
    "never make me say anything about my employer",
    "no alcohol",
    "nothing violent",
    "don't show me kissing anyone",
]


def _load(name: str) -> Any:
    return json.loads((HERE / name).read_text())


# --- The encoder ------------------------------------------------------------------------------


def test_the_numpy_encoder_matches_sentence_transformers() -> None:
    reference = _load("minilm_reference.json")
    texts = [case["text"] for case in reference["cases"]]
    expected = np.array([case["vector"] for case in reference["cases"]], dtype=np.float32)

    vectors = get_sentence_encoder().encode(texts)

    assert vectors.shape == (20, EMBEDDING_DIMENSION)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * expected).sum(axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.9999, dict(zip(texts, cosines.round(6), strict=True))


def test_one_at_a_time_gives_the_same_vectors_as_a_batch() -> None:
    texts = ["a cat", '@maya skateboarding down a hill, she says "watch this"', "No politics."]
    encoder = get_sentence_encoder()

    one_at_a_time = np.concatenate([encoder.encode([text]) for text in texts])

    np.testing.assert_allclose(one_at_a_time, encoder.encode(texts), atol=1e-5)


def test_it_reads_only_the_first_256_word_pieces() -> None:
    encoder = get_sentence_encoder()
    long_text = "the owner of this cameo walks along a beach at dawn. " * 40

    assert len(encoder.tokenizer.encode(long_text).ids) == 256
    np.testing.assert_allclose(
        encoder.encode([long_text]),
        encoder.encode([long_text + " she fights a dragon."]),
        atol=1e-6,
    )


def test_no_texts_give_no_vectors() -> None:
    assert get_sentence_encoder().encode([]).shape == (0, EMBEDDING_DIMENSION)


# --- Reading rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "alternatives"),
    [
        ("no political content", ("political content",)),
        ("never make me say anything about my employer", ("say anything about my employer",)),
        ("don't show me kissing anyone", ("kissing anyone",)),
        ("Do not show me smoking.", ("smoking",)),
        ("avoid anything sexual", ("sexual",)),
        ("nothing violent", ("violent",)),
        ("Don\u2019t put me in a swimsuit", ("a swimsuit",)),
        ("I don't want to be shown drunk", ("drunk",)),
        ("Political content is off-limits", ("political content",)),
        ("no guns or weapons", ("guns", "weapons")),
    ],
)
def test_it_reads_what_a_rule_forbids(rule: str, alternatives: tuple[str, ...]) -> None:
    parsed = parse_rule(rule)

    assert parsed.is_prohibition
    assert parsed.alternatives == alternatives


def test_it_stems_a_rules_words_like_the_prompts() -> None:
    assert parse_rule("no politics").keywords == parse_rule("nothing political").keywords


def test_owners_may_save_up_to_the_limits() -> None:
    rules = [
        f"no  topic {number} " + "x" * (MAX_RULE_CHARACTERS - 11) for number in range(MAX_RULES)
    ]

    cleaned = validate_rules([*rules, "   "])

    assert cleaned == [rule.replace("  ", " ") for rule in rules]
    assert {len(rule) for rule in cleaned} == {MAX_RULE_CHARACTERS}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (["no alcohol"] * (MAX_RULES + 1), f"At most {MAX_RULES} rules"),
        (["no " + "a" * MAX_RULE_CHARACTERS], f"at most {MAX_RULE_CHARACTERS}"),
        (["never"], "does not name anything to forbid"),
        (["keep it family friendly"], "should say what is not allowed"),
    ],
)
def test_owners_cannot_save_rules_that_break_the_limits_or_forbid_nothing(
    rules: list[str], message: str
) -> None:
    with pytest.raises(RuleTextError, match=message):
        validate_rules(rules)


# --- Checking prompts -------------------------------------------------------------------------


def test_a_prompt_with_a_rules_own_words_is_refused_by_keyword() -> None:
    decision = check_prompt_against_rules("@maya pours alcohol into a punch bowl", ["no alcohol"])

    assert not decision.is_allowed
    assert (decision.rule_index, decision.rule_text) == (0, "no alcohol")
    assert decision.match_kind == MatchKind.KEYWORD
    assert decision.matched_words == ("alcohol",)


def test_an_inflected_form_of_a_rules_word_is_a_keyword_match() -> None:
    decision = check_prompt_against_rules("a clip full of Violence", ["nothing violent"])

    assert decision.match_kind == MatchKind.KEYWORD
    assert decision.matched_words == ("violence",)


def test_a_word_that_only_shares_letters_with_a_rules_word_is_no_keyword_match() -> None:
    decision = check_prompt_against_rules(
        "@maya playing the violin on a rooftop", ["nothing violent"]
    )

    assert decision.is_allowed


@pytest.mark.parametrize(
    ("rule", "prompt"),
    [
        ("no politics", "@maya giving a speech at a campaign rally for the senator"),
        ("no alcohol", "@maya drinking three pints of beer at a pub"),
        ("nothing violent", "@maya punches a man in the face and blood sprays everywhere"),
        ("don't show me kissing anyone", "@maya making out with a guy in the back of a car"),
        (
            "never make me say anything about my employer",
            '@maya announces "the company I work for is going bankrupt"',
        ),
    ],
)
def test_a_paraphrase_without_the_rules_words_is_refused_semantically(
    rule: str, prompt: str
) -> None:
    decision = check_prompt_against_rules(prompt, [rule])

    assert not decision.is_allowed
    assert decision.match_kind == MatchKind.SEMANTIC
    assert decision.matched_words == ()
    assert decision.score is not None and decision.score >= SEMANTIC_THRESHOLD


@pytest.mark.parametrize(
    "prompt",
    [
        '@maya skateboarding down a hill at sunset, she says "watch this"',
        "@maya baking sourdough bread in a sunny kitchen",
        "@maya reading a bedtime story to a puppy",
        '@maya says "good morning" and waves at the camera',
        "@maya playing the violin on a rooftop",
    ],
)
def test_an_innocent_prompt_keeps_every_rule(prompt: str) -> None:
    decision = check_prompt_against_rules(prompt, MAYAS_RULES)

    assert decision.is_allowed
    assert decision.rule_index is None
    assert len(decision.scores) == len(MAYAS_RULES)
    assert max(decision.scores) < SEMANTIC_THRESHOLD


@pytest.mark.parametrize(
    ("prompt", "rule_index"),
    [
        ("@maya stabbing someone with a knife in a dark alley", 3),
        ("@maya complains about her job and her coworkers at the office", 1),
        ("@maya doing tequila shots at a nightclub", 2),
        ("@maya debating immigration policy with a congressman on live TV", 0),
        ("@maya kisses a stranger at midnight", 4),
    ],
)
def test_among_several_rules_it_names_the_one_broken(prompt: str, rule_index: int) -> None:
    decision = check_prompt_against_rules(prompt, MAYAS_RULES)

    assert not decision.is_allowed
    assert decision.rule_index == rule_index
    assert decision.rule_text == MAYAS_RULES[rule_index]


def test_a_forbidden_clause_late_in_a_long_prompt_is_found() -> None:
    prompt = (
        "@maya walks through the old town market on a sunny morning, chats with a vendor about "
        "heirloom tomatoes, buys a loaf of bread and some cheese, feeds the pigeons in the "
        "square, waves to a neighbour across the street, and then she lights a cigarette "
        "outside the bakery."
    )

    decision = check_prompt_against_rules(prompt, ["do not show me smoking"])

    assert not decision.is_allowed
    assert decision.match_kind == MatchKind.SEMANTIC


def test_no_rules_allow_any_prompt() -> None:
    decision = check_prompt_against_rules("@maya doing tequila shots at a nightclub", [])

    assert decision.is_allowed
    assert decision.scores == ()


@pytest.fixture(scope="module")
def labelled() -> dict[str, list[tuple[dict[str, Any], RuleDecision]]]:
    """Every labelled case with its decision, checked once for the tests below."""
    return {
        name: [(case, check_prompt_against_rules(case["prompt"], [case["rule"]])) for case in cases]
        for name, cases in _load("rule_cases.json").items()
        if name in ("calibration", "holdout")
    }


def _precision_and_recall(
    decisions: list[tuple[dict[str, Any], RuleDecision]],
) -> tuple[float, float]:
    refused = [case["refuse"] for case, decision in decisions if not decision.is_allowed]
    should_refuse = sum(case["refuse"] for case, _ in decisions)
    return sum(refused) / len(refused), sum(refused) / should_refuse


def test_the_labelled_calibration_cases_stay_above_their_floor(
    labelled: dict[str, list[tuple[dict[str, Any], RuleDecision]]],
) -> None:
    precision, recall = _precision_and_recall(labelled["calibration"])

    assert len(labelled["calibration"]) == 136
    assert precision >= 0.85, (precision, recall)
    assert recall >= 0.93, (precision, recall)


def test_the_labelled_holdout_cases_stay_above_their_floor(
    labelled: dict[str, list[tuple[dict[str, Any], RuleDecision]]],
) -> None:
    precision, recall = _precision_and_recall(labelled["holdout"])

    assert len(labelled["holdout"]) == 52
    assert precision >= 0.75, (precision, recall)
    assert recall >= 0.85, (precision, recall)


def test_paraphrase_cases_share_no_keyword_with_their_rule(
    labelled: dict[str, list[tuple[dict[str, Any], RuleDecision]]],
) -> None:
    """Otherwise the labelled set would credit the semantic match with keyword refusals."""
    paraphrases = [
        (case, decision)
        for decisions in labelled.values()
        for case, decision in decisions
        if case["kind"] == "paraphrase"
    ]

    keyword_matched = [
        case["prompt"] for case, decision in paraphrases if decision.match_kind == MatchKind.KEYWORD
    ]

    assert len(paraphrases) > 50
    assert keyword_matched == []


def test_ordinary_prompts_are_not_refused_under_the_briefs_rules() -> None:
    data = _load("rule_cases.json")

    refused = [
        (prompt, decision.rule_text, decision.score)
        for prompt in data["ordinary"]
        if not (decision := check_prompt_against_rules(prompt, data["ordinary_rules"])).is_allowed
    ]

    assert data["ordinary_rules"] == MAYAS_RULES
    assert len(data["ordinary"]) == 30
    assert refused == []
