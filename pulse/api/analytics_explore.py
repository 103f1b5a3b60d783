"""Explorers as JSON: raw events, sessions, one session, properties, heatmap, POST /query."""
