"""Write a PNG grid of augmented training crops with skeletons and belief maps drawn.

    python scripts/show_data.py --data lsp|mpii|jhmdb|coco|tfrecord --datadir DIR [--split S] --out grid.png [--n 16]

Each tile shows a crop with its transformed skeleton and, where the dataset has one, the person mask warped by the
same affine (left), the belief maps over it (middle) and, with part stages, the part targets on the belief-map
cells (right).
"""
import argparse

import numpy as np

from cpm.config import build_config
from cpm.errors import UserError, run_main
from dataflow.geometry import Geometry
from dataflow.images import read_image
from dataflow.mapper import make_mapper
from dataflow.transforms import warp_mask
from engine.cli import add_config_arguments, add_dataset_arguments, prepare_outputs, records_from_args
from eval.draw import belief_overlay, draw_skeleton, grid, mask_overlay, part_overlay, write_image


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--n", type=int, default=16, help="number of crops (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="augmentation seed (default 0)")
    add_config_arguments(parser, preset_help="crop size and targets of")
    args = parser.parse_args()
    prepare_outputs(args)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    records = records_from_args(args, build_config(args.preset, args.config).READER)
    # the crops and targets a model of the data's own joints trains on
    cfg = build_config(args.preset, args.config, keypoints=records[0].joint_set)
    geometry = Geometry.from_config(cfg)
    mapper = make_mapper(records, geometry, cfg.AUG, seed=args.seed)
    picks = np.random.default_rng(args.seed).choice(len(records), size=min(args.n, len(records)), replace=False)
    tiles = []
    for i in picks:
        record = records[i]
        image = read_image(record.image)
        crop, m, raw_joints, center = mapper.crop(record, image)
        beliefs, _, _ = mapper.targets(raw_joints, center)
        joints = geometry.beliefs.decode(beliefs)  # drawn from the targets: checks encode/decode on the way
        joints[:, 2] = np.where(beliefs[:, :, :-1].max(axis=(0, 1)) > 0, 2, 0)
        left = crop if record.mask is None else mask_overlay(crop, warp_mask(record.mask.load(), m, len(crop)))
        tile = [draw_skeleton(left, joints, geometry.spec), belief_overlay(crop, beliefs)]
        if mapper.part_codec is not None:
            tile.append(part_overlay(crop, mapper.part_targets(record, image.shape, m, raw_joints)[0]))
        tiles.append(np.hstack(tile))
    image = grid(tiles, columns=2 if len(tiles) > 1 else 1)
    write_image(args.out, image)
    print(f"wrote {args.out}: {len(tiles)} crops of {args.data} {args.split} ({len(records)} people)")


if __name__ == "__main__":
    run_main(main)
