"""Test helpers: local services (``services``) and CLI subprocesses (``processes``)."""
