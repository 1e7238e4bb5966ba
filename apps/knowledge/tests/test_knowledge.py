"""Upload, extraction, chunking, embedding and search of a client's knowledge base, against
real PostgreSQL (pgvector, HNSW) and the real offline embedder (wordllama)."""
from django_tenants.utils import tenant_context

from apps.knowledge.extract import Extracted, chunk_text
from apps.knowledge.models import Chunk
from apps.knowledge.selectors import knowledge_search


def test_search_returns_the_passage_with_the_answer(kb, tenant_a, faq_text):
    with tenant_context(tenant_a):
        assert (kb.status, kb.progress, kb.error, kb.format) == ("ready", 100, "", "txt")
        assert kb.embedding_model == "wordllama:l2_supercat_256"
        chunks = list(Chunk.objects.filter(document=kb).order_by("position"))
        assert kb.chunk_count == len(chunks) >= 2
        assert {chunk.dimensions for chunk in chunks} == {256}
        for chunk in chunks:  # offsets point into the extracted text
            assert faq_text.strip()[chunk.start_offset:chunk.end_offset] == chunk.text
        result = knowledge_search(query="Do I need to complete my KYC before opening the account?", top_k=3)
        best = result.passages[0]
        assert best.source == "faq.txt"
        assert "complete KYC" in best.text
        assert best.position == next(chunk.position for chunk in chunks if "complete KYC" in chunk.text)
        assert result.embedding_model == "wordllama:l2_supercat_256"
        hours = knowledge_search(query="When are your branches open on Saturday?", top_k=1).passages[0]
        assert "Saturday from 10 am to 2 pm" in hours.text


def test_chunks_overlap_and_cover_the_text():
    text = " ".join(f"Sentence {i} is here." for i in range(300))
    chunks = chunk_text(Extracted(text=text), size=200, overlap=60)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end  # they overlap
        assert after.text.startswith("Sentence")  # at a sentence start
        assert len(before.text) <= 200
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
