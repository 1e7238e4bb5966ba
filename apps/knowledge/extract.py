"""Text out of what a client uploads (txt, md, html, pdf) or points at (a URL), and that
text cut into overlapping chunks. Pure functions plus one HTTP fetch; no ORM.

- PDF: pypdf, page by page (each chunk remembers the page it starts on); a PDF with
  no text layer (a scan) is refused with a message saying so.
- HTML: tinyhtml5 (an HTML5 parser) builds the tree; script/style/nav/header/footer and
  the like are dropped, block elements become line breaks, whitespace is collapsed.
- A URL: GET with connect/read timeouts, at most MAX_FETCH_BYTES, http(s) only; the
  answer's content type picks the format.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from apps.core.errors import ApplicationError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_FETCH_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_SECS = 15.0
CHUNK_CHARS = 500  # a chunk's target size (short passages keep averaged-word embeddings sharp)
OVERLAP_CHARS = 100  # what consecutive chunks share, at most
FORMATS_BY_SUFFIX = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
                     ".pdf": "pdf"}


@dataclass(frozen=True)
class Extracted:
    text: str
    # (offset in text, 1-based page) where each PDF page starts; empty for other formats.
    pages: tuple[tuple[int, int], ...] = ()

    def page_at(self, offset: int) -> int | None:
        page = None
        for start, number in self.pages:
            if start > offset:
                break
            page = number
        return page


@dataclass(frozen=True)
class TextChunk:
    position: int
    start: int
    end: int
    text: str
    page: int | None = None


def format_for_name(name: str) -> str:
    lowered = name.lower()
    for suffix, fmt in FORMATS_BY_SUFFIX.items():
        if lowered.endswith(suffix):
            return fmt
    raise ApplicationError(
        f"{name!r} is not a file the knowledge base reads: upload .txt, .md, .html or .pdf.",
        details={"file": name},
    )


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- HTML -------------------------------------------------------------------------------------------------------

_SKIP = {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "head", "nav", "footer", "form",
         "button", "select", "option"}
_BLOCK = {"address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption",
          "figure", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol", "p", "pre", "section",
          "table", "tr", "ul", "title", "caption", "summary", "details"}


def html_to_text(html: str) -> str:
    import tinyhtml5

    root = tinyhtml5.parse(html, namespace_html_elements=False)
    parts: list[str] = []
    title = root.find("head/title")
    if title is not None and (title.text or "").strip():
        parts.append(title.text.strip() + "\n\n")

    def walk(element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _SKIP:
            if element.tail:
                parts.append(element.tail)
            return
        block = tag in _BLOCK
        if block:
            parts.append("\n")
        if tag in ("td", "th"):
            parts.append(" ")
        elif tag == "br":
            parts.append("\n")
        if element.text:
            parts.append(element.text)
        for child in element:
            walk(child)
        if block:
            parts.append("\n")
        if element.tail:
            parts.append(element.tail)

    body = root.find("body")
    walk(body if body is not None else root)
    return _tidy("".join(parts))


# --- PDF --------------------------------------------------------------------------------------------------------


def pdf_to_text(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:  # noqa: BLE001 - pypdf raises several kinds here
                raise ApplicationError("This PDF is password-protected: upload an unprotected copy.") from None
        texts, pages, offset = [], [], 0
        for number, page in enumerate(reader.pages, start=1):
            # PDF lines end where the layout did, not where sentences do: join them (a blank line stays).
            text = re.sub(r"(?<!\n)\n(?!\n)", " ", _tidy(page.extract_text() or ""))
            if not text:
                continue
            pages.append((offset, number))
            texts.append(text)
            offset += len(text) + 2
    except ApplicationError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as error:
        raise ApplicationError(f"This PDF could not be read ({error.__class__.__name__}: {str(error)[:120]}); "
                               "check it opens in a PDF viewer, or upload its text.") from None
    if not texts:
        raise ApplicationError("This PDF has no text layer (a scan?): run it through OCR, or upload its text.")
    return Extracted(text="\n\n".join(texts), pages=tuple(pages))


def extract(data: bytes, fmt: str) -> Extracted:
    """The text of `data` in format `fmt` ("txt", "md", "html", "pdf"). ApplicationError when
    there is none."""
    if fmt == "pdf":
        return pdf_to_text(data)
    if fmt == "html":
        text = html_to_text(_decode(data))
    elif fmt in ("txt", "md"):
        text = _tidy(_decode(data))
    else:
        raise ApplicationError(f"Unknown document format {fmt!r}.")
    if not text:
        raise ApplicationError("The document holds no text.")
    return Extracted(text=text)


# --- chunks -----------------------------------------------------------------------------------------------------

_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def _cut(text: str, start: int, limit: int, stop: int) -> int:
    """Where a chunk that starts at `start` should end: at most `limit` characters on, at the
    strongest break (paragraph, line, sentence, clause, word) in its second half."""
    hard = min(stop, start + limit)
    if hard == stop:
        return hard
    floor = start + limit // 2
    for mark in _BREAKS:
        at = text.rfind(mark, floor, hard)
        if at != -1:
            return at + len(mark)
    return hard


def _overlap_start(text: str, earliest: int, end: int) -> int:
    """Where the next chunk starts: the first sentence (else word) start in [earliest, end)."""
    for mark in ("\n\n", ". ", "? ", "! ", "\n", " "):
        at = text.find(mark, earliest, end)
        if at != -1 and at + len(mark) < end:
            return at + len(mark)
    return earliest


def chunk_text(extracted: Extracted, *, size: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS) -> list[TextChunk]:
    """Chunks of about `size` characters, each starting up to `overlap` characters (at a
    sentence, else word, boundary) before the previous one ended, so a fact cut at a boundary is whole in
    one of them. Offsets are into `extracted.text`."""
    text = extracted.text
    chunks: list[TextChunk] = []
    # A PDF is cut page by page, so each chunk's page is the page it is on.
    bounds = [start for start, _ in extracted.pages[1:]] + [len(text)]
    section_start = 0
    for section_end in bounds:
        _chunk_section(text, section_start, section_end, size, overlap, extracted, chunks)
        section_start = section_end
    return chunks


def _chunk_section(text: str, start: int, stop: int, size: int, overlap: int, extracted: Extracted,
                   chunks: list[TextChunk]) -> None:
    while start < stop:
        end = _cut(text, start, size, stop)
        piece = text[start:end]
        stripped_start = start + (len(piece) - len(piece.lstrip()))
        body = text[stripped_start:end].rstrip()
        if body:
            chunks.append(TextChunk(position=len(chunks), start=stripped_start, end=stripped_start + len(body),
                                    text=body, page=extracted.page_at(stripped_start)))
        if end >= stop:
            break
        start = _overlap_start(text, max(end - overlap, start + 1), end)


# --- URLs -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    data: bytes
    format: str


def _format_of(content_type: str, url: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return "html"
    if kind == "application/pdf":
        return "pdf"
    if kind in ("text/markdown", "text/x-markdown"):
        return "md"
    if kind.startswith("text/"):
        return "txt"
    path = url.split("?")[0].split("#")[0]
    try:
        return format_for_name(path)
    except ApplicationError:
        raise ApplicationError(f"{url} answered with {kind or 'no content type'}, which the knowledge base does "
                               "not read (HTML, text, Markdown or PDF).", details={"url": url}) from None


def fetch_url(url: str, *, timeout_secs: float = FETCH_TIMEOUT_SECS, max_bytes: int = MAX_FETCH_BYTES) -> Fetched:
    """GET `url` (redirects followed, at most 5), refusing more than `max_bytes`. Every
    failure is an ApplicationError saying what happened."""
    import httpx

    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_secs, connect=min(5.0, timeout_secs)), follow_redirects=True,
                          max_redirects=5, headers={"User-Agent": "Switchboard-KnowledgeBase/1"}) as client:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise ApplicationError(f"{url} answered HTTP {response.status_code}.",
                                           details={"url": url, "status": response.status_code})
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise ApplicationError(f"{url} is {int(declared) // 1024} KB; the limit is {max_bytes // 1024} KB.",
                                           details={"url": url})
                body = bytearray()
                for part in response.iter_bytes():
                    body.extend(part)
                    if len(body) > max_bytes:
                        raise ApplicationError(f"{url} is larger than {max_bytes // 1024} KB, the limit.",
                                               details={"url": url})
                fmt = _format_of(response.headers.get("content-type", ""), str(response.url))
    except httpx.TimeoutException:
        raise ApplicationError(f"{url} did not answer within {timeout_secs:g} seconds.", details={"url": url}) from None
    except httpx.TooManyRedirects:
        raise ApplicationError(f"{url} redirected too many times.", details={"url": url}) from None
    except httpx.HTTPError as error:
        raise ApplicationError(f"{url} could not be fetched: {error.__class__.__name__}: {str(error)[:150]}",
                               details={"url": url}) from None
    return Fetched(data=bytes(body), format=fmt)
