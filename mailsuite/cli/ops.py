"""Running the suite: `check-config`, `config-example`, `status` and `dns`.

`status` only asks the running server over its control socket; nothing here starts one.
"""

from __future__ import annotations

from pathlib import Path

import click

from mailsuite.cli.common import config_option, fail, load_settings, open_directory
from mailsuite.config import Settings, config_path


@click.command("check-config")
@config_option
def check_config(config: Path | None) -> None:
    """Report every problem in the config at once (exit 1), or summarise a valid one."""
    path = config_path(config)
    settings = load_settings(path, check_files=True)
    listeners = [f"{k}={h}:{p}" for k, v in settings.listen if v for h, p in [v]]
    click.echo(
        f"{path}: OK: {settings.hostname}, domains {', '.join(settings.domains)}; "
        f"{len(listeners)} listener(s): {' '.join(listeners) or 'none'}"
    )
    click.echo(_workers_line(settings))
    if settings.paths.database.exists():
        from mailsuite.smtp.postmaster import explain

        # RFC 5321 4.5.1: postmaster mail must land somewhere; say where, or what is wrong.
        directory = open_directory(settings)
        try:
            click.echo(explain(settings, directory))
        finally:
            directory.close()


def _workers_line(settings: Settings) -> str:
    """What `workers` means on this machine: how many processes serve will start."""
    from mailsuite.workers import worker_count

    count = worker_count(settings)
    how = "one per core" if settings.workers == "auto" else "set in the config"
    if count == 1:
        return f"workers: 1 ({how}): one server process, no supervisor"
    return (
        f"workers: {count} ({how}): a supervisor and {count} server processes sharing the "
        "listeners; the queue and the fetcher run in the first"
    )


@click.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON report.")
def status(config: Path | None, as_json: bool) -> None:
    """Ask the running server for its listeners, counters, queue and fetcher state (with
    several workers: the host's, added up, and a line for each worker)."""
    import json

    from mailsuite.control import ask

    settings = load_settings(config)
    try:
        reply = ask(settings.paths.control_socket)
    except OSError:
        fail(f"no running server answers at {settings.paths.control_socket} (is serve running?)")
    report = reply["status"]
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    hours, rest = divmod(int(report["uptime"]), 3600)
    click.echo(
        f"mailsuite on {report['hostname']}, pid {report['pid']}, up {hours}h{rest // 60:02d}m"
    )
    click.echo("listeners:")
    for name, (host, port) in sorted(report["listeners"].items()):
        click.echo(f"  {name:<12} {host}:{port}")
    lag = report["loop_lag_ms"]
    click.echo(f"event loop lag: {lag['last']} ms now, {lag['worst']} ms worst")
    if "workers" in report:
        click.echo("workers (counters below are their sum):")
        for w in report["workers"]:
            state = f"lag {w['loop_lag_ms']} ms" if w["answered"] else "not answering"
            click.echo(
                f"  w{w['slot']:<3} pid {w['pid']}, up {int(w['uptime'])} s, "
                f"{w['open_connections']} open connections, {w['restarts']} restarts, {state}"
            )
    for section in sorted(
        k
        for k, v in report.items()
        if isinstance(v, dict) and k not in {"listeners", "loop_lag_ms", "counters"}
    ):
        click.echo(f"{section}:")
        for key, value in sorted(report[section].items()):
            click.echo(f"  {key:<20} {value}")
    if report["counters"]:
        click.echo("counters:")
        for key, value in sorted(report["counters"].items()):
            click.echo(f"  {key:<28} {value}")


@click.command()
@click.argument("domain")
@config_option
def dns(domain: str, config: Path | None) -> None:
    """Print the DNS records to publish for DOMAIN (MX, SPF, DKIM, DMARC, SRV, autoconfig)."""
    from mailsuite.clientconfig import dns_records
    from mailsuite.smtp.signing import dns_record, key_path

    settings = load_settings(config)
    domain = domain.lower()
    if domain not in settings.domains:
        fail(f"{domain!r} is not one of this server's domains ({', '.join(settings.domains)})")
    keys = settings.paths.dkim_keys
    dkim = (
        dns_record(keys, domain, settings.smtp.dkim_selector)
        if key_path(keys, domain).exists()
        else None
    )
    click.echo(dns_records(settings, domain, dkim), nl=False)


@click.command("config-example")
def config_example() -> None:
    """Print every config key with its default and description, as YAML."""
    from mailsuite.config.example import example_yaml

    click.echo(example_yaml(), nl=False)
