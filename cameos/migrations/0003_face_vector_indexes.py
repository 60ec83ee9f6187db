from django.db import migrations

# One partial HNSW index per (dimension, metric) of the engines the project knows. A query casts
# the untyped column to the same dimension and filters on it (and on the engine id), so the
# planner uses the index and vectors of different engines never meet. A new engine with a new
# dimension adds its index in a migration of its own.
INDEXES = [
    # dlib ResNet, 128-d, Euclidean distance.
    ("cameos_facevector_hnsw_128_l2", 128, "vector_l2_ops"),
    # insightface ArcFace, 512-d, cosine distance.
    ("cameos_facevector_hnsw_512_cos", 512, "vector_cosine_ops"),
]


class Migration(migrations.Migration):
    dependencies = [("cameos", "0002_cameos")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {name} ON cameos_facevector USING hnsw "
            f"((embedding::vector({dimension})) {operator_class}) WHERE dimension = {dimension}",
            f"DROP INDEX {name}",
        )
        for name, dimension, operator_class in INDEXES
    ]
