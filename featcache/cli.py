"""The ``featcache`` command line: a thin typer layer over the library.

Every command is one library call that a user could also make from Python.
"""

from __future__ import annotations

from typing import Optional

import typer

import featcache

app = typer.Typer(
    name="featcache",
    help="Run frozen backbones once, cache their features in HDF5, train light heads in seconds.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"featcache {featcache.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """featcache: transfer learning on images by cached features."""


if __name__ == "__main__":  # pragma: no cover
    app()
