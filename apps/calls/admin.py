from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from apps.calls.models import Call, CallUsage, ToolCall, Turn
from apps.core.admin_sites import tenant_admin_site


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ("index", "user_text", "bot_text", "interrupted", "stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms",
              "voice_to_voice_ms", "errors")


class ToolCallInline(ReadOnlyInline):
    model = ToolCall
    fields = ("turn", "name", "arguments", "result", "duration_ms", "error")


class CallUsageInline(ReadOnlyInline):
    model = CallUsage
    fields = ("metric", "dimension", "provider", "quantity")


@admin.register(Call, site=tenant_admin_site)
class CallAdmin(admin.ModelAdmin):
    """Read-only: calls are written by the runtime. The recording plays through the
    permission-checked portal view, never a /media URL."""

    list_display = ("created_at", "direction", "from_number", "to_number", "agent_version", "status", "end_reason", "duration_secs")
    list_filter = ("direction", "status", "end_reason", "carrier")
    search_fields = ("from_number", "to_number", "carrier_call_id")
    exclude = ("recording", "transcript", "trace_url")
    inlines = [TurnInline, ToolCallInline, CallUsageInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Call._meta.fields if field.name not in self.exclude] + [
            "recording_player", "trace_link"]

    @admin.display(description="trace")
    def trace_link(self, obj):
        if obj.trace_url:
            return format_html('<a href="{}" target="_blank" rel="noopener">Open in Langfuse</a>', obj.trace_url)
        return obj.trace_id or "—"

    @admin.display(description="recording")
    def recording_player(self, obj):
        if not obj.recording:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio> <a href="{}">transcript</a>',
                           reverse("calls:recording", args=[obj.pk]), reverse("calls:transcript", args=[obj.pk]))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of a call (and what it was billed) stays
