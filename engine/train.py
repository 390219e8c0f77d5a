"""Train a pet-breed classifier from the command line and export it.

    python -m engine.train --data ~/.cache/petbreeds/oxford-iiit-pet --export my_model --half

``--data`` is any of (see ``engine.data.pets.open_data``): the full Oxford-IIIT Pet download
(``images/`` + ``annotations/``: trains on the official trainval split and reports the error on
the official test split), the 370-photo sample folder or any CSV table (``name``, ``breed`` and, if
present, ``is_valid`` columns; images in ``images/`` beside it), or a folder of images named like
``great_pyrenees_173.jpg`` (a random 20% for validation).

``--preset full`` instead runs the chapter's whole flow at full scale, for a GPU and the full
download (``engine.learning.full_scale``): a head-only baseline, the LR finder after unfreezing,
unfrozen epochs with discriminative rates, then efficientnet_lite2 at 288 pixels in mixed
precision; it prints each stage's error on the official test split beside the book's figure (the
README says how long it takes). ``--preset tiny`` is a smoke run of the same flow: one epoch a
step, tiny images, 5 photos per breed.

The recipe's options are made from the fields of ``engine.recipe.Recipe`` (its defaults are the
defaults here; ``RECIPE_FLAGS`` gives each field its flag and help, e.g. ``--lr`` for ``base_lr``),
and ``run_recipe(data, recipe)`` runs it: the same path as ``bench/train.py`` and the web demo's Train tab.

The default recipe, chosen for a small CPU: fine_tune with the frozen phase trained on cached body
features (``--views`` views of every training photo: as is, mirrored, then random augmentations)
for ``--freeze-epochs`` one-cycle epochs, then ``--epochs`` unfrozen epochs (none by default: on
two CPU cores they are slow, and with so few photos they did not lower the validation error). The
report uses test-time augmentation (each photo and its mirror image).

The head does not start from random numbers: ``--head-init lda`` (the default) sets it in closed
form from the class averages of the cached features (shrinkage LDA with a cross-validated
temperature, see ``engine/learning/head_init.py``), and the frozen epochs only polish it, at a
lower learning rate than a random head needs (``recipe.LR_AFTER``).

The final size is larger than the 224 the body was pretrained at. ImageNet training zooms into
random crops, so at 224 a centre-cropped photo shows the animal smaller than the network is used
to; a larger input makes up for that (Touvron et al., "Fixing the train-test resolution
discrepancy", 2019). It costs more compute per photo: pass ``--size 224`` where inference speed
matters more (the demo's model does). Every choice was made by cross-validation on the sample's
training photos; the README's design notes have the figures.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace

from .learning.full_scale import PRESETS
from .models import ARCHS
from .recipe import LR_AFTER, Recipe, TrainingRun

__all__ = ["build_parser", "recipe_from", "main", "RECIPE_FLAGS"]

R = Recipe()  # the defaults, as the recipe defines them


@dataclass(frozen=True)
class Flag:
    """How one ``Recipe`` field appears on the command line. Its type and default come from the
    field; a True/False field is a switch, and giving it turns the recipe's default around."""

    name: str  # the option, e.g. "--freeze-epochs"
    # what it does; "(default ...)" is added from the recipe unless ``show_default`` is False
    help: str | Callable[[], str]
    type: type | None = None  # where the default (None) does not say it
    # the allowed values; help and choices may be functions, called when the parser is built
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None
    metavar: str | None = None  # the value's name in --help (argparse's default: the choices, else the name)
    show_default: bool = True


# One entry per field of ``Recipe`` (a nested dataclass's fields as "field.subfield"); a field left
# off the command line is listed with None. ``recipe_flags`` refuses a field that is missing here.
RECIPE_FLAGS: dict[str, Flag | None] = {
    # read when the parser is built: an architecture registered after this module loaded is a choice too
    "arch": Flag("--arch", lambda: f"pretrained body: {', '.join(ARCHS)}", choices=lambda: tuple(ARCHS),
                 metavar="ARCH"),
    "preprocessing.presize": Flag("--presize", "CPU presize"),
    "preprocessing.method": None,
    "preprocessing.size": Flag("--size", "final image size"),
    "preprocessing.mean": None,  # the body's own normalization is always used
    "preprocessing.std": None,
    "head_init": Flag("--head-init", "start the head from the class averages (lda) or from random numbers",
                      choices=tuple(LR_AFTER)),
    "base_lr": Flag("--lr", "base learning rate of fine_tune (default " +
                    ", ".join(f"{v:g} after --head-init {k}" for k, v in LR_AFTER.items()) + ")", type=float,
                    show_default=False),
    "find_lr": Flag("--find-lr", "run the LR finder first and use its 'valley' suggestion"),
    "freeze_epochs": Flag("--freeze-epochs", "frozen (head-only) epochs"),
    "epochs": Flag("--epochs", "unfrozen epochs after the frozen phase"),
    "views": Flag("--views", "cached views per training photo"),
    "cache_features": Flag("--no-cache", "run the body in every frozen epoch (slow)"),
    "mixed_precision": Flag("--fp16", "mixed precision (bfloat16 on the CPU, fp16 on CUDA)"),
    "batch_size": Flag("--bs", "batch size"),
    "workers": Flag("--workers", "DataLoader worker processes"),
    "seed": Flag("--seed", "random seed (the split of a folder, the head, the batches)"),
    "valid_pct": Flag("--valid-pct", "random validation share for a folder"),
}


def recipe_flags(recipe: object = R, prefix: str = "") -> list[tuple[str, Flag, object]]:
    """(field path, its flag, its default) for every field of ``recipe`` that has a flag, in field order."""
    found = []
    for f in fields(recipe):
        path, default = prefix + f.name, getattr(recipe, f.name)
        if is_dataclass(default):
            found += recipe_flags(default, path + ".")
            continue
        if path not in RECIPE_FLAGS:
            raise KeyError(f"Recipe field {path!r} has no entry in engine/train.py's RECIPE_FLAGS: give it a Flag, "
                           "or None to leave it off the command line")
        if RECIPE_FLAGS[path] is not None:
            found.append((path, RECIPE_FLAGS[path], default))
    return found


def _dest(flag: Flag) -> str:
    return flag.name.lstrip("-").replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True,
                   help="the full dataset folder (images/ + annotations/: official split), the sample folder or a "
                        "labels CSV (images/ beside it), or a folder of photos named by breed")
    p.add_argument("--export", help="folder to write the trained model to (safetensors + meta.json)")
    for _, flag, default in recipe_flags():
        if isinstance(default, bool):
            p.add_argument(flag.name, action="store_true", help=flag.help)
            continue
        shown = f" (default {default})" if flag.show_default else ""
        choices, text = (v() if callable(v) else v for v in (flag.choices, flag.help))
        p.add_argument(flag.name, type=flag.type or type(default), default=default, choices=choices,
                       metavar=flag.metavar, help=text + shown)
    p.add_argument("--half", action="store_true", help="export float16 weights (half the file size)")
    p.add_argument("--no-onnx", action="store_true", help="export the weights only, without the ONNX graph")
    p.add_argument("--int8", action="store_true",
                   help="also export an int8 copy of the graph, calibrated on training photos (kept only if it "
                        "agrees with the float graph on at least 99%% of the photos)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--preset", choices=tuple(PRESETS),
                   help="run the chapter's whole flow instead of the recipe: " +
                        "; ".join(f"{k}: {v.description}" for k, v in PRESETS.items()) +
                        ". Only --data, --export, --half, --no-onnx, --int8, --bs, --workers, --seed and --quiet "
                        "apply to it")
    return p


PRESET_OPTIONS = {"data", "export", "half", "no_onnx", "int8", "bs", "workers", "seed", "quiet", "preset"}


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The ``Recipe`` the command-line options describe."""
    top, nested = {}, {}
    for path, flag, default in recipe_flags():
        value = getattr(args, _dest(flag))
        value = (default != value) if isinstance(default, bool) else value  # a switch turns its default around
        if "." in path:
            outer, inner = path.split(".")
            nested.setdefault(outer, {})[inner] = value
        else:
            top[path] = value
    return replace(R, **top, **{outer: replace(getattr(R, outer), **values) for outer, values in nested.items()})


def given_options(argv: list[str] | None) -> set[str]:
    """The destinations of the options given on the command line (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(parser.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .numerics import NonFiniteError
    from .serving.export import ExportFailed, InterruptedAfterExport, remembering_ctrl_c

    if args.preset:
        given = given_options(argv)
        others = sorted(given - PRESET_OPTIONS)
        if others:
            parser.error(f"--preset {args.preset} sets its own stages; leave out "
                         + ", ".join("--" + o.replace("_", "-") for o in others))
        try:
            return _run_preset(args, given)
        except InterruptedAfterExport:
            print(f"\ninterrupted: the model was exported to {args.export} just before", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("\ninterrupted: training stopped, nothing was exported", file=sys.stderr)
            return 130
        except (FileNotFoundError, ValueError, NonFiniteError, ExportFailed) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1

    stage = "training stopped"
    try:
        # Ctrl-C is also remembered, so that one that lands where it cannot be raised (see
        # serving/export.py) still stops the run: after the step it came in, or at the export's
        # commit point at the latest.
        with remembering_ctrl_c() as ctrl_c:
            run = TrainingRun(args.data, recipe_from(args), progress=not args.quiet)
            for step, result in run.steps():
                ctrl_c.check()
                if step == "data":
                    print(f"data: {result.dls.source}\n      {result.dls}", flush=True)
                    for note in result.dls.notes:
                        print(f"note: {note}", flush=True)
            if args.export:
                stage = f"the export to {args.export} stopped"
                result.export(args.export, half=args.half, onnx=not args.no_onnx, int8=args.int8)
                stage = "exported"
            _print_report(result.report, args.export)
    except KeyboardInterrupt as err:
        if stage == "exported" or isinstance(err, InterruptedAfterExport):
            print(f"\ninterrupted: the model was exported to {args.export} just before", file=sys.stderr)
        else:
            print(f"\ninterrupted: {stage}, nothing was exported", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, NonFiniteError, ExportFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _print_report(report: dict, exported_to: str | None) -> None:
    print(f"\n{report['valid_name']} error {report['valid_error']:.2%} with test-time augmentation "
          f"({report['valid_error_no_tta']:.2%} without) on {report['n_valid']} {report['valid_name']} photos; "
          f"trained on {report['n_train']} photos in {report['train_s']:.0f} s")
    if report["most_confused"]:
        print("most confused (actual -> predicted, count):")
        for actual, pred, n in report["most_confused"]:
            print(f"  {actual} -> {pred}: {n}")
    if exported_to:
        print(f"exported to {exported_to}")


def _run_preset(args: argparse.Namespace, given: set[str]) -> int:
    """``--preset``: the chapter's flow in stages (``learning.full_scale``), a table, the last model exported.
    The preset's batch size, workers and seed stand unless ``--bs``, ``--workers`` or ``--seed`` is given."""
    from .learning.full_scale import format_table, run_full_scale
    from .serving.export import export

    changes = {"batch_size": args.bs, "workers": args.workers, "seed": args.seed}
    option = {"batch_size": "bs", "workers": "workers", "seed": "seed"}
    plan = replace(PRESETS[args.preset], **{k: v for k, v in changes.items() if option[k] in given})
    import torch

    if args.preset == "full" and not torch.cuda.is_available():
        print("warning: --preset full is meant for a GPU: on this CPU it takes many hours (--preset tiny runs the "
              "same steps in about a minute)", file=sys.stderr, flush=True)
    results, learn = run_full_scale(args.data, plan, progress=not args.quiet)
    print("\n" + format_table(results))
    if args.export:
        last = results[-1]
        export(learn, args.export, half=args.half, onnx=not args.no_onnx, int8=args.int8,
               extra={"valid_error": last.error, "n_train": last.n_train, "n_valid": last.n_valid,
                      "preset": args.preset, "stages": [
                          {"name": r.stage.name, "arch": r.stage.arch, "size": r.stage.size,
                           "error": r.error, "seconds": round(r.seconds, 1)} for r in results]})
        print(f"exported the last stage's model to {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
