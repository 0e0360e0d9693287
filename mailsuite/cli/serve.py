"""`mailsuite serve`: the one command that starts the server machinery (`mailsuite.serve`:
TLS material, the password hasher pool, Twisted's reactor, every listener). Every other
command works on the files and the database alone."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from mailsuite.cli.common import config_option, load_settings
from mailsuite.config import config_path


@click.command()
@config_option
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Once every listener is up, write their bound addresses here as JSON.",
)
@click.option("--worker", "worker_spec", hidden=True, help="Run as one worker of a supervisor.")
def serve(config: Path | None, ready_file: Path | None, worker_spec: str | None) -> None:
    """Run every configured service until SIGTERM or SIGINT, in `workers` processes."""
    from mailsuite.logs import setup_logging
    from mailsuite.serve import StartupError
    from mailsuite.serve import serve as run
    from mailsuite.supervisor import supervise
    from mailsuite.workers import WorkerSpec, worker_count

    path = config_path(config)
    settings = load_settings(path, check_files=True)
    spec = WorkerSpec.decode(worker_spec) if worker_spec else None
    setup_logging(settings.log_level, tag=f"w{spec.slot}" if spec else "")
    try:
        if spec is None and worker_count(settings) > 1:
            asyncio.run(supervise(settings, path.resolve(), ready_file))
        else:
            asyncio.run(run(settings, path.resolve(), ready_file, spec))
    except StartupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
