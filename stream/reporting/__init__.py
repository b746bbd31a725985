"""Reports for people who do not use Grafana: self-contained HTML pages with charts."""
