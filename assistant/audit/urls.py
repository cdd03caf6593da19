from django.urls import path, re_path

from assistant.audit import views as audit_views

app_name = "audit"

urlpatterns = [
    path("", audit_views.records, name="index"),
    path("records/<int:record_id>/", audit_views.record_detail, name="record"),
    path("documents/<int:document_id>/", audit_views.document_provenance, name="document"),
    path("events/", audit_views.events, name="events"),
    re_path(r"^export\.(?P<fmt>csv|jsonl)$", audit_views.export, name="export"),
]
