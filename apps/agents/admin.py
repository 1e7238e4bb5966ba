from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from apps.agents.models import Agent, AgentConfig, AgentVersion
from apps.agents.services import agent_config_validate, agent_save
from apps.core.admin_sites import tenant_admin_site
from apps.core.errors import ApplicationError


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ("name", "is_active", *AgentConfig.CONFIG_FIELDS)

    def clean(self):
        cleaned = super().clean()
        config = {name: cleaned.get(name) for name in AgentConfig.CONFIG_FIELDS}
        try:
            agent_config_validate(config=config)
        except ApplicationError as exc:
            raise ValidationError({field: message for field, message in exc.details.items() if field in self.fields}
                                  or exc.message) from exc
        return cleaned


class AgentVersionInline(admin.TabularInline):
    model = AgentVersion
    fields = ("number", "name", "stt_provider", "llm_provider", "tts_provider", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Agent, site=tenant_admin_site)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ("name", "current_version", "stt_provider", "llm_provider", "tts_provider", "is_active", "updated_at")
    inlines = [AgentVersionInline]

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
