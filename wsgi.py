"""Production entry point: `gunicorn wsgi:app`."""

import gc

from pulse import create_app

app = create_app()
# Everything loaded so far (the app, its imports, the detection lists) lives as long as
# the worker: keep it out of the collector's full passes, which would otherwise walk it
# again and again under load.
gc.freeze()
