from apps.tenancy.selectors import brand_for


def branding(request):
    """The agency's identity (`agency`) and what this page should look like (`brand`: the client's
    own name, logo and colour on its portal where the agency set them, else the agency's)."""
    client = getattr(request, "tenant", None)
    agency, brand = brand_for(client=client)
    return {"agency": agency, "brand": brand, "current_client": client}
