"""1:N face search over cameos' embeddings with pgvector, one engine at a time.

Each query casts the untyped column to the engine's dimension and filters on that dimension, so
PostgreSQL uses the partial HNSW index of that (dimension, metric) (migration 0003), and on the
engine id, so vectors of two engines of the same dimension never meet.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    literal = "[" + ",".join(f"{float(value):.7g}" for value in vector) + "]"
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
