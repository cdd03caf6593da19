from django.contrib.auth import views as auth_views
from django.urls import include, path

from assistant import identity, views

chat_patterns = (
    [
        path("", views.chat_index, name="index"),
        path("ask/", views.ask, name="ask_new"),
        path("<int:conversation_id>/", views.conversation_detail, name="conversation"),
        path("<int:conversation_id>/ask/", views.ask, name="ask"),
        path("<int:conversation_id>/rename/", views.conversation_rename, name="rename"),
        path("<int:conversation_id>/delete/", views.conversation_delete, name="delete"),
    ],
    "chat",
)

people_patterns = (
    [
        path("", identity.people_index, name="index"),
        path("groups/new/", identity.group_create, name="group_create"),
        path("<int:user_id>/", identity.person, name="person"),
    ],
    "people",
)

sso_patterns = (
    [
        path("start/", identity.sso_start, name="start"),
        path("callback/", identity.sso_callback, name="callback"),
    ],
    "sso",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", identity.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("sso/", include(sso_patterns)),
    path("chat/", include(chat_patterns)),
    path("people/", include(people_patterns)),
    path("audit/", include("assistant.audit.urls")),
    path("", include("ingestion.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
]
