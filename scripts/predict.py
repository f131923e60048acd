"""Pose people in images, a folder of images or a video with a trained CPM.

    python scripts/predict.py [--load RUN_DIR|CKPT|weights.npz] --image PATH [--bbox x,y,w,h]
        [--out-json J] [--out-coco C] [--out-image P] [--beliefs M.png] [--part-masks DIR]
        [--parts-from learned|skeleton]

PATH may be an image, a folder of images or a video. Without --bbox, people are found with MediaPipe's BlazePose
person detector (shipped in models/blazepose), falling back to the whole image; every person found gets a
prediction, the main person (nearest the image centre) first. JSON (one object per image):
    {"image": PATH, "people": [{"bbox": [x, y, w, h], "joints": [{"name", "x", "y", "score"}, ...]}],
     "detected": true}
("detected" is false where nobody was found and the whole image was posed as one person; absent with --bbox)
with the model's joints (its keypoint spec's, by name) in original image px. Where the keypoint spec has a part
scheme, the JSON adds "part_names", the parts are drawn in colour and --part-masks writes each person's part labels as
a PNG (path in the person's "part_mask"): the model's learned part output, or the parts drawn around its predicted
joints, whichever the model's MODEL.PARTS_FROM names (ship.py sets the better on validation; --parts-from
overrides; docs/parts.md). For a folder or
video, --out-json writes JSON lines (one image or frame per line), and --out-image is a folder of annotated images
(folder input) or an annotated video (video input).

A folder carries on past a file it cannot read (missing, empty, cut short, not an image): one line on stderr names it
and why, its JSON line is {"image": PATH, "skipped": WHY}, and the others are posed. The last line says how many
were posed and skipped. Exit status: 0 all posed, 3 some skipped (the outputs of the rest complete), 2 a one-line
failure of the whole run (a bad flag, model or path, a full disk or a read-only folder). Every output file appears
only when whole: it is written under a temporary name beside it and renamed at the end. A video that ends before the
frame count its header gives says how many frames were read.
"""
import argparse
import contextlib
import errno
import json
import os
import sys

import cv2
import numpy as np

from cpm.errors import SOME_SKIPPED, UserError, run_main
from cpm.files import free_bytes, staged, write_json
from cpm.joints import to_coco_keypoints
from dataflow.images import image_id, read_image
from engine.cli import (
    add_load_argument,
    add_output_argument,
    add_precision_argument,
    add_verbose_argument,
    apply_verbosity,
    prepare_outputs,
)
from eval.api import REFINE, PoseEstimator
from eval.draw import belief_montage, draw_skeleton, part_overlay, write_image
from eval.metrics import json_safe

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def parse_bbox(text):
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        raise UserError(f"--bbox {text!r}: expected x,y,w,h with positive width and height")
    return box


def pose_image(estimator, image, bbox):
    """Predict every person of one image.

    Returns:
        (people JSON list, annotated image, first person's fused maps, per-person part labels uint8 [H, W] in
        original px (0 background, k + 1 for part k) or None without parts).
    """
    found = estimator(image, box=bbox, parts=estimator.part_names is not None, beliefs=True)
    people = [{"bbox": list(p.box), "joints": [{"name": n, "x": x, "y": y, "score": score}
                                               for n, (x, y, score) in p.joints.items()]} for p in found]
    drawn = image.copy()
    part_masks = [p.part_mask for p in found if p.part_mask is not None]
    for labels in part_masks:  # parts first, skeletons on top
        drawn = part_overlay(drawn, labels)
    thickness = max(1, round(max(image.shape[:2]) / 300))
    for person in found:
        drawn = draw_skeleton(drawn, person.array()[:, :2], estimator.spec, thickness=thickness)
        x, y, w, h = (int(round(v)) for v in person.box)
        cv2.rectangle(drawn, (x, y), (x + w, y + h), (0, 255, 0), 1)
    return people, drawn, found[0].beliefs, (part_masks if estimator.part_names else None)


def write_part_masks(folder, name, people, part_masks):
    """Write each person's part labels as ``<folder>/<image stem>_person<k>.png`` and note the path in its JSON."""
    stem = os.path.splitext(os.path.basename(name))[0].replace("#", "_")
    for k, (person, labels) in enumerate(zip(people, part_masks, strict=True)):
        path = os.path.join(folder, f"{stem}_person{k}.png")
        write_image(path, labels)
        person["part_mask"] = path


def frames(path):
    """(name, image) pairs of an image file, a folder of images or a video."""
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise UserError(f"{path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        for f in files:
            try:
                yield os.path.join(path, f), read_image(os.path.join(path, f))
            except UserError as e:  # this file, not the run: the caller names it and goes on
                yield os.path.join(path, f), e
    elif path.lower().endswith(VIDEO_EXTENSIONS):
        video = cv2.VideoCapture(path)
        if not video.isOpened():
            raise UserError(f"cannot open video {path}")
        k, expected = 0, int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        while True:
            ok, frame = video.read()
            if not ok:
                break
            yield f"{path}#{k}", frame
            k += 1
        video.release()
        if k == 0:
            raise UserError(f"video {path} has no readable frames")
        if 0 < k < expected:
            print(f"video {path} ended after {k} of the {expected} frames its header gives", file=sys.stderr)
    elif os.path.isfile(path):
        yield path, read_image(path)
    else:
        raise UserError(f"--image {path}: no such file or folder")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_load_argument(parser)
    parser.add_argument("--image", required=True, help="image file, folder of images or video file")
    parser.add_argument("--bbox", help="person box x,y,w,h in px (default: detect people)")
    add_output_argument(parser, "json", "JSON output (JSON lines for a folder or video)")
    add_output_argument(parser, "coco", "also write COCO keypoint results (a JSON list, for pycocotools) here")
    add_output_argument(parser, "image", "annotated image (a folder for folder input, a video for video input)")
    add_output_argument(parser, "beliefs", "also write the first person's belief-map montage (single image only)",
                        aliases=["--beliefs"])
    add_output_argument(parser, "part-masks", "folder for each person's part labels as PNG in original image px "
                        "(0 background, k + 1 = part_names[k])", aliases=["--part-masks"])
    parser.add_argument("--parts-from", choices=["learned", "skeleton"],
                        help="paint the model's learned part output or the parts drawn around its predicted joints "
                             "(default: the model's MODEL.PARTS_FROM, which ship.py sets to the better)")
    parser.add_argument("--flip", action="store_true", help="average with the mirrored crop")
    parser.add_argument("--refine", type=int, default=REFINE,
                        help=f"crops per person after the first, each cut where the previous one's joints put the "
                             f"person (default {REFINE}; 0 is the fastest: docs/evaluation.md has the trade-off)")
    add_precision_argument(parser)
    add_verbose_argument(parser)
    args = parser.parse_args()
    apply_verbosity(args)
    bbox = parse_bbox(args.bbox) if args.bbox else None
    many = os.path.isdir(args.image) or args.image.lower().endswith(VIDEO_EXTENSIONS)
    prepare_outputs(args, folders=("out_part_masks",) + (("out_image",) if os.path.isdir(args.image) else ()))
    estimator = PoseEstimator(args.load, args.precision, flip=args.flip, refine=args.refine,
                              parts_from=args.parts_from)
    if bbox is None and not estimator.spec.person:
        print(f"the model's joints ({estimator.spec.name}) are not a person's, whom the detector finds: each image is "
              f"posed whole (--bbox x,y,w,h to give the box)", file=sys.stderr)
    if args.out_part_masks and not estimator.part_names:
        raise UserError(f"--out-part-masks: the keypoint spec of {estimator.weights} ({estimator.spec.name}) has no "
                        f"part scheme")
    posed, skipped, coco, video = 0, 0, [], []  # video: the annotated video's writer, made at the first frame
    with contextlib.ExitStack() as outputs:  # each output written whole under a temporary name, then renamed
        json_out = outputs.enter_context(open(outputs.enter_context(staged(args.out_json)), "w")) \
            if args.out_json else None
        video_path = outputs.enter_context(staged(args.out_image)) if args.out_image and many and \
            not os.path.isdir(args.image) else None
        outputs.callback(lambda: [v.release() for v in video])  # before the rename
        for k, (name, image) in enumerate(frames(args.image)):
            if isinstance(image, UserError):
                skipped += 1
                print(f"skipped {name}: {str(image).removeprefix(name + ': ')}", file=sys.stderr, flush=True)
                line = json.dumps({"image": name, "skipped": str(image)})
                if json_out:
                    json_out.write(line + "\n")
                else:
                    print(line)
                continue
            posed += 1
            people, drawn, maps, part_masks = pose_image(estimator, image, bbox)
            for person in people:
                joints = np.array([[j["x"], j["y"], j["score"]] for j in person["joints"]])
                coco.append({"image_id": image_id(name, k), "category_id": 1,
                             "keypoints": to_coco_keypoints(joints, estimator.spec),
                             "score": float(joints[:, 2].mean())})
            if args.out_part_masks and part_masks is not None:
                write_part_masks(args.out_part_masks, name, people, part_masks)
            result = json_safe({"image": name, "people": people})
            if bbox is None:  # False: nobody was found and the whole image was posed as one person
                result["detected"] = estimator.detected
            if estimator.part_names:
                result["part_names"] = estimator.part_names  # label k + 1 in the masks is part k
            if json_out:
                json_out.write(json.dumps(result, allow_nan=False) + "\n" if many else
                               json.dumps(result, indent=2, allow_nan=False))
            if not args.out_json:
                print(json.dumps(result, allow_nan=False))
            if args.out_image and not many:
                write_image(args.out_image, drawn)
            elif args.out_image and os.path.isdir(args.image):
                write_image(os.path.join(args.out_image, os.path.basename(name)), drawn)
            elif args.out_image:
                if not video:
                    video.append(cv2.VideoWriter(video_path, cv2.VideoWriter_fourcc(*"mp4v"), 25,
                                                 (drawn.shape[1], drawn.shape[0])))
                    if not video[0].isOpened():
                        raise UserError(f"--out-image {args.out_image}: OpenCV cannot write this video (mp4v)")
                video[0].write(drawn)
            if args.out_beliefs and not many:
                write_image(args.out_beliefs, belief_montage(np.clip(maps, 0, 1), 96))
            print(f"{name}: {len(people)} people", flush=True)
        if video:
            video.pop().release()
            if free_bytes(video_path) == 0:  # OpenCV's writer drops what the disk refuses without a word
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if args.out_coco:
            write_json(args.out_coco, json_safe(coco))
    if many:
        print(f"{posed} posed, {skipped} skipped", flush=True)
    if skipped:
        sys.exit(SOME_SKIPPED)


if __name__ == "__main__":
    run_main(main)
