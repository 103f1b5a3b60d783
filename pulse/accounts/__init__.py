"""Accounts: people, passwords, sessions, API keys, scopes and the acting principal."""
