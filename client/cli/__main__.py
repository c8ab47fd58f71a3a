"""``python -m flowtide.client.cli``."""

from flowtide.client.cli.main import main

raise SystemExit(main())
