"""`reidkit datasets ...`: the layouts reidkit reads, a dataset's statistics and its problems."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reidkit.cli_output import console, setup_logging

datasets_app = typer.Typer(help="Inspect dataset layouts.", no_args_is_help=True)


@datasets_app.command("list")
def datasets_list() -> None:
    """List the dataset layouts reidkit reads."""
    from reidkit.data.readers import READERS

    table = Table("format", "layout")
    for name, info in READERS.items():
        table.add_row(name, info.description)
    console.print(table)


def _stats_table(stats: dict[str, dict[str, Any]]) -> Table:
    table = Table("part", "ids", "images", "records", "captions", "cameras (camid: images)")
    for part, s in stats.items():
        table.add_row(
            part,
            str(s["ids"]),
            str(s["images"]),
            str(s["records"]),
            str(s["captions"]),
            ", ".join(f"{c}: {n}" for c, n in s["cameras"].items()),
        )
    return table


def reader_options(option: list[str] | None) -> dict[str, Any]:
    from reidkit.config import parse_overrides

    return dict(parse_overrides(option or []))


@datasets_app.command("stats")
def datasets_stats(
    path: Path,
    format: Annotated[str, typer.Option("--format", "-f", help="Layout name (see `datasets list`).")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Reader option key=value.")
    ] = None,
) -> None:
    """Statistics of a dataset (ids, images, cameras per split, captions), without decoding images."""
    from reidkit.data.readers import read_split

    setup_logging()
    split = read_split(format, path, **reader_options(option))
    console.print(_stats_table(split.stats()))


@datasets_app.command("check")
def datasets_check(
    path: Path,
    format: Annotated[str, typer.Option("--format", "-f", help="Layout name (see `datasets list`).")],
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Reader option key=value.")
    ] = None,
    decode: Annotated[bool, typer.Option(help="Decode every image to find truncated files.")] = True,
) -> None:
    """Check a dataset: statistics and every problem found; exits 1 on errors."""
    from reidkit.data.check import check_dataset, format_report

    setup_logging()
    result = check_dataset(path, format, decode_images=decode, **reader_options(option))
    console.print(format_report(result), markup=False, highlight=False)
    raise typer.Exit(0 if result.ok else 1)
