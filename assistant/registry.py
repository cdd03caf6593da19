"""The model registry's pages: superusers register OpenAI-compatible model servers and change
them; each change is one audit event, written with it. The key itself is never stored or shown:
a row names the environment variable or the file that holds it."""

import re
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from assistant import access, audit, endpoints
from assistant.access import AuthedRequest
from assistant.models import ModelEndpoint
from ingestion.models import Collection

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESTRICTED = Collection.Sensitivity.RESTRICTED


def may_manage_models(user: access.User) -> bool:
    """Only superusers: a registered endpoint decides where passages may be sent."""
    return user.is_active and user.is_superuser


class EndpointForm(forms.ModelForm):
    # Not the model's URLField: its validator refuses hosts without a dot ("http://vllm:8000").
    base_url = forms.CharField(
        label=gettext_lazy("Base URL"),
        max_length=500,
        help_text=gettext_lazy("The server's OpenAI-compatible root, e.g. http://vllm:8000/v1"),
    )
    context_length = forms.IntegerField(
        label=gettext_lazy("Context length (tokens)"), min_value=1, initial=8192
    )
    input_price = forms.DecimalField(
        label=gettext_lazy("Input price per million tokens"),
        min_value=0,
        max_digits=10,
        decimal_places=4,
        initial=0,
    )
    output_price = forms.DecimalField(
        label=gettext_lazy("Output price per million tokens"),
        min_value=0,
        max_digits=10,
        decimal_places=4,
        initial=0,
    )

    field_order = ["name", "base_url", "model"]  # the declared fields would come last

    class Meta:
        model = ModelEndpoint
        fields = [
            "name", "model", "api_key_env", "api_key_file", "context_length", "location",
            "input_price", "output_price", "enabled", "default", "hard_questions",
            "approved_collections",
        ]  # fmt: skip
        labels = {
            "name": gettext_lazy("Name (what users pick)"),
            "model": gettext_lazy("Model (the name the server knows it by)"),
            "api_key_env": gettext_lazy("API key: environment variable name"),
            "api_key_file": gettext_lazy("or API key: file path"),
            "location": gettext_lazy("Where it runs"),
            "enabled": gettext_lazy("Enabled"),
            "default": gettext_lazy("Default for new conversations"),
            "hard_questions": gettext_lazy("Answers hard questions when a user picks Auto"),
            "approved_collections": gettext_lazy("Internal collections it may read"),
        }
        help_texts = {
            "api_key_env": gettext_lazy(
                "Never the key itself. Leave both empty if none is needed."
            ),
            "approved_collections": gettext_lazy(
                "External models only. Restricted collections are never offered."
            ),
        }
        widgets = {"approved_collections": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial.setdefault("base_url", self.instance.base_url)
        field = cast(forms.ModelMultipleChoiceField, self.fields["approved_collections"])
        # Every collection validates, so a restricted one sent anyway gets a clear error
        # (clean_approved_collections), but only internal ones are offered.
        field.queryset = Collection.objects.order_by("name")
        internal = Collection.objects.exclude(sensitivity=RESTRICTED).order_by("name")
        field.widget.choices = [(c.pk, c.name) for c in internal]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if name.casefold() in {settings.LLM_NAME.casefold(), endpoints.AUTO}:
            raise forms.ValidationError(gettext("“%(name)s” is reserved.") % {"name": name})
        return name

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise forms.ValidationError(gettext("Enter an http:// or https:// address."))
        if parts.username or parts.password:
            raise forms.ValidationError(
                gettext("No credentials in the address: name an environment variable or a file.")
            )
        return url

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        if name and not ENV_NAME.match(name):
            raise forms.ValidationError(
                gettext("The name of an environment variable (letters, digits, _), not a key.")
            )
        return name

    def clean_api_key_file(self) -> str:
        path = self.cleaned_data["api_key_file"].strip()
        if path and not Path(path).is_absolute():
            raise forms.ValidationError(gettext("An absolute path, such as /run/secrets/key."))
        return path

    def clean_approved_collections(self) -> list[Collection]:
        chosen = list(self.cleaned_data["approved_collections"])
        restricted = sorted(c.name for c in chosen if c.sensitivity == RESTRICTED)
        if restricted:
            raise forms.ValidationError(
                gettext(
                    "%(names)s is restricted: only on-premises models may read it. "
                    "Make it internal on its access page first."
                )
                % {"names": ", ".join(restricted)}
            )
        return chosen

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("api_key_env") and data.get("api_key_file"):
            self.add_error(
                "api_key_file", gettext("Name an environment variable or a file, not both.")
            )
        if data.get("location") == ModelEndpoint.Location.ON_PREMISES:
            data["approved_collections"] = []  # it reads every collection: approvals are moot
        if "base_url" in data:
            self.instance.base_url = data["base_url"]
        return data


def snapshot(row: ModelEndpoint) -> dict[str, Any]:
    return {
        "name": row.name,
        "base_url": row.base_url,
        "model": row.model,
        "api_key_env": row.api_key_env,
        "api_key_file": row.api_key_file,
        "context_length": row.context_length,
        "location": row.location,
        "input_price": str(row.input_price),
        "output_price": str(row.output_price),
        "enabled": row.enabled,
        "default": row.default,
        "hard_questions": row.hard_questions,
        "approved_collections": sorted(row.approved_collections.values_list("name", flat=True)),
    }


def save(
    form: EndpointForm, action: str, actor: User, before: dict | None, request: HttpRequest | None
) -> ModelEndpoint:
    with transaction.atomic():
        row = form.save()
        row.refresh_from_db()  # as stored: "2.5" reads back as "2.5000", like `before`
        cleared: list[str] = []
        if row.default:
            # At most one default: the others lose it in the same change.
            others = (
                ModelEndpoint.objects.select_for_update().filter(default=True).exclude(pk=row.pk)
            )
            cleared = list(others.values_list("name", flat=True))
            others.update(default=False)
        after = snapshot(row)
        if before == after and not cleared:
            return row
        detail: dict[str, Any] = (
            {"after": after} if before is None else {"before": before, "after": after}
        )
        if cleared:
            detail["default_cleared"] = cleared
        audit.record(action, actor, row, detail=detail, request=request)
    return row


def register(form: EndpointForm, actor: User, request: HttpRequest | None = None) -> ModelEndpoint:
    return save(form, audit.Action.MODEL_REGISTERED, actor, None, request)


def change(form: EndpointForm, actor: User, request: HttpRequest | None = None) -> ModelEndpoint:
    before = snapshot(ModelEndpoint.objects.get(pk=form.instance.pk))
    return save(form, audit.Action.MODEL_CHANGED, actor, before, request)


def key_status(row: ModelEndpoint) -> str:
    """ "set", "missing" or "none" (no key named): whether the key is found, never the key."""
    if not (row.api_key_env or row.api_key_file):
        return "none"
    return "set" if endpoints.of(row).api_key() else "missing"


# --- views ----------------------------------------------------------------------------------

superusers_only = access.requires(may_manage_models)


@superusers_only
@require_GET
def index(request: AuthedRequest) -> HttpResponse:
    rows = ModelEndpoint.objects.prefetch_related("approved_collections")
    context = {
        "builtin": endpoints.builtin(),
        "rows": [{"row": row, "key": key_status(row)} for row in rows],
    }
    return render(request, "models/index.html", context)


@superusers_only
@require_http_methods(["GET", "POST"])
def create(request: AuthedRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        row = register(form, request.user, request)
        messages.success(request, gettext("Model %(name)s registered.") % {"name": row.name})
        return redirect("models:index")
    return render(request, "models/form.html", {"form": form})


@superusers_only
@require_http_methods(["GET", "POST"])
def edit(request: AuthedRequest, endpoint_id: int) -> HttpResponse:
    row = get_object_or_404(ModelEndpoint, pk=endpoint_id)
    form = EndpointForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        row = change(form, request.user, request)
        messages.success(request, gettext("Model %(name)s saved.") % {"name": row.name})
        return redirect("models:index")
    context = {"form": form, "row": row, "key": key_status(row)}
    return render(request, "models/form.html", context)
