"""Server-side capture: the traffic that never runs JavaScript (AI crawlers, most bots).

Two ways in, one rule for what counts as a page: `wsgi.PulseMiddleware` records the
requests of a running Python app, `pulse.ingest.logimport` reads the access logs of
any web server. This package stays standard-library only, so the middleware can be
used (or vendored as one file) by an app that does not run Pulse itself.
"""

from __future__ import annotations

# Fetched because of a page, not instead of one: leaving them out keeps pageviews
# comparable with the JavaScript tracker. Documents crawlers read (robots.txt,
# sitemap.xml, llms.txt, feeds, PDFs) are not in this list and are counted.
ASSET_EXTENSIONS = frozenset(
    {
        "css", "js", "mjs", "map",
        "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico", "bmp", "tif", "tiff",
        "woff", "woff2", "ttf", "otf", "eot",
        "mp4", "webm", "mp3", "ogg", "wav", "m4a", "mov",
        "wasm",
    }
)  # fmt: skip


def is_asset(path: str) -> bool:
    """True when the path (no query string) names a static asset by its extension."""
    dot = path.rfind(".")
    return dot > path.rfind("/") and path[dot + 1 :].lower() in ASSET_EXTENSIONS
