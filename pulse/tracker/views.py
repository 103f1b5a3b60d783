"""Serve the minified tracker: read and gzipped once at import, cached by browsers and CDNs."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, request

DIST = Path(__file__).resolve().parent / "dist"
JAVASCRIPT = "application/javascript; charset=utf-8"
# The snippet's URL (/pulse.js) carries no version, so a new release must reach
# visitors without anyone editing their pages: a day of freshness, then a week in
# which a cache may serve the old copy while it revalidates in the background.
# A year would pin every visitor to the old tracker for a year.
SHORT_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
# /pulse.js?v=<hash> names one exact build, so that URL may be cached for good.
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"

bp = Blueprint("tracker", __name__)


@dataclass(frozen=True)
class Asset:
    """One built file, its gzip level-9 twin, and the validators derived from its bytes."""

    body: bytes
    gzipped: bytes
    version: str  # short content hash, the `v` of a versioned URL

    @property
    def etag(self) -> str:
        return self.version

    @property
    def gzip_etag(self) -> str:
        # A strong ETag names exact bytes, and the gzipped bytes differ from the plain ones.
        return f"{self.version}-gz"


def load(name: str) -> Asset:
    body = (DIST / name).read_bytes()
    return Asset(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        version=hashlib.sha256(body).hexdigest()[:16],
    )


ASSETS = {name: load(name) for name in ("pulse.js", "pulse.core.js")}


def versioned_path(name: str = "pulse.js") -> str:
    """A URL path that may be cached forever, such as /pulse.js?v=0123456789abcdef."""
    return f"/{name}?v={ASSETS[name].version}"


def serve(asset: Asset) -> Response:
    use_gzip = request.accept_encodings.quality("gzip") > 0
    etag = asset.gzip_etag if use_gzip else asset.etag
    immutable = request.args.get("v") == asset.version
    headers = {
        "Cache-Control": IMMUTABLE_CACHE if immutable else SHORT_CACHE,
        "Vary": "Accept-Encoding",
        "Access-Control-Allow-Origin": "*",
        # Pages that set Cross-Origin-Embedder-Policy may still load the script.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if request.if_none_match.contains_weak(asset.etag) or request.if_none_match.contains_weak(
        asset.gzip_etag
    ):
        response = Response(status=304, headers=headers)
    else:
        response = Response(asset.gzipped if use_gzip else asset.body, headers=headers)
        response.content_type = JAVASCRIPT
        if use_gzip:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(etag)
    return response


@bp.get("/pulse.js")
@bp.get("/tracker.js")  # the path seed 002 documents
@bp.get("/js/pulse.js")
def full() -> Response:
    """Everything: page views, events, clicks, engagement and detection signals."""
    return serve(ASSETS["pulse.js"])


@bp.get("/pulse.core.js")
@bp.get("/js/pulse.core.js")
def core() -> Response:
    """Page views and custom events only, for sites that want the smallest script."""
    return serve(ASSETS["pulse.core.js"])
