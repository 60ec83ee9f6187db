"""The cameo check of the output gate: whose faces are in a stored render, and were they
allowed to be there?

The faces embedded from each track of the sampled frames (`cameos.faces.tracks`) are matched
1:k against the declared cameos' references and 1:N against every verified cameo (pgvector,
an exact scan of all the faces at once), each attributed to its single nearest cameo. Then:
- a declared cameo seen: its appearance records where and how closely;
- an undeclared cameo seen, whose owner lets the author use it: a `detected` appearance, and
  the owner is told;
- an undeclared cameo seen that the author may not use (or a declared one no longer usable):
  the job is blocked with `cameo_not_consented`, and the owner sees the attempt;
- a face in the uncertain band of the nearest cameo: a `detected` appearance the owner must
  approve; until then the video is held, never silently published.
A cameo whose owner asked to approve every video of them holds the video the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction

from cameos.events import (
    appearance_detected_event,
    appearance_uncertain_event,
    tell_owner_of_appearance,
    use_refused_event,
)
from cameos.faces import get_engine
from cameos.faces.base import FaceEmbedding, FaceEngine
from cameos.faces.tracks import face_tracks
from cameos.models import Appearance, Cameo, FaceVector
from cameos.permissions import can_use_cameo
from cameos.search import CameoMatch, cameos_within
from generation.actions.output import place_hold
from generation.media.sampling import SampledVideo
from generation.models import VideoJob
from generation.output_gate import Outcome, OutputVerdict
from sora_social.notifications.actions import do_notify

NOT_CONSENTED_CODE = "cameo_not_consented"
NOT_CONSENTED_MESSAGE = (
    "This video shows a registered person who has not allowed you to use their likeness. "
    "It was not kept and your quota was refunded."
)
# What holds a video until a person in it decides (generation.models.VideoHold.kind).
APPROVAL_HOLD = "cameo_approval"


@dataclass
class Sighting:
    """The nearest a cameo's references came to one face track."""

    cameo_id: str
    distance: float
    first_seen: float


@dataclass
class CameoFindings:
    confident: dict[str, Sighting] = field(default_factory=dict)
    uncertain: dict[str, Sighting] = field(default_factory=dict)


def _declared_vectors(engine: FaceEngine, cameo_ids: list[str]) -> dict[str, list[FaceEmbedding]]:
    vectors: dict[str, list[FaceEmbedding]] = {}
    rows = FaceVector.objects.filter(cameo_id__in=cameo_ids, engine=engine.id)
    for cameo_id, embedding in rows.values_list("cameo_id", "embedding"):
        vector = np.asarray(embedding, dtype=np.float32)
        vectors.setdefault(cameo_id, []).append(
            FaceEmbedding(vector=vector, engine=engine.id, dimension=len(vector))
        )
    return vectors


def _nearest_cameo(
    engine: FaceEngine,
    embedding: FaceEmbedding,
    declared: dict[str, list[FaceEmbedding]],
    searched: dict[str, CameoMatch],
) -> tuple[str, float] | None:
    """The cameo nearest one face embedding, if any is near enough: 1:k against the declared
    ones (within the 1:1 uncertain band) and, `searched`, 1:N against every verified cameo
    (within the narrower band of a search, see FaceEngine.search_uncertain_threshold)."""
    nearest: dict[str, float] = {}
    for cameo_id, references in declared.items():
        distance = min(engine.distance(embedding, reference) for reference in references)
        if distance <= engine.uncertain_threshold:
            nearest[cameo_id] = distance
    for match in searched.values():
        nearest[match.cameo_id] = min(match.distance, nearest.get(match.cameo_id, match.distance))
    if not nearest:
        return None
    return min(nearest.items(), key=lambda item: item[1])


def find_cameos(
    sample: SampledVideo, engine: FaceEngine, *, declared_ids: list[str]
) -> CameoFindings:
    """Attribute each embedded face to its nearest cameo, if any is near enough. Each face
    (not each track) is attributed on its own: a track that joined two people standing in the
    same place still reports both."""
    findings = CameoFindings()
    declared = _declared_vectors(engine, declared_ids)
    faces = [(track, embedding) for track in face_tracks(sample, engine)
             for embedding in track.embeddings]
    # Verified cameos only: one in review may be a second account's copy of a verified face,
    # and must not take that person's place (or be told of their videos). Exact, all faces in
    # one scan: a consent check must not miss a registered face (see cameos.search).
    searches = cameos_within(engine, [embedding.vector for _track, embedding in faces],
                             max_distance=engine.search_uncertain_threshold,
                             statuses=(Cameo.Status.VERIFIED,))
    for (track, embedding), searched in zip(faces, searches, strict=True):
        nearest = _nearest_cameo(engine, embedding, declared, searched)
        if nearest is None:
            continue
        cameo_id, distance = nearest
        bucket = findings.confident if distance <= engine.match_threshold else findings.uncertain
        sighting = bucket.get(cameo_id)
        if sighting is None:
            bucket[cameo_id] = Sighting(cameo_id, distance, track.first_seen)
        else:
            sighting.distance = min(sighting.distance, distance)
            sighting.first_seen = min(sighting.first_seen, track.first_seen)
    for cameo_id in findings.confident:
        findings.uncertain.pop(cameo_id, None)  # seen clearly elsewhere in the video
    return findings


@dataclass
class CameoOutputDecision:
    """The verdict's memory: written by `record` in the transaction that finishes the job."""

    findings: CameoFindings
    declared_ids: set[str]
    refused_ids: list[str]

    def record(self, job: VideoJob, is_blocked: bool) -> None:
        author = job.user
        sightings = {**self.findings.uncertain, **self.findings.confident}
        # Locked in primary-key order, as the request gate and revocation lock them: a
        # revocation that lands during the check either committed before (seen here, its
        # cascade sent again below) or waits for this transaction (and its cascade sees the
        # appearance written here).
        cameos = {
            cameo.pk: cameo
            for cameo in Cameo.objects.select_for_update(of=("self",)).select_related("owner")
            .filter(pk__in=sorted(set(sightings) | self.declared_ids)).order_by("pk")
        }
        if is_blocked:
            # A cameo deleted since the look (its owner's account with it) has no one to tell.
            for cameo in (cameos[pk] for pk in self.refused_ids if pk in cameos):
                use_refused_event(cameo, author=author, reason="found_in_output",
                                  video_id=job.id)
                do_notify(cameo.owner_id, kind="appearance.refused",
                          title="A video with your face was blocked",
                          body=f"@{author.handle} made a video that showed you without your "
                               "permission. It was not kept.",
                          data={"video_id": job.id, "cameo_id": cameo.pk})
            return
        appearances = {
            appearance.cameo_id: appearance
            for appearance in Appearance.objects.select_for_update().filter(video=job)
        }
        for cameo_id, sighting in sightings.items():
            if cameo_id not in cameos:
                continue  # deleted since the look
            cameo = cameos[cameo_id]
            is_uncertain = cameo_id in self.findings.uncertain
            appearance = appearances.get(cameo_id)
            if appearance is None:
                appearance = self._detected(job, cameo, sighting, is_uncertain=is_uncertain)
                appearances[cameo_id] = appearance
            else:
                appearance.distance = sighting.distance
                appearance.first_seen_seconds = sighting.first_seen
                appearance.save(update_fields=["distance", "first_seen_seconds"])
        for cameo_id, appearance in appearances.items():
            cameo = cameos.get(cameo_id) or appearance.cameo
            if cameo.owner_id != author.pk and (cameo.requires_approval or appearance.is_uncertain):
                appearance.owner_decision = Appearance.OwnerDecision.PENDING
                appearance.save(update_fields=["owner_decision"])
                place_hold(job, kind=APPROVAL_HOLD, reference=str(appearance.pk))
                do_notify(author.pk, kind="video.awaiting_approval",
                          title="Your video is waiting for approval",
                          body="Someone who appears in it approves each video of them before "
                               "it can be downloaded or posted.",
                          data={"video_id": job.id})
            if not cameo.is_usable and cameo.kind == Cameo.Kind.PERSON:
                # Revoked while this video was checked: its cascade already ran without
                # seeing this appearance, so it runs again once this commits.
                from cameos.tasks import revocation_cascade_task

                transaction.on_commit(functools.partial(revocation_cascade_task.delay, cameo.pk))

    def _detected(
        self, job: VideoJob, cameo: Cameo, sighting: Sighting, *, is_uncertain: bool
    ) -> Appearance:
        author = job.user
        decision = can_use_cameo(author, cameo)
        appearance = Appearance.objects.create(
            video=job, cameo=cameo, source=Appearance.Source.DETECTED,
            consent_decision=(Appearance.ConsentDecision.ALLOWED if decision.is_allowed
                              else Appearance.ConsentDecision.REFUSED),
            consent_reason=decision.reason, distance=sighting.distance,
            first_seen_seconds=sighting.first_seen, is_uncertain=is_uncertain,
        )
        if is_uncertain:
            appearance_uncertain_event(cameo, author=author, video_id=job.id,
                                       distance=sighting.distance)
        else:
            appearance_detected_event(cameo, author=author, video_id=job.id,
                                      reason=decision.reason, distance=sighting.distance)
        if cameo.owner_id != author.pk:
            tell_owner_of_appearance(appearance, author=author)
        return appearance


def check_cameo_faces(job: VideoJob, sample: SampledVideo) -> OutputVerdict:
    """The output gate's cameo check (listed in settings.OUTPUT_CHECKS)."""
    engine = get_engine()
    declared_ids = set(
        Appearance.objects.filter(video=job, source=Appearance.Source.TAGGED)
        .values_list("cameo_id", flat=True)
    )
    findings = find_cameos(sample, engine, declared_ids=sorted(declared_ids))
    author = job.user
    cameos = list(Cameo.objects.select_related("owner").filter(
        pk__in=set(findings.confident) | set(findings.uncertain) | declared_ids
    ).order_by("pk"))
    # Consent must still hold when the video is made, tagged or not (an uncertain face is for
    # its owner to decide instead).
    uncertain = set(findings.uncertain) - declared_ids
    refused = [cameo.pk for cameo in cameos
               if cameo.pk not in uncertain and not can_use_cameo(author, cameo).is_allowed]
    decision = CameoOutputDecision(findings=findings, declared_ids=declared_ids,
                                   refused_ids=refused)
    if refused:
        return OutputVerdict(Outcome.BLOCK, code=NOT_CONSENTED_CODE,
                             message=NOT_CONSENTED_MESSAGE, record=decision.record)
    # The same rule as `record`, which places the holds.
    is_held = any(cameo.owner_id != author.pk
                  and (cameo.requires_approval or cameo.pk in uncertain)
                  for cameo in cameos)
    return OutputVerdict(Outcome.HOLD if is_held else Outcome.PASS, record=decision.record)
