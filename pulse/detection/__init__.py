"""Human, bot or AI agent: pure functions that weigh evidence and show their reasons.

`classify` looks at one request (user agent, headers, tracker signals, client IP);
`rescore` updates its verdict from session behaviour. Weights live in scoring.py, the
AI agent list in ai_agents.json, other bots come from the crawler-user-agents package.
"""

from pulse.detection.behaviour import rescore
from pulse.detection.classifier import classify
from pulse.detection.verdict import Verdict

__all__ = ["Verdict", "classify", "rescore"]
