import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.agents.forms import SecretTextarea
from apps.agents.models import Agent, AgentConfig, AgentVersion, HttpTool, McpServer
from apps.agents.services import (
    agent_config_problems,
    agent_export,
    agent_import,
    agent_save,
    http_tool_problems,
    http_tool_save,
    mcp_server_problems,
    mcp_server_save,
)
from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ("name", "is_active", *AgentConfig.CONFIG_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "pipeline_mode" in self.fields:  # a form posted without it (from before the choice existed) is a cascade
            self.fields["pipeline_mode"].required = False

    def clean_pipeline_mode(self):
        return self.cleaned_data.get("pipeline_mode") or "cascade"

    def clean(self):
        """The rules are agent_config_problems (the same as every other door); each
        problem shows under its field, unless the field already has its own error."""
        cleaned = super().clean()
        config = {name: cleaned.get(name) for name in AgentConfig.CONFIG_FIELDS}
        for field, message in agent_config_problems(config=config).items():
            if field not in self.errors:
                self.add_error(field if field in self.fields else None, message)
        return cleaned


class AgentVersionInline(admin.TabularInline):
    model = AgentVersion
    fields = ("number", "name", "pipeline_mode", "stt_provider", "llm_provider", "tts_provider", "s2s_provider",
              "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Agent, site=tenant_admin_site)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ("name", "current_version", "pipeline_mode", "stt_provider", "llm_provider", "tts_provider",
                    "s2s_provider", "is_active", "updated_at")
    inlines = [AgentVersionInline]
    actions = ["export_json"]

    @admin.action(description="Export as JSON (switchboard.agent/1, no secrets)")
    def export_json(self, request, queryset):
        documents = [agent_export(agent=agent) for agent in queryset]
        response = JsonResponse(documents[0] if len(documents) == 1 else documents, safe=False,
                                json_dumps_params={"indent": 2})
        response["Content-Disposition"] = 'attachment; filename="agents.json"'
        return response

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_view), name="agents_agent_import"),
                *super().get_urls()]

    def import_view(self, request):
        """Paste or upload an export (from this or another client): agent_import checks it as any save."""
        error = ""
        if request.method == "POST":
            upload = request.FILES.get("file")
            text = upload.read().decode("utf-8", "replace") if upload else request.POST.get("document", "")
            try:
                agent = agent_import(document=json.loads(text), name=request.POST.get("name") or None)
            except ValueError:
                error = "That is not JSON: paste or upload an agent export."
            except ApplicationError as exc:
                error = f"{exc.message} {exc.details}" if exc.details else exc.message
            else:
                messages.success(request, f"Imported {agent.name}.")
                return HttpResponseRedirect(reverse("tenant_admin:agents_agent_change", args=[agent.pk]))
        return TemplateResponse(request, "admin/agents/agent_import.html",
                                {**self.admin_site.each_context(request), "title": "Import an agent", "error": error},
                                status=400 if error else 200)

    def save_model(self, request, obj, form, change):
        config = {name: form.cleaned_data[name] for name in AgentConfig.CONFIG_FIELDS}
        saved = agent_save(agent=obj if change else None, name=form.cleaned_data["name"], **config)
        obj.pk, obj.current_version = saved.pk, saved.current_version


@admin.register(AgentVersion, site=tenant_admin_site)
class AgentVersionAdmin(admin.ModelAdmin):
    list_display = ("agent", "number", "created_at")
    readonly_fields = [field.name for field in AgentVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HttpToolAdminForm(forms.ModelForm):
    """Secret header values are never rendered (a blank value keeps the stored one); the rules
    are http_tool_problems, as in the portal."""

    secret_header_names = forms.CharField(required=False, help_text="Comma-separated, e.g. Authorization")
    secret_header_values = forms.CharField(
        required=False, widget=SecretTextarea(attrs={"rows": 2}),
        help_text="One per line, in the order of the names; encrypted, never shown again. Blank keeps the stored value.")

    TOOL_FIELDS = ("name", "description", "parameters", "method", "url", "headers", "timeout_secs", "response_fields")

    class Meta:
        model = HttpTool
        fields = ("name", "description", "parameters", "method", "url", "headers", "timeout_secs", "response_fields")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["secret_header_names"].initial = ", ".join(self.instance.secret_header_dict())

    def tool_fields(self) -> dict:
        data = self.cleaned_data
        names = [name.strip() for name in (data.get("secret_header_names") or "").split(",") if name.strip()]
        values = (data.get("secret_header_values") or "").split("\n")
        stored = self.instance.secret_header_dict() if self.instance.pk else {}
        secrets = {name: (values[i].strip() if i < len(values) else "") or stored.get(name, "")
                   for i, name in enumerate(names)}
        fields = {name: data.get(name) for name in self.TOOL_FIELDS} | {"secret_headers": secrets}
        empty = {"parameters": {}, "headers": {}, "response_fields": []}
        return {name: empty[name] if value is None and name in empty else value for name, value in fields.items()}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            fields = self.tool_fields()
            fields["method"] = (fields["method"] or "").upper()
            for field, message in http_tool_problems(**fields).items():
                self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(HttpTool, site=tenant_admin_site)
class HttpToolAdmin(admin.ModelAdmin):
    form = HttpToolAdminForm
    list_display = ("name", "method", "url", "timeout_secs", "updated_at")

    def save_model(self, request, obj, form, change):
        saved = http_tool_save(tool=obj if change else None, **form.tool_fields())
        obj.pk = saved.pk


class McpServerAdminForm(forms.ModelForm):
    """Secret header values never rendered (blank keeps the stored one), as for HTTP tools."""

    secret_header_names = forms.CharField(required=False, help_text="Comma-separated, e.g. Authorization")
    secret_header_values = forms.CharField(
        required=False, widget=SecretTextarea(attrs={"rows": 2}),
        help_text="One per line, in the order of the names; encrypted, never shown again. Blank keeps the stored value.")

    class Meta:
        model = McpServer
        fields = ("name", "url", "timeout_secs")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["secret_header_names"].initial = ", ".join(self.instance.secret_header_dict())

    def server_fields(self) -> dict:
        data = self.cleaned_data
        names = [name.strip() for name in (data.get("secret_header_names") or "").split(",") if name.strip()]
        values = (data.get("secret_header_values") or "").split("\n")
        return {"name": data.get("name"), "url": data.get("url"), "timeout_secs": data.get("timeout_secs"),
                "secret_headers": {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(names)}}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            for field, message in mcp_server_problems(**self.server_fields()).items():
                self.add_error(field if field in self.fields else None, message)
        return cleaned


@admin.register(McpServer, site=tenant_admin_site)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerAdminForm
    list_display = ("name", "url", "timeout_secs", "updated_at")

    def save_model(self, request, obj, form, change):
        saved = mcp_server_save(server=McpServer.objects.get(pk=obj.pk) if change else None, **form.server_fields())
        obj.pk = saved.pk
