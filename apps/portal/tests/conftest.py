from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401  (shared portal users)
