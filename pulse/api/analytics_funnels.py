"""Funnel and retention reports as JSON (seed 002's funnel; cohorts by first-seen period)."""
