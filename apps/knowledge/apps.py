from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    """Per-client knowledge bases (tenant schema): documents, chunks, embeddings (pgvector), search."""

    name = "apps.knowledge"
    label = "knowledge"
    verbose_name = "Knowledge base"
