"""``berth serve``: placement as a service on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adapters.cli.common import console, run_guarded

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``berth serve`` to ``app``."""

    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        config: Annotated[Path | None, typer.Option(help="Service config (YAML/JSON); default $BERTH_CONFIG.")] = None,
        hash_token: Annotated[str | None, typer.Option(
            "--hash-token", help="Print the sha256 to store in the config for TOKEN, and exit.")] = None,
    ) -> None:
        """Serve the HTTP API (OpenAPI at /docs). Exit 2 on a bad config, 3 if git cannot be read."""

        def body() -> None:
            from adapters.api import create_app, load_config
            from adapters.api.config import hash_token as digest

            if hash_token is not None:
                console.print(digest(hash_token), highlight=False)
                return
            cfg = load_config(config)  # None: $BERTH_CONFIG
            if not cfg.tokens:
                console.print("[yellow]warning:[/] no tokens configured: every /v1 call will get 401")
            application = create_app(cfg)

            import uvicorn

            console.print(f"berth: serving on http://{host}:{port} (OpenAPI at /docs)")
            # open watch streams end only by their timeoutSeconds: on shutdown, wait for them 30 s at most
            uvicorn.run(application, host=host, port=port, log_level="info", access_log=True,
                        timeout_graceful_shutdown=30)

        run_guarded(body)
