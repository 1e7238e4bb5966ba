from apps.portal.tests.fixtures import acme_admin, acme_viewer  # noqa: F401 (portal user fixtures)
from apps.telephony.tests.conftest import acme_number, globex_number, twilio_double  # noqa: F401 (numbers, Twilio double)
