"""Who besides its author may watch a video: a person who appears in it (settings.
VIDEO_VIEWER_GRANTS; the rule itself is generation.visibility.video_access).

An owner may watch every video their cameo is in, drafts and held videos included, to decide
about it; not once they removed or declined it (it is withdrawn then), nor after revoking the
cameo.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from cameos.models import Appearance, Cameo
from generation.models import VideoJob
from sora_social.accounts.models import User

_WITHDRAWN_BY_OWNER = (Appearance.OwnerDecision.DECLINED, Appearance.OwnerDecision.REMOVED)


def _owners_appearances(viewer: User) -> Q:
    return Q(cameo__owner=viewer) & ~Q(cameo__status=Cameo.Status.REVOKED) & ~Q(
        owner_decision__in=_WITHDRAWN_BY_OWNER
    )


class AppearanceOwnerGrant:
    def may_watch(self, viewer: User, job: VideoJob) -> bool:
        return Appearance.objects.filter(_owners_appearances(viewer), video=job).exists()

    def watchable(self, viewer: User) -> Q:
        return Q(Exists(Appearance.objects.filter(_owners_appearances(viewer),
                                                  video=OuterRef("pk"))))
