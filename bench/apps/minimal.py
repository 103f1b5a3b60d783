"""The smallest Flask app worth serving: the baseline bench/ingest.py compares ingest with.

gunicorn --pythonpath bench/apps minimal:app
"""

from flask import Flask

app = Flask(__name__)


@app.post("/min")
def minimal():
    """Answer 204 without reading the body: only Flask and gunicorn cost anything."""
    return "", 204
