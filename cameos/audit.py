"""A cameo's consent audit log as its owner exports it (cameos/api/export.py).

Every event of the cameo, oldest first, whatever its kind (kinds are added over time, so none is
named here). Events are read from the database a chunk at a time and written out a row at a
time, so a long log is never held in memory whole.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

from cameos.models import Cameo, CameoEvent

# Events read per round trip (a server-side cursor on PostgreSQL).
CHUNK_SIZE = 500

# What a spreadsheet takes for the start of a formula (OWASP, "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditRow:
    time: str  # ISO 8601, UTC
    event: str  # the event's kind
    author: str  # the handle of who acted; "" for the service itself or a deleted account
    video_id: str
    reason: str
    details: dict[str, Any]


AUDIT_COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(AuditRow))


def iso_utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def audit_header(cameo: Cameo) -> dict[str, Any]:
    """Which cameo the log is of, as it stands at the export."""
    return {
        "id": cameo.id,
        "handle": cameo.handle,
        "name": cameo.name,
        "kind": cameo.kind,
        "status": cameo.status,
        "created_at": iso_utc(cameo.created_at),
        "verified_at": iso_utc(cameo.verified_at) if cameo.verified_at else None,
        "revoked_at": iso_utc(cameo.revoked_at) if cameo.revoked_at else None,
    }


def audit_rows(cameo: Cameo) -> Iterator[AuditRow]:
    """Every event of the cameo, oldest first, read CHUNK_SIZE at a time."""
    events = (
        CameoEvent.objects.filter(cameo=cameo)
        .select_related("actor")
        .order_by("created_at", "id")
        .iterator(chunk_size=CHUNK_SIZE)
    )
    for event in events:
        yield AuditRow(
            time=iso_utc(event.created_at),
            event=event.kind,
            author=event.actor.handle if event.actor is not None else "",
            video_id=event.video_id,
            reason=event.reason,
            details=event.details,
        )


def audit_json(
    cameo: Cameo, *, exported_at: datetime.datetime
) -> Generator[str, None, None]:
    """`{"cameo": ..., "exported_at": ..., "events": [...]}`, in pieces."""
    yield (
        f'{{"cameo": {json.dumps(audit_header(cameo))}, '
        f'"exported_at": {json.dumps(iso_utc(exported_at))}, "events": ['
    )
    separator = ""
    for row in audit_rows(cameo):
        yield separator + json.dumps(asdict(row))
        separator = ", "
    yield "]}"


def csv_safe(cell: str) -> str:
    """The cell as a spreadsheet shows it as text: one that starts like a formula is quoted.

    Handles, reasons and details come from users, and the owner opens the file in a spreadsheet.
    """
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


class _Line:
    """A file whose write hands the line back, so csv.writer formats one row for us to send."""

    def write(self, line: str) -> str:
        return line


def audit_csv(cameo: Cameo) -> Generator[str, None, None]:
    """A header line, then one line per event; details as compact JSON."""
    writer = csv.writer(_Line())
    yield writer.writerow(AUDIT_COLUMNS)
    for row in audit_rows(cameo):
        cells = asdict(row)
        cells["details"] = json.dumps(row.details, separators=(",", ":"), ensure_ascii=False)
        yield writer.writerow([csv_safe(cells[column]) for column in AUDIT_COLUMNS])
