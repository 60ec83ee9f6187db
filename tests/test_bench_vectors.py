"""The vector search benchmark at 5,000 rows: the code path of the 1,000,000-row run, on a
PostgreSQL of its own under this test run's folder, started and stopped by the benchmark."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings

from benchmarks import bench_vectors
from sora_social.embedded import running_postgres


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def small_config() -> bench_vectors.Config:
    return bench_vectors.Config(
        rows=5000,
        queries=100,
        ef_search=(bench_vectors.Config.default_ef_search,),
        build_threads=1,
        shared_buffers_mb=128,
        var_dir=Path(settings.VAR_DIR) / "bench-vectors",
    )


@pytest.fixture(scope="module")
def small_run(small_config: bench_vectors.Config) -> dict[str, Any]:
    return bench_vectors.run(small_config, report=_quiet)


def _at_default_ef_search(figures: dict[str, Any]) -> dict[str, float]:
    return figures["by_ef_search"][str(bench_vectors.Config.default_ef_search)]


def test_it_finds_every_capture_of_a_recaptured_identity(small_run: dict[str, Any]) -> None:
    postgres, faiss = small_run["postgres"], small_run["faiss"]

    assert small_run["recaptures"] == 80
    assert _at_default_ef_search(postgres)["recall_at_10"] >= bench_vectors.RECALL_TARGET
    assert _at_default_ef_search(postgres)["identity_at_1"] == 1.0
    assert _at_default_ef_search(faiss)["recall_at_10"] >= bench_vectors.RECALL_TARGET
    assert small_run["targets"]["recall_met"] is True
    assert small_run["targets"]["at_full_size"] is False


def test_every_search_plan_is_a_scan_of_the_engines_partial_hnsw_index(
    small_run: dict[str, Any],
) -> None:
    plans = small_run["postgres"]["plans"]

    assert set(plans) == {"custom", "generic", "prepared"}
    for plan in plans.values():
        assert "Index Scan using bench_vectors_arcface_hnsw on bench_vectors_embedding" in plan
        assert "Seq Scan" not in plan
    # The searches ran as a prepared statement, on its cached generic plan (after PostgreSQL's
    # first five custom plans): 100 warm-up queries, then 100 measured.
    assert "(after 195 generic and 5 custom plans)" in plans["prepared"]
    assert small_run["postgres"]["uses_index"] is True


def test_the_engine_is_a_literal_because_a_parameter_would_lose_the_index(
    small_run: dict[str, Any],
) -> None:
    plan = small_run["postgres"]["engine_parameter_plan"]

    assert "Seq Scan on bench_vectors_embedding" in plan
    assert "bench_vectors_arcface_hnsw" not in plan


def test_the_benchmarks_server_is_stopped_when_it_returns(
    small_run: dict[str, Any], small_config: bench_vectors.Config
) -> None:
    assert small_run["config"]["embedded_server"] is True
    assert running_postgres(small_config.var_dir) is None


def test_a_rerun_with_reuse_keeps_the_table_and_both_indexes(
    small_run: dict[str, Any], small_config: bench_vectors.Config
) -> None:
    rerun = bench_vectors.run(dataclasses.replace(small_config, reuse=True), report=_quiet)

    assert rerun["postgres"]["load_reused"] is True
    assert rerun["postgres"]["build_reused"] is True
    assert rerun["faiss"]["build_reused"] is True
    assert rerun["postgres"]["build_seconds"] == small_run["postgres"]["build_seconds"]
    assert rerun["faiss"]["build_seconds"] == small_run["faiss"]["build_seconds"]
    assert _at_default_ef_search(rerun["postgres"])["recall_at_10"] == (
        _at_default_ef_search(small_run["postgres"])["recall_at_10"]
    )
    assert running_postgres(small_config.var_dir) is None


def test_the_synthetic_embeddings_are_deterministic_and_clustered_by_identity() -> None:
    first = bench_vectors.generate_embeddings(rows=2000, seed=7, queries=50)
    again = bench_vectors.generate_embeddings(rows=2000, seed=7, queries=50)
    other = bench_vectors.generate_embeddings(rows=2000, seed=8, queries=50)

    np.testing.assert_array_equal(first.vectors, again.vectors)
    np.testing.assert_array_equal(first.queries, again.queries)
    assert not np.array_equal(first.vectors, other.vectors)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    similarity = first.vectors @ first.vectors.T
    identity = np.arange(2000) // bench_vectors.CAPTURES_PER_IDENTITY
    same = (identity[:, None] == identity[None, :]) & ~np.eye(2000, dtype=bool)
    different = identity[:, None] != identity[None, :]
    assert 0.4 < similarity[same].mean() < 0.6
    assert abs(similarity[different].mean()) < 0.02
    # Captures of one identity are far more alike than those of two: the 99.9th percentile of
    # strangers stays under the 1st percentile of the same person.
    assert np.quantile(similarity[different], 0.999) < np.quantile(similarity[same], 0.01)
