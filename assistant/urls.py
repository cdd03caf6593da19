from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.i18n import JavaScriptCatalog

from assistant import (
    api,
    citations,
    conversations,
    identity,
    metrics,
    registry,
    tokens,
    usage_views,
    views,
)
from assistant import feedback as feedback_views

chat_patterns = (
    [
        path("", views.chat_index, name="index"),
        path("ask/", views.ask, name="ask_new"),
        path("<int:conversation_id>/", views.conversation_detail, name="conversation"),
        path("<int:conversation_id>/ask/", views.ask, name="ask"),
        path("<int:conversation_id>/rename/", views.conversation_rename, name="rename"),
        path("<int:conversation_id>/delete/", views.conversation_delete, name="delete"),
        # The answer's lifecycle: stop and copy name a query record, the others a conversation.
        path("answers/<int:record_id>/stop/", views.answer_stop, name="stop"),
        path("answers/<int:record_id>/copied/", views.answer_copied, name="copied"),
        path("<int:conversation_id>/regenerate/", views.answer_regenerate, name="regenerate"),
        path("<int:conversation_id>/edit/", views.question_edit, name="edit"),
        path("<int:conversation_id>/scope/", views.conversation_scope, name="scope"),
        path("<int:conversation_id>/model/", views.conversation_model, name="model"),
        path(
            "<int:conversation_id>/answers/<int:message_id>/feedback/",
            feedback_views.answer_feedback,
            name="feedback",
        ),
        path("search/", conversations.conversation_search, name="search"),
        path("<int:conversation_id>/pin/", conversations.conversation_pin, name="pin"),
        path("messages/<int:message_id>/sources/<int:n>/", citations.source_panel, name="source"),
    ],
    "chat",
)

feedback_patterns = (
    [
        path("", feedback_views.index, name="index"),
        path("export.csv", feedback_views.export, name="export"),
    ],
    "feedback",
)

people_patterns = (
    [
        path("", identity.people_index, name="index"),
        path("groups/new/", identity.group_create, name="group_create"),
        path("<int:user_id>/", identity.person, name="person"),
    ],
    "people",
)

# The model registry (assistant/registry.py): superusers only.
model_patterns = (
    [
        path("", registry.index, name="index"),
        path("new/", registry.create, name="create"),
        path("<int:endpoint_id>/", registry.edit, name="edit"),
    ],
    "models",
)

sso_patterns = (
    [
        path("start/", identity.sso_start, name="start"),
        path("callback/", identity.sso_callback, name="callback"),
    ],
    "sso",
)

token_patterns = (
    [
        path("", tokens.index, name="index"),
        path("new/", tokens.token_create, name="create"),
        path("<int:token_id>/revoke/", tokens.token_revoke, name="revoke"),
    ],
    "tokens",
)

# The OpenAI-compatible API: personal access tokens only, never the session (assistant/api.py).
api_patterns = (
    [
        path("chat/completions", api.chat_completions, name="chat_completions"),
        path("models", api.models, name="models"),
        # Any character, a newline included: an odd model id is still the API's own 404.
        re_path(r"^models/(?P<model_id>(?s:.+))$", api.model, name="model"),
        path("openapi.json", api.openapi_description, name="openapi"),
        re_path(r"^(?P<rest>(?s:.*))$", api.unknown_route),
    ],
    "api",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", identity.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", identity.set_language, name="set_language"),
    # Our scripts' strings in the page's language (static/enclave/*.js call gettext()).
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["assistant"]), name="jsi18n"),
    path("sso/", include(sso_patterns)),
    path("chat/", include(chat_patterns)),
    path("people/", include(people_patterns)),
    path("models/", include(model_patterns)),
    path("audit/", include("assistant.audit.urls")),
    path("feedback/", include(feedback_patterns)),
    path("tokens/", include(token_patterns)),
    path("batch/", include("assistant.batch.urls")),
    path("usage/", include(usage_views.urls)),
    path("v1/", include(api_patterns)),
    path("", include("ingestion.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),  # for Prometheus, with METRICS_TOKEN
]
