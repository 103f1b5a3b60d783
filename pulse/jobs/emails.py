"""Email jobs: sent over SMTP (in tests, an aiosmtpd server on loopback)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app, render_template

from pulse.extensions import db
from pulse.jobs import job
from pulse.models import Invitation


def send_email(to: str, subject: str, text: str) -> bool:
    """Send one message; False (and nothing sent) when SMTP is not configured."""
    config = current_app.config
    if not config.get("SMTP_HOST"):
        current_app.logger.info("SMTP is not configured; not sending %r to %s", subject, to)
        return False
    message = EmailMessage()
    message["From"] = config["SMTP_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    with smtplib.SMTP(
        config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"]
    ) as smtp:
        if config.get("SMTP_STARTTLS"):
            smtp.starttls()
        if config.get("SMTP_USERNAME"):
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        smtp.send_message(message)
    return True


@job
def send_invitation(invitation_id: int, token: str) -> bool:
    """Email the invite link; the token travels only in the job and the message."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.accepted_at is not None:
        return False
    url = f"{current_app.config['BASE_URL']}/invite/{token}"
    text = render_template("emails/invitation.txt", invitation=invitation, url=url)
    return send_email(invitation.email, f"You are invited to {invitation.team.name} on Pulse", text)
