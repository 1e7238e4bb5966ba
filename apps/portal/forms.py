from django import forms
from django.contrib.auth.forms import AuthenticationForm


class PortalAuthenticationForm(AuthenticationForm):
    """Log in only users of the client whose host this is."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        tenant = self.request.tenant
        if user.is_agency:
            raise forms.ValidationError(
                "Agency staff open a client's portal from the agency admin (Clients → Open portal as client).",
                code="agency_user",
            )
        if user.client_id != tenant.pk:
            # Same message as a wrong password: do not reveal that the account exists elsewhere.
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                        params={"username": self.username_field.verbose_name})


class DateRangeForm(forms.Form):
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=[("client_viewer", "Viewer (reads everything)"),
                                      ("client_admin", "Admin (also edits agents, keys and the team)")],
                             initial="client_viewer")
