"""Train a CPM. Until the trainer lands this builds the training data pipeline and shows what it feeds.

    python scripts/train.py [--data lsp --datadir DIR --split S] [--config KEY=VALUE ...]
"""
import argparse
import os
import time

import cv2
import numpy as np

from cpm.config import finalize, get_config
from cpm.errors import run_main
from dataflow.datasets import add_dataset_arguments, records_from_args
from dataflow.pipeline import build_train_dataflow
from eval.draw import belief_overlay, grid

PREVIEW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints", "data_preview.png")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    cfg = get_config()
    cfg.override(args.config)
    finalize(cfg)
    print(cfg)
    records = records_from_args(args)
    ds = build_train_dataflow(records, cfg, seed=0)
    ds.reset_state()
    it = iter(ds)
    start = time.perf_counter()
    batches = [next(it) for _ in range(4)]
    rate = 4 * cfg.TRAIN.BATCH_SIZE / (time.perf_counter() - start)
    print(f"{len(records)} people from {args.data} {args.split}; batches of:")
    for name, x in zip(("image", "beliefs", "weights", "center_map"), batches[0], strict=True):
        print(f"  {name:11s} {str(x.dtype):8s} {list(x.shape)}")
    print(f"{rate:.0f} crops/s including start-up")
    image, beliefs = batches[0][0], batches[0][1]
    cv2.imwrite(PREVIEW, grid([belief_overlay(i, b) for i, b in zip(image[:8], beliefs[:8], strict=True)], columns=4))
    print(f"wrote {PREVIEW}; mean belief target {np.mean(beliefs):.4f}")


if __name__ == "__main__":
    run_main(main)
