"""Showing an ApplicationError on a Django form: field-level details on their
fields, the message as a form error otherwise."""
from __future__ import annotations

from django import forms

from apps.core.errors import ApplicationError


def form_add_application_error(form: forms.Form, exc: ApplicationError) -> None:
    placed = False
    for field, message in (exc.details or {}).items():
        if field in form.fields and isinstance(message, str):
            form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, exc.message)
