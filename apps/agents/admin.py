from django import forms
from django.contrib import admin

from apps.agents.models import Agent, AgentConfig, AgentVersion
from apps.agents.services import agent_config_problems, agent_save
from apps.core.admin_sites import tenant_admin_site


class AgentForm(forms.ModelForm):
    class Meta:
        model = Agent
        fields = ("name", "is_active", *AgentConfig.CONFIG_FIELDS)

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
