from django.urls import path

from sora_social.accounts.api import views

urlpatterns = [
    path("auth/signup", views.SignupView.as_view(), name="api-signup"),
    path("auth/login", views.LoginView.as_view(), name="api-login"),
    path("auth/logout", views.LogoutView.as_view(), name="api-logout"),
    path("me", views.MeView.as_view(), name="api-me"),
    path("keys", views.ApiKeyListView.as_view(), name="api-keys"),
    path("keys/<int:key_id>", views.ApiKeyDetailView.as_view(), name="api-key-detail"),
    path("follows/<str:handle>", views.FollowView.as_view(), name="api-follow"),
    path("blocks/<str:handle>", views.BlockView.as_view(), name="api-block"),
]
