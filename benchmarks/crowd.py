"""A population of enrolled cameos for benchmarks of the 1:N face search, kept in the
benchmarks' database (`bench_service.setup_django`: embedded PostgreSQL under var/bench).

The crowd, enrolled once and kept (users `ofbench_000000` to `ofbench_099999`; a run checks the
count and reloads only if it is wrong): 100,000 verified person cameos with 1-3 synthetic
embeddings each. They mimic the engine's real embeddings of the eight package identities: a
shared mean (real embeddings are far from centred: ~1.38 of dlib's ~1.48 norm), each identity a
random isotropic offset with the real identities' spread, each capture a smaller offset with
the real captures' spread, so norms, stranger and same-person distances look like the real ones
(isotropic offsets have a lighter tail than real faces, whose nearest strangers in a crowd this
size would come closer). The enrolment reports how near the crowd comes to the faces it must
not match (`bench_output_faces`: its two people's references and the clip's faces) and refuses
a crowd with a stranger within the match threshold of them. The load drops the engine's HNSW
index (migration 0003), inserts users and cameos with bulk_create and the vectors with COPY,
all in one transaction, rebuilds the index and runs VACUUM ANALYZE; the database growth is
measured from tables compacted first (VACUUM FULL), so no dead rows of an earlier crowd hide
it. A crowd made by another CROWD_VERSION, or whose record under var/bench/output_faces is
missing, is replaced.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from cameos.faces.base import FaceEngine

ROOT = Path(__file__).resolve().parent.parent
POPULATION = 100_000
POPULATION_PREFIX = "ofbench_"
POPULATION_SEED = 20
MAX_VECTORS_PER_CAMEO = 3
# Increase when the crowd's recipe changes, so that the kept crowd is replaced.
CROWD_VERSION = 3
ENROLL_BATCH = 5_000
# Enough for pgvector to build the HNSW graph of ~200,000 vectors in memory.
INDEX_BUILD_MEMORY = "1GB"
# What the first (enrolling) run measured, shown by later runs that reuse the crowd.
POPULATION_RECORD = ROOT / "var" / "bench" / "output_faces" / "population.json"


def machine_load() -> str:
    """`uptime`: the machine is shared, so every figure comes with the load it was taken at."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _distances(engine: FaceEngine, vectors: np.ndarray, probe: np.ndarray) -> np.ndarray:
    from cameos.faces.base import Metric

    if engine.metric == Metric.COSINE:
        norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(probe)
        return np.asarray(1.0 - vectors @ probe / norms)
    return np.asarray(np.linalg.norm(vectors - probe, axis=1))


def real_spread(engine: FaceEngine) -> tuple[np.ndarray, float, float]:
    """From the engine's embeddings of the eight package identities (each its crop and two
    augmentations): their mean, and the root-mean-square distance of an identity's centre
    from that mean (between) and of a capture from its identity's centre (within)."""
    from cameos.faces.calibration import collect_samples

    samples, _undetected = collect_samples(engine, augmentations_per_identity=2,
                                           seed=POPULATION_SEED)
    by_identity: dict[str, list[np.ndarray]] = {}
    for sample in samples:
        by_identity.setdefault(sample.label, []).append(sample.embedding.vector)
    everything = np.array([vector for vectors in by_identity.values() for vector in vectors])
    mean = everything.mean(axis=0)
    total = float(np.sqrt(np.mean(np.sum((everything - mean) ** 2, axis=1))))
    offsets = np.concatenate([np.asarray(vectors) - np.mean(vectors, axis=0)
                              for vectors in by_identity.values()])
    within = float(np.sqrt(np.mean(np.sum(offsets**2, axis=1))))
    return mean, math.sqrt(max(0.0, total**2 - within**2)), within


@dataclass
class Crowd:
    vectors: np.ndarray  # (rows, dimension) float32
    owners: np.ndarray  # the identity (0 to POPULATION - 1) of each row
    between: float
    within: float
    # The nearest any stranger comes to one of the two people's faces, and how many strangers
    # come within the engine's uncertain threshold of a search (the output check's band).
    nearest: float
    uncertain: int


def synthetic_crowd(engine: FaceEngine, faces: np.ndarray) -> Crowd:
    """POPULATION identities with 1 to MAX_VECTORS_PER_CAMEO captures each (see the module
    docstring), measured against `faces`, the two people's embeddings."""
    mean, between, within = real_spread(engine)
    dimension = len(mean)
    rng = np.random.default_rng(POPULATION_SEED)
    owners = np.repeat(np.arange(POPULATION),
                       rng.integers(1, MAX_VECTORS_PER_CAMEO + 1, size=POPULATION))
    centres = mean + rng.standard_normal((POPULATION, dimension)) * (
        between / math.sqrt(dimension))
    offsets = rng.standard_normal((len(owners), dimension)) * (within / math.sqrt(dimension))
    vectors = (centres[owners] + offsets).astype(np.float32)
    nearest = np.full(len(owners), np.inf)
    for face in faces:
        nearest = np.minimum(nearest, _distances(engine, vectors, face))
    if nearest.min() <= engine.match_threshold:
        raise RuntimeError(f"a synthetic stranger is a match ({nearest.min():.3f}) for one of "
                           "the two people: change POPULATION_SEED")
    return Crowd(vectors=vectors, owners=owners, between=between, within=within,
                 nearest=float(nearest.min()),
                 uncertain=len(np.unique(owners[nearest <= engine.search_uncertain_threshold])))


def hnsw_index(engine: FaceEngine) -> tuple[str, str]:
    """The engine's HNSW index in migration 0003: its name and its CREATE INDEX statement."""
    migration = importlib.import_module("cameos.migrations.0003_face_vector_indexes")
    for name, dimension, operator_class in migration.INDEXES:
        if dimension == engine.dimension:
            return name, (f"CREATE INDEX {name} ON cameos_facevector USING hnsw "
                          f"((embedding::vector({dimension})) {operator_class}) "
                          f"WHERE dimension = {dimension}")
    raise RuntimeError(f"migration 0003 has no index for dimension {engine.dimension}")


def scalar(sql: str, parameters: list[Any] | None = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, parameters or [])
        row = cursor.fetchone()
    return row[0] if row else None


def crowd_is_enrolled(engine: FaceEngine) -> bool:
    """Whether the crowd of this CROWD_VERSION and engine is all there, with its record."""
    from django.db.models import Count

    from cameos.models import FaceVector
    from sora_social.accounts.models import User

    if not POPULATION_RECORD.exists():
        return False
    recorded = json.loads(POPULATION_RECORD.read_text())
    if (recorded.get("version"), recorded.get("engine")) != (CROWD_VERSION, engine.id):
        return False
    users = User.objects.filter(handle__startswith=POPULATION_PREFIX).count()
    cameos = FaceVector.objects.filter(
        cameo__handle__startswith=POPULATION_PREFIX, engine=engine.id
    ).aggregate(cameos=Count("cameo_id", distinct=True))["cameos"]
    return users == cameos == POPULATION


def _database_bytes() -> int:
    return int(scalar("SELECT pg_database_size(current_database())"))


def enroll_crowd(engine: FaceEngine, faces: np.ndarray) -> dict[str, Any]:
    """Replace whatever crowd is there by a fresh one; what it cost."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from cameos.models import Cameo, FaceVector
    from sora_social.accounts.models import User

    started = time.perf_counter()
    removed = User.objects.filter(handle__startswith=POPULATION_PREFIX).delete()[0]
    tables = ", ".join(model._meta.db_table for model in (User, Cameo, FaceVector))
    _run(f"VACUUM FULL {tables}")
    crowd_started = time.perf_counter()
    crowd = synthetic_crowd(engine, faces)
    generated = time.perf_counter()
    size_before = _database_bytes()
    index_name, create_index = hnsw_index(engine)
    password = make_password(None)  # unusable, hashed once
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        cursor.execute(f"DROP INDEX IF EXISTS {index_name}")
        users = User.objects.bulk_create(
            (User(handle=f"{POPULATION_PREFIX}{number:06d}", display_name=f"stranger {number}",
                  password=password, date_joined=now) for number in range(POPULATION)),
            batch_size=ENROLL_BATCH,
        )
        cameos = Cameo.objects.bulk_create(
            (Cameo(owner=user, kind=Cameo.Kind.PERSON, handle=user.handle,
                   name=user.display_name, status=Cameo.Status.VERIFIED,
                   audience=Cameo.Audience.MUTUALS, face_engine=engine.id, created_at=now,
                   verified_at=now) for user in users),
            batch_size=ENROLL_BATCH,
        )
        rows_inserted = time.perf_counter()
        table = FaceVector._meta.db_table
        with cursor.copy(f"COPY {table} (cameo_id, engine, dimension, embedding, created_at) "
                         "FROM STDIN") as copy:
            for owner, vector in zip(crowd.owners, crowd.vectors, strict=True):
                literal = "[" + ",".join(f"{value:.7g}" for value in vector.tolist()) + "]"
                copy.write_row((cameos[owner].pk, engine.id, engine.dimension, literal, now))
        # Django's foreign keys are deferred: checked now, as CREATE INDEX needs no trigger
        # event pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        copied = time.perf_counter()
        cursor.execute(create_index)
    indexed = time.perf_counter()
    _run(f"VACUUM ANALYZE {tables}")
    finished = time.perf_counter()
    return {
        "version": CROWD_VERSION,
        "engine": engine.id,
        "enrolled_on": timezone.now().isoformat(timespec="seconds"),
        "load_during": machine_load(),
        "cameos": POPULATION,
        "vectors": len(crowd.vectors),
        "nearest": crowd.nearest,
        "uncertain": crowd.uncertain,
        "between": crowd.between,
        "within": crowd.within,
        "removed_rows": removed,
        "remove_s": crowd_started - started,
        "generate_s": generated - crowd_started,
        "users_cameos_s": rows_inserted - generated,
        "copy_s": copied - rows_inserted,
        "index_s": indexed - copied,
        "vacuum_s": finished - indexed,
        "total_s": finished - started,
        "database_added_mb": (_database_bytes() - size_before) / 1e6,
    }


def ensure_crowd(engine: FaceEngine, faces: Callable[[], np.ndarray]) -> dict[str, Any]:
    """The crowd, enrolled (and measured against the two people's `faces()`) if it is not
    all there; the enrolment's figures (as recorded when it was made, if it is reused), with
    `reused` saying which."""
    if crowd_is_enrolled(engine):
        index_name, create_index = hnsw_index(engine)
        if not scalar("SELECT 1 FROM pg_indexes WHERE indexname = %s", [index_name]):
            _run(create_index)  # a build interrupted outside the enrolment's transaction
        return {**json.loads(POPULATION_RECORD.read_text()), "reused": True}
    figures = enroll_crowd(engine, faces())
    POPULATION_RECORD.parent.mkdir(parents=True, exist_ok=True)
    POPULATION_RECORD.write_text(json.dumps(figures, indent=2))
    return {**figures, "reused": False}


def _run(sql: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)


def storage_figures(engine: FaceEngine) -> dict[str, float]:
    from cameos.models import FaceVector

    index_name, _create = hnsw_index(engine)
    table = FaceVector._meta.db_table
    return {
        "database_mb": _database_bytes() / 1e6,
        "vectors_table_mb": int(scalar("SELECT pg_total_relation_size(%s)", [table])) / 1e6,
        "index_mb": int(scalar("SELECT pg_relation_size(%s)", [index_name])) / 1e6,
    }
