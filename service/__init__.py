"""The Flowtide service (``flowtide serve``): REST API, webhooks and GraphQL over the same client code as the CLI."""
