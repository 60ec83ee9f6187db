from django.urls import path

from cameos.api import appearances, export, views

urlpatterns = [
    path("cameos", views.CameoListView.as_view(), name="api-cameos"),
    path("cameos/consent-notice", views.ConsentNoticeView.as_view(), name="api-consent-notice"),
    path("cameos/registrations", views.RegistrationView.as_view(), name="api-registrations"),
    path(
        "cameos/registrations/<str:challenge_id>/recording",
        views.RecordingView.as_view(),
        name="api-recording",
    ),
    path("cameos/checks/<str:check_id>", views.LivenessCheckView.as_view(), name="api-check"),
    path("cameos/<str:cameo_id>", views.CameoDetailView.as_view(), name="api-cameo"),
    path(
        "cameos/<str:cameo_id>/events", views.CameoEventsView.as_view(), name="api-cameo-events"
    ),
    path(
        "cameos/<str:cameo_id>/audit-log", export.CameoAuditLogView.as_view(),
        name="api-cameo-audit-log",
    ),
    path("cameos/<str:cameo_id>/revoke", appearances.CameoRevokeView.as_view(),
         name="api-cameo-revoke"),
    path("cameos/<str:cameo_id>/receipt", appearances.CameoReceiptView.as_view(),
         name="api-cameo-receipt"),
    path("appearances", appearances.AppearanceListView.as_view(), name="api-appearances"),
    path("appearances/<str:appearance_id>", appearances.AppearanceDetailView.as_view(),
         name="api-appearance"),
    path("appearances/<str:appearance_id>/approve", appearances.AppearanceApproveView.as_view(),
         name="api-appearance-approve"),
    path("appearances/<str:appearance_id>/decline", appearances.AppearanceDeclineView.as_view(),
         name="api-appearance-decline"),
    path("appearances/<str:appearance_id>/remove", appearances.AppearanceRemoveView.as_view(),
         name="api-appearance-remove"),
    path(
        "cameos/<str:cameo_id>/access", views.CameoAccessListView.as_view(),
        name="api-cameo-access",
    ),
    path(
        "cameos/<str:cameo_id>/access/<str:handle>",
        views.CameoAccessView.as_view(),
        name="api-cameo-access-person",
    ),
]

# Under /v1, before generation's `videos/<video_id>` routes.
v1_urlpatterns = [
    path("videos/characters", views.CharacterCollectionView.as_view(), name="v1-characters"),
    path(
        "videos/characters/<str:character_id>",
        views.CharacterDetailView.as_view(),
        name="v1-character",
    ),
]
