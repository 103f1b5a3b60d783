"""The write path: request facts -> validate -> enrich -> store (see ARCHITECTURE.md)."""
