"""Write any supported dataset split to a pose TFRecord (the MARS pose trainer's schema; docs/data.md).

    python scripts/convert_tfrecord.py --data NAME --datadir DIR [--split S] --out F.tfrecord

One tf.train.Example per image with all its people; read it back with ``--data tfrecord --datadir F.tfrecord`` in
every script. The file appears only when complete. An image that cannot be read (missing, empty, cut short, not an
image) is left out with one line on stderr naming it and why; the others are converted, and the exit status is 3
(0: every image converted; 2: a one-line failure of the whole run, a full disk or a read-only folder included).
"""
import argparse
import sys

from cpm.config import build_config
from cpm.errors import SOME_SKIPPED, run_main
from dataflow.tfrecord import write_tfrecord
from engine.cli import add_config_argument, add_dataset_arguments, prepare_outputs, records_from_args


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_arguments(parser)
    parser.add_argument("--out", required=True, help="TFRecord file to write")
    add_config_argument(parser, help="reader options (READER.*)")
    args = parser.parse_args()
    prepare_outputs(args)
    records = records_from_args(args, build_config(overrides=args.config).READER)
    unreadable = {}
    images = write_tfrecord(records, args.out, unreadable)
    for image, why in unreadable.items():
        print(f"skipped {image}: {why}", file=sys.stderr)
    records = [r for r in records if str(r.image) not in unreadable]
    masks = sum(r.mask is not None for r in records)
    print(f"wrote {args.out}: {images} images, {len(records)} people ({masks} with masks) from {args.data} "
          f"{args.split}" + (f"; {len(unreadable)} unreadable images skipped" if unreadable else ""))
    if unreadable:
        sys.exit(SOME_SKIPPED)


if __name__ == "__main__":
    run_main(main)
