"""``python -m flowtide.worker``: run a Flowtide worker (same as ``flowtide worker``)."""

from flowtide.client.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["worker"]))
