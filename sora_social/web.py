"""Server-rendered pages: sign up, log in (Django sessions), and the creator's studio page."""

from __future__ import annotations

from django import forms
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from generation.api.serializers import ALLOWED_SECONDS, ALLOWED_SIZES
from generation.models import VideoJob
from generation.objects import video_object
from sora_social.accounts.authentication import request_user
from sora_social.accounts.models import User


class SignupForm(UserCreationForm):
    birth_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = User
        fields = ("handle", "display_name", "email", "birth_date")

    def clean_handle(self) -> str:
        return str(self.cleaned_data["handle"]).lower()


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    jobs = VideoJob.objects.filter(user=request_user(request)).order_by("-created_at", "-id")
    jobs = jobs[:50]
    return render(
        request,
        "home.html",
        {
            "videos": [video_object(job) for job in jobs],
            "sizes": ALLOWED_SIZES,
            "seconds": ALLOWED_SECONDS,
        },
    )


urlpatterns = [
    path("", home, name="home"),
    path("accounts/signup/", signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
