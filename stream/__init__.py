"""The service around the domain: settings, app factory, stores, sinks, API, metrics, CLI."""
