from django_tenants.utils import tenant_context

from apps.agents.seeds import seed_demo_data as seed_agents
from apps.campaigns.models import Campaign, CampaignContact
from apps.campaigns.seeds import DEMO_CAMPAIGN_NAME, seed_demo_data


def test_the_demo_campaign_is_a_draft_with_contacts_and_one_rejected_row(tenant_a):
    with tenant_context(tenant_a):
        seed_demo_data(client=tenant_a)  # before the agents app's seed: nothing to hang it on yet
        assert not Campaign.objects.exists()
        seed_agents(client=tenant_a)
        seed_demo_data(client=tenant_a)
        seed_demo_data(client=tenant_a)
        campaign = Campaign.objects.get(name=DEMO_CAMPAIGN_NAME)
        assert campaign.status == "draft"  # never dials by itself
        assert [n.number for n in campaign.numbers.all()] == ["+15550100100"]
        contacts = CampaignContact.objects.filter(campaign=campaign).order_by("row_number")
        assert [(c.phone_number, c.variables["first_name"]) for c in contacts] == [
            ("+14155550101", "Ada"), ("+12125550102", "Grace"), ("+13125550103", "Alan")]
        [report] = campaign.imports.all()
        assert (report.rows_total, report.rows_imported, [e["row"] for e in report.errors]) == (4, 3, [5])
