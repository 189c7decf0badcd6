"""serve's HTML pages for people: search (``/``), a page per repo, mirror status and login. Server-rendered,
no JavaScript; every page is sent with a strict Content-Security-Policy."""

from __future__ import annotations

from .pages import PAGES, dispatch

__all__ = ["PAGES", "dispatch"]
