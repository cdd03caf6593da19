from django.urls import path

from ingestion import views

app_name = "ingestion"

urlpatterns = [
    path("collections/", views.collection_list, name="collections"),
    path("collections/new/", views.collection_create, name="collection_create"),
    path("collections/<int:collection_id>/", views.collection_detail, name="collection"),
    path("collections/<int:collection_id>/upload/", views.upload, name="upload"),
    path(
        "collections/<int:collection_id>/reingest/",
        views.collection_reingest,
        name="collection_reingest",
    ),
    path("collections/<int:collection_id>/clear/", views.collection_clear, name="collection_clear"),
    path(
        "collections/<int:collection_id>/access/",
        views.collection_access,
        name="collection_access",
    ),
    path(
        "collections/<int:collection_id>/starters/",
        views.collection_starters,
        name="collection_starters",
    ),
    path("documents/<int:document_id>/file/", views.document_file, name="document_file"),
    path(
        "documents/<int:document_id>/pages/<int:page>/",
        views.document_page,
        name="document_page",
    ),
    path("documents/<int:document_id>/reingest/", views.document_reingest, name="reingest"),
    path("documents/<int:document_id>/delete/", views.document_delete, name="document_delete"),
]
