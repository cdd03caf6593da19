"""The app's URLs plus a view that crashes, for the 500 page's test."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from assistant.urls import urlpatterns as app_urlpatterns


def crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


urlpatterns = [*app_urlpatterns, path("crash/", crash)]
