from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from apps.accounts.models import User
from apps.accounts.services import user_save


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["email", "role", "client", "is_active", "last_login"]
    list_filter = ["role", "client", "is_active"]
    search_fields = ["email", "username"]
    ordering = ["email"]
    fieldsets = (
        (None, {"fields": ("username", "email", "password")}),
        ("Role", {"fields": ("role", "client", "is_active")}),
        ("Personal", {"fields": ("first_name", "last_name")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "role", "client", "password1", "password2")}),
    )

    def save_model(self, request, obj, form, change):
        user_save(user=obj, actor=request.user)
