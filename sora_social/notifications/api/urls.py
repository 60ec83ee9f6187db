from django.urls import path

from sora_social.notifications.api import views

urlpatterns = [
    path("notifications", views.NotificationListView.as_view(), name="api-notifications"),
    path(
        "notifications/read", views.NotificationReadView.as_view(), name="api-notifications-read"
    ),
    path(
        "notifications/<int:notification_id>",
        views.NotificationDetailView.as_view(),
        name="api-notification",
    ),
]
