from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sora_social import health, web

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("v1/", include("generation.api.urls")),
    path("api/", include("sora_social.accounts.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include(web.urlpatterns)),
]
