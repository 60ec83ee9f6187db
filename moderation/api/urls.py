from django.urls import path

from moderation.api import views

urlpatterns = [
    path("videos/<str:video_id>/reports", views.VideoReportView.as_view(),
         name="api-video-reports"),
    path("reports", views.ReportListView.as_view(), name="api-reports"),
]
