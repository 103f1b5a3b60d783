"""Development entry point: `python app.py` (or `make run`)."""

import os

from pulse import create_app

app = create_app()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), threaded=True)
