"""Score a trained CPM on a dataset split: strict PCP, PCK@0.2, PCKh@0.5 (where head sizes exist), within-25-px,
and with part stages per-part IoU against the skeleton-derived part targets.

    python scripts/evaluate.py [--load RUN_DIR|CKPT|weights.npz] --data lsp --datadir DIR --split test \\
        [--json OUT] [--plots DIR] [--save-predictions P.json] [--flip] [--scales 0.7,1.0,1.3] [--boxes detected]

--boxes detected scores what a user without a box gets: the people predict.py finds, matched to the annotated ones
(eval.evaluate.match_people); an annotated person without a match counts as all joints wrong.

An image that cannot be read (missing, empty, cut short, not an image) costs its people, not the run: one line on
stderr names it and why, its people count as all joints wrong (never out of the denominator), the report's JSON
lists it under "unreadable", and the exit status is 3 (0: every image read; 2: a one-line failure of the whole run).
Every output appears only when whole (written under a temporary name, then renamed).

The model's config is read from the run's config.json; no training flags are needed.
"""
import argparse
import sys

from cpm.checkpoint import resolve_checkpoint
from cpm.errors import SOME_SKIPPED, run_main
from cpm.files import write_json
from dataflow.records import model_people
from engine.cli import (
    add_dataset_arguments,
    add_load_argument,
    add_output_argument,
    add_precision_argument,
    add_verbose_argument,
    apply_verbosity,
    parse_scales,
    prepare_outputs,
    records_from_args,
)
from eval.api import REFINE, PoseEstimator
from eval.evaluate import coco_results, format_match, predictions_json, score, write_plots
from eval.inference import PosePredictor
from eval.metrics import PART_FLOWS, format_part_report, format_report, json_safe


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_argument(parser)
    add_dataset_arguments(parser, role="eval")
    add_output_argument(parser, "json", "write the report as JSON here", aliases=["--json"])
    add_output_argument(parser, "plots", "write pck_curve.png and pcp_bars.png into this folder", aliases=["--plots"])
    add_output_argument(parser, "predictions", "write every person's predicted joints as JSON here",
                        aliases=["--save-predictions"])
    add_output_argument(parser, "coco", "also write them as COCO keypoint results (for pycocotools) here",
                        aliases=["--save-coco"])
    parser.add_argument("--flip", action="store_true", help="average with the mirrored crop")
    parser.add_argument("--scales", default="1.0", help="test-time zooms to average, e.g. 0.7,1.0,1.3 (default 1.0)")
    add_precision_argument(parser)
    parser.add_argument("--batch", type=int, default=8, help="people per network batch (default 8)")
    parser.add_argument("--boxes", choices=["annotated", "detected"], default="annotated",
                        help="annotated (default): crop each person at its annotated joints, the standard protocol; "
                             "detected: find the people as predict.py does without --bbox (BlazePose's detector, "
                             "the whole image where it finds none), match them to the annotated people and count "
                             "the unmatched as wrong (docs/evaluation.md)")
    parser.add_argument("--refine", type=int, default=REFINE,
                        help=f"with --boxes detected: crops per person after the first, each where the previous "
                             f"one's joints put the person, as predict.py does (default {REFINE})")
    add_verbose_argument(parser)
    args = parser.parse_args()
    apply_verbosity(args)
    prepare_outputs(args, folders=("out_plots",))
    scales = parse_scales(args.scales)
    weights, cfg = resolve_checkpoint(args.load)
    predictor = PosePredictor(cfg, weights, args.precision, zooms=scales, flip=args.flip)
    # the data's people with the model's joints, as the model is scored on them (plots and JSON included)
    records = model_people(records_from_args(args, cfg.READER), predictor.spec)
    estimator = PoseEstimator(predictor=predictor, refine=args.refine,
                              parts_from="learned" if predictor.part_names else None) \
        if args.boxes == "detected" else None
    result = score(predictor, records, args.batch, estimator, carry_on=True)
    report, pred, seconds, images = result.report, result.pred, result.seconds, result.images
    unreadable = report["unreadable"]
    for image, why in unreadable.items():
        people = sum(str(r.image) == image for r in records)
        print(f"skipped {image}: {why} (its {people} {'person' if people == 1 else 'people'} scored wrong)",
              file=sys.stderr)
    title = (f"{args.data} {args.split} ({weights}; boxes {args.boxes}, flip={args.flip}, "
             f"scales={','.join(map(str, scales))})")
    print(format_report(report, title))
    if "match" in report:
        print(format_match(report["match"]))
    for flow, prefix in PART_FLOWS.items():
        if f"{prefix}part_iou" in report:
            print(format_part_report(report, flow) + (
                f" ({report['part_people']} people with every part's joints annotated; targets drawn around the "
                f"annotated joints)" if flow == "learned" else " (drawn around the predicted joints: the baseline)"))
    if "silhouette_people" in report:
        print(f"  body IoU against the human-drawn person masks of {report['silhouette_people']} people: " + ", ".join(
            f"{flow} {100 * report[prefix + 'silhouette_body_iou']:.1f}" for flow, prefix in PART_FLOWS.items()
            if prefix + "silhouette_body_iou" in report))
    if unreadable:
        print(f"{len(unreadable)} of {images} images unreadable: their people count as wrong")
    print(f"{images} images, {len(records)} people in {seconds:.1f} s: {images / seconds:.1f} images/s, "
          f"{len(records) / seconds:.1f} people/s")
    report.update(checkpoint=weights, data=args.data, datadir=args.datadir, split=args.split, boxes=args.boxes,
                  flip=args.flip,
                  scales=list(scales), images_per_s=images / seconds, people_per_s=len(records) / seconds)
    if args.out_json:
        write_json(args.out_json, json_safe(report), indent=2)
        print(f"wrote {args.out_json}")
    if args.out_predictions:
        write_json(args.out_predictions, json_safe(predictions_json(pred, records, predictor.spec)), indent=2)
        print(f"wrote {args.out_predictions}")
    if args.out_coco:
        write_json(args.out_coco, json_safe(coco_results(pred, records, predictor.spec)), indent=2)
        print(f"wrote {args.out_coco}")
    if args.out_plots:
        print("wrote " + ", ".join(write_plots(pred, records, report, args.out_plots, predictor.spec)))
    if unreadable:
        sys.exit(SOME_SKIPPED)


if __name__ == "__main__":
    run_main(main)
