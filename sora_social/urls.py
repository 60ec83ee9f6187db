from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cameos import web as cameos_web
from cameos.api import urls as cameos_urls
from sora_social import health, source, web

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("source.tar.gz", source.SourceCodeView.as_view(), name="source-code"),
    path("v1/", include(cameos_urls.v1_urlpatterns)),
    path("v1/", include("generation.api.urls")),
    path("api/", include("sora_social.accounts.api.urls")),
    path("api/", include("sora_social.notifications.api.urls")),
    path("api/", include(cameos_urls.urlpatterns)),
    path("api/", include("moderation.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("", include(web.urlpatterns)),
    path("", include(cameos_web.urlpatterns)),
]
if settings.BENCH_ENDPOINTS:
    from sora_social.bench_views import BenchRowView

    urlpatterns.append(path("bench/rows", BenchRowView.as_view(), name="bench-rows"))

# Errors Django turns into pages are JSON for API clients (sora_social/errors.py).
handler400 = "sora_social.errors.bad_request"
handler403 = "sora_social.errors.permission_denied"
handler404 = "sora_social.errors.page_not_found"
handler500 = "sora_social.errors.server_error"
