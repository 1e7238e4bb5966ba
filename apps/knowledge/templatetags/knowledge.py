"""{{ tool.result|kb_passages }}: the passages a `search_knowledge_base` call returned (its trace JSON)."""
import json

from django import template

register = template.Library()


@register.filter
def kb_passages(result) -> list[dict]:
    try:
        data = json.loads(result or "")
    except (TypeError, ValueError):
        return []
    passages = data.get("passages") if isinstance(data, dict) else None
    return [item for item in passages if isinstance(item, dict)] if isinstance(passages, list) else []
