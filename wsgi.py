"""Production entry point: `gunicorn wsgi:app`."""

from pulse import create_app

app = create_app()
