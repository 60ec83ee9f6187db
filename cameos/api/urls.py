from django.urls import path

from cameos.api import views

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
