"""Hostile input never reaches a 500: a request carrying NUL bytes in its path,
query or form is refused up front (PostgreSQL text cannot hold them), and a
value the database cannot take (a number past bigint, an impossible date, a NUL
inside a JSON string) is answered 400 instead of a traceback, in the format of
the door that was called: JSON for /api/, a short text otherwise."""
from __future__ import annotations

import logging

from django.db import DataError
from django.http import HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

NUL = "\x00"
BAD_VALUE_MESSAGE = "A value in the request is out of range or not valid (e.g. a number too large); check it and try again."


def _bad_request(request, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": message, "details": {}}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _has_nul(request) -> bool:
    if NUL in request.path:
        return True
    # A urlencoded form is parsed from request.body (kept); parsing a multipart one here would consume the
    # stream a view may still read as request.body (a 500). Its fields still reach the database's refusal
    # (process_exception: DataError -> 400) and Django's form fields' NUL validator.
    for query in (request.GET, request.POST if request.content_type == "application/x-www-form-urlencoded" else None):
        if query is None:
            continue
        for key, values in query.lists():
            if NUL in key or any(isinstance(value, str) and NUL in value for value in values):
                return True
    return False


class HostileInputMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _has_nul(request):
            return _bad_request(request, "The request contains a NUL character (\\x00); remove it and try again.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DataError):
            logger.warning("refused input the database cannot store: %s %s: %s", request.method, request.path,
                           str(exception).splitlines()[0] if str(exception) else type(exception).__name__)
            return _bad_request(request, BAD_VALUE_MESSAGE)
        return None
