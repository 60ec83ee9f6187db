"""1:N face search over cameos' embeddings with pgvector, one engine at a time.

Two searches, for two needs:
- `cameos_within`, exact: every cameo within a distance of any of a batch of faces, by one
  sequential scan. The consent gates use it (the output check, a registration's duplicate
  check): they must not miss a registered face. Measured against 100,000 synthetic cameos
  (`python -m benchmarks.bench_output_faces`), the HNSW search at ef_search 100 lost over half
  of the faces within the match threshold of a cameo but not near its references; the exact
  scan of six faces takes ~0.1 s there, and grows linearly with the cameos enrolled.
- `nearest_cameos`, approximate: the k nearest through the engine's HNSW index, in a few ms
  at any size; close recaptures of a face are found reliably (recall@10 >= 0.98 at 1,000,000
  embeddings, `benchmarks.bench_vectors`), far matches are not. No consent decision rests on it.

Each query filters on the engine id, so vectors of two engines of the same dimension never
meet, and on the dimension: the HNSW query casts the untyped column to the engine's dimension,
so PostgreSQL uses the partial HNSW index of that (dimension, metric) (migration 0003).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import connection, transaction

from cameos.faces.base import FaceEngine, Metric
from cameos.models import Cameo

# Candidates the index returns before the cameo filters apply; HNSW filters after the scan.
SEARCH_EF = 100
_OPERATORS = {Metric.EUCLIDEAN: "<->", Metric.COSINE: "<=>"}


@dataclass(frozen=True)
class CameoMatch:
    cameo_id: str
    owner_id: int
    distance: float


def nearest_query(
    engine: FaceEngine,
    vector: np.ndarray,
    *,
    limit: int,
    statuses: Iterable[str],
    exclude_owner_id: int | None,
) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) of a 1:N search: one row per cameo, nearest first."""
    operator = _OPERATORS[engine.metric]
    dimension = int(engine.dimension)
    literal = _vector_literal(vector)
    # The dimension is written into the SQL, not bound: the partial index's predicate must be
    # provable from the query text, or a generic (server-side) plan falls back to a scan.
    where = [f"v.dimension = {dimension}", "v.engine = %s", "c.status = ANY(%s)"]
    parameters: list[Any] = [engine.id, list(statuses)]
    if exclude_owner_id is not None:
        where.append("c.owner_id <> %s")
        parameters.append(exclude_owner_id)
    query = f"""
        SELECT cameo_id, owner_id, min(distance) FROM (
            SELECT v.cameo_id, c.owner_id,
                   v.embedding::vector({dimension}) {operator} %s::vector({dimension}) AS distance
            FROM cameos_facevector v JOIN cameos_cameo c ON c.id = v.cameo_id
            WHERE {" AND ".join(where)}
            ORDER BY v.embedding::vector({dimension}) {operator} %s::vector({dimension})
            LIMIT %s
        ) nearest GROUP BY cameo_id, owner_id ORDER BY 3 LIMIT %s
    """  # noqa: S608 (operator and dimension come from the engine, never from input)
    return query, [literal, *parameters, literal, limit * 4, limit]


def nearest_cameos(
    engine: FaceEngine,
    vector: np.ndarray,
    *,
    limit: int = 10,
    statuses: Iterable[str] = (Cameo.Status.VERIFIED, Cameo.Status.IN_REVIEW),
    exclude_owner_id: int | None = None,
    max_distance: float | None = None,
) -> list[CameoMatch]:
    """The cameos whose closest embedding is nearest `vector`, best first, one row each."""
    query, parameters = nearest_query(
        engine, vector, limit=limit, statuses=statuses, exclude_owner_id=exclude_owner_id
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {max(SEARCH_EF, limit * 4)}")
        cursor.execute(query, parameters)
        rows = cursor.fetchall()
    matches = [CameoMatch(cameo_id=row[0], owner_id=row[1], distance=float(row[2])) for row in rows]
    if max_distance is not None:
        matches = [match for match in matches if match.distance <= max_distance]
    return matches


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(value):.7g}" for value in vector) + "]"


def cameos_within(
    engine: FaceEngine,
    vectors: Sequence[np.ndarray],
    *,
    max_distance: float,
    statuses: Iterable[str],
    exclude_owner_id: int | None = None,
) -> list[dict[str, CameoMatch]]:
    """For each of `vectors`, every cameo (in `statuses`) with an embedding within
    `max_distance` of it, by cameo id with its nearest distance: an exact scan, all vectors in
    one statement."""
    if not vectors:
        return []
    operator = _OPERATORS[engine.metric]
    dimension = int(engine.dimension)
    where = ["c.status = ANY(%s)"]
    parameters: list[Any] = [list(range(len(vectors))),
                             [_vector_literal(vector) for vector in vectors], engine.id,
                             max_distance, list(statuses)]
    if exclude_owner_id is not None:
        where.append("c.owner_id <> %s")
        parameters.append(exclude_owner_id)
    # The distance is computed only for rows of the engine's dimension (CASE fixes the order of
    # evaluation; a vector of another dimension would make pgvector raise). Filtering on the
    # distance before joining the cameos keeps the join to the few rows near a face.
    query = f"""
        SELECT near.probe, near.cameo_id, c.owner_id, min(near.distance) FROM (
            SELECT p.probe, v.cameo_id,
                   CASE WHEN v.dimension = {dimension}
                        THEN v.embedding {operator} p.vector END AS distance
            FROM cameos_facevector v
            CROSS JOIN unnest(%s::int[], %s::vector({dimension})[]) AS p(probe, vector)
            WHERE v.dimension = {dimension} AND v.engine = %s
        ) near JOIN cameos_cameo c ON c.id = near.cameo_id
        WHERE near.distance <= %s AND {" AND ".join(where)}
        GROUP BY near.probe, near.cameo_id, c.owner_id
    """  # noqa: S608 (operator and dimension come from the engine, never from input)
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        rows = cursor.fetchall()
    found: list[dict[str, CameoMatch]] = [{} for _ in vectors]
    for probe, cameo_id, owner_id, distance in rows:
        found[probe][cameo_id] = CameoMatch(cameo_id=cameo_id, owner_id=owner_id,
                                            distance=float(distance))
    return found
