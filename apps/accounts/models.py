from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models


class User(AbstractUser):
    """One user table in the public schema for the agency and every client.

    Agency roles work in the Django admin and may open any client (audited);
    client roles belong to exactly one client and see only its portal.
    """

    class Role(models.TextChoices):
        AGENCY_OWNER = "agency_owner", "Agency owner"
        AGENCY_STAFF = "agency_staff", "Agency staff"
        CLIENT_ADMIN = "client_admin", "Client admin"
        CLIENT_VIEWER = "client_viewer", "Client viewer"

    AGENCY_ROLES = (Role.AGENCY_OWNER, Role.AGENCY_STAFF)
    CLIENT_ROLES = (Role.CLIENT_ADMIN, Role.CLIENT_VIEWER)

    email = models.EmailField(unique=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CLIENT_VIEWER)
    client = models.ForeignKey(
        "tenancy.Client", null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="client_role_has_client",
                condition=(
                    models.Q(role__in=["agency_owner", "agency_staff"], client__isnull=True)
                    | models.Q(role__in=["client_admin", "client_viewer"], client__isnull=False)
                ),
            )
        ]

    @property
    def is_agency(self) -> bool:
        return self.role in self.AGENCY_ROLES

    def can_access_client(self, client) -> bool:
        if self.is_agency:
            return True
        return self.client_id is not None and self.client_id == client.id

    def can_edit_client_data(self, client) -> bool:
        return self.is_agency or (self.client_id == client.id and self.role == self.Role.CLIENT_ADMIN)

    def clean(self):
        super().clean()
        if self.role in self.CLIENT_ROLES and not self.client_id:
            raise ValidationError({"client": "A client user must belong to a client."})
        if self.role in self.AGENCY_ROLES and self.client_id:
            raise ValidationError({"client": "Agency users do not belong to a client."})

    def save(self, *args, **kwargs):
        if self.is_superuser and not self.client_id:
            self.role = self.Role.AGENCY_OWNER  # e.g. made by createsuperuser
        # Agency roles run the admin; client roles never do.
        self.is_staff = self.role in self.AGENCY_ROLES
        if self.role == self.Role.AGENCY_OWNER:
            self.is_superuser = True
        elif self.role in self.CLIENT_ROLES:
            self.is_superuser = False
        super().save(*args, **kwargs)
