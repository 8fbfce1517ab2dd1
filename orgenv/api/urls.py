from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .reveal import RevealView
from .views import MemberEnvironmentView, MemberWhyView, RunnerEnvironmentView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script from ?script: the CSP allows no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("v1/environment", RunnerEnvironmentView.as_view(), name="api-environment"),
    path(
        "v1/projects/<slug:org>/<slug:project>/environment",
        MemberEnvironmentView.as_view(),
        name="api-member-environment",
    ),
    path(
        "v1/projects/<slug:org>/<slug:project>/secrets/<str:name>/reveal",
        RevealView.as_view(),
        name="api-reveal",
    ),
    path(
        "v1/projects/<slug:org>/<slug:project>/why/<str:name>",
        MemberWhyView.as_view(),
        name="api-member-why",
    ),
]
