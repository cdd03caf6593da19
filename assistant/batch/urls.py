from django.urls import path

from assistant.batch import views

app_name = "batch"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.job_create, name="create"),
    path("<int:job_id>/", views.job_detail, name="job"),
    path("<int:job_id>/edit/", views.job_edit, name="edit"),
    path("<int:job_id>/preview/", views.job_preview, name="preview"),
    path("<int:job_id>/run/", views.job_run, name="run"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/pause/", views.run_pause, name="pause"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="resume"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("runs/<int:run_id>/compare/", views.run_compare, name="compare"),
    path("runs/<int:run_id>/export.<str:fmt>", views.export, name="export"),
]
