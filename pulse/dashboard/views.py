"""Dashboard views (placeholder until the dashboard shell lands)."""

from flask import redirect, render_template, url_for
from flask_login import current_user

from pulse.dashboard import bp


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("dashboard.sign_in"))
    return render_template("base.html")


@bp.get("/signin")
def sign_in():
    return render_template("base.html")
