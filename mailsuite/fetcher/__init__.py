"""External accounts: polling users' remote mailboxes into their own (read-only remotely).

`engine.Fetcher` copies one account (synchronously, in a worker thread); `service` is the
background service `serve` starts, which polls every account on a schedule with bounded
concurrency; `providers` holds well-known providers' server settings for the wizard.
"""
