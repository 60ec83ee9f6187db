from django.urls import path

from generation.api import views

urlpatterns = [
    path("videos", views.VideoCollectionView.as_view(), name="v1-videos"),
    path("videos/<str:video_id>", views.VideoDetailView.as_view(), name="v1-video"),
    path("videos/<str:video_id>/remix", views.VideoRemixView.as_view(), name="v1-video-remix"),
    path(
        "videos/<str:video_id>/content", views.VideoContentView.as_view(), name="v1-video-content"
    ),
]
