"""Sample images for the README's worked example: shop signs with words and a logo.

    .venv/bin/python examples/sample_images.py --out signs
    .venv/bin/python examples/sample_images.py --out signs --bucket samples --prefix signs/

(the S3 endpoint and keys from `--endpoint-url`, `--access-key` and `--secret-key`, or
from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which
`source .tessera/env.sh` sets after `make run`).

Each image (640x400 PNG, about 20 KB) is a sign: a headline, one or two smaller lines of
words and, in the top-left corner, a round logo at the same place on every image
(`LOGO_BOX`). The words are what the PP-OCRv4 text detector finds; the logo is what it
does not, for a person to add. `truth.json` beside the images gives every word line's
box and the logo's (x1, y1, x2, y2 in pixels), so a script can check detections. With
`--bucket`, the images are also put into that S3 bucket (made when missing) under
`--prefix`. The same seed gives the same images, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path
from typing import Any

import botocore.session
import cv2
import numpy as np
from botocore.exceptions import ClientError

WIDTH, HEIGHT = 640, 400
LOGO_BOX = (24, 24, 104, 104)
"""Where the logo is on every image: x1, y1, x2, y2."""

HEADLINES = (
    "BAKERY", "COFFEE", "BOOKS", "PHARMACY", "FLOWERS", "BICYCLES", "GROCERY", "LAUNDRY",
    "CINEMA", "HARDWARE", "TAILOR", "DENTIST", "BARBER", "MUSEUM", "LIBRARY", "MARKET",
)  # fmt: skip
WORDS = (
    "OPEN DAILY", "FRESH BREAD", "SALE TODAY", "SINCE 1952", "WELCOME", "NO PARKING",
    "CASH ONLY", "EXIT", "CLOSED SUNDAY", "TAKE AWAY", "REPAIRS", "GIFTS", "ENTRANCE",
)  # fmt: skip
BACKGROUNDS = ((250, 246, 232), (236, 244, 250), (246, 238, 246), (240, 250, 240))
FONT = cv2.FONT_HERSHEY_DUPLEX
Box = tuple[int, int, int, int]


def _text_line(image: np.ndarray, text: str, x: int, baseline: int, scale: float) -> Box:
    """Draw a line of text; its box, descenders included."""
    thickness = max(2, round(scale * 2))
    (width, height), descent = cv2.getTextSize(text, FONT, scale, thickness)
    cv2.putText(image, text, (x, baseline), FONT, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    return (x, baseline - height, x + width, baseline + descent)


def _logo(image: np.ndarray, color: tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = LOGO_BOX
    center, radius = ((x1 + x2) // 2, (y1 + y2) // 2), (x2 - x1) // 2
    cv2.circle(image, center, radius, color, -1, cv2.LINE_AA)


def sign(rng: random.Random) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """One sign (an RGB image) and its truth: each word line's text and box, and the
    logo's box."""
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = rng.choice(BACKGROUNDS)
    _logo(image, rng.choice(((200, 40, 40), (40, 90, 200), (30, 150, 70), (210, 140, 20))))
    truth: list[dict[str, Any]] = [{"label": "logo", "box": list(LOGO_BOX)}]
    headline = rng.choice(HEADLINES)
    box = _text_line(image, headline, 130 + rng.randrange(0, 60), 100, 2.2)
    truth.append({"label": "text", "text": headline, "box": list(box)})
    baseline = 190
    for words in rng.sample(WORDS, rng.choice((1, 2))):
        box = _text_line(image, words, 60 + rng.randrange(0, 120), baseline, 1.3)
        truth.append({"label": "text", "text": words, "box": list(box)})
        baseline += 90
    return image, truth


def write_samples(folder: Path, count: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Write `count` signs as sign_NN.png under `folder`, and their truth.json."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truth: dict[str, list[dict[str, Any]]] = {}
    for index in range(count):
        image, objects = sign(rng)
        name = f"sign_{index:02d}.png"
        ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise RuntimeError(f"could not encode {name}")
        (folder / name).write_bytes(encoded.tobytes())
        truth[name] = objects
    (folder / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def upload(
    folder: Path, names: list[str], *, bucket: str, prefix: str, endpoint_url: str,
    access_key: str, secret_key: str, region: str,
) -> None:  # fmt: skip
    """Put the images into `bucket` under `prefix` (the bucket is made when missing)."""
    s3 = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint_url, region_name=region,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
    )  # fmt: skip
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    for name in names:
        s3.put_object(
            Bucket=bucket, Key=prefix + name, Body=(folder / name).read_bytes(),
            ContentType="image/png",
        )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the images")
    parser.add_argument("--count", type=int, default=12, help="how many (default 12)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bucket", help="also put them into this S3 bucket")
    parser.add_argument("--prefix", default="", help="under this folder of the bucket")
    parser.add_argument(
        "--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
        help="the S3 endpoint (default: AWS_ENDPOINT_URL, which .tessera/env.sh sets)",
    )  # fmt: skip
    parser.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.bucket and not (args.endpoint_url and args.access_key and args.secret_key):
        parser.error(
            "--bucket needs --endpoint-url, --access-key and --secret-key (or the AWS_* "
            "variables of .tessera/env.sh)"
        )
    truth = write_samples(args.out, args.count, args.seed)
    print(f"wrote {len(truth)} images and truth.json to {args.out}")
    if args.bucket:
        upload(
            args.out, sorted(truth), bucket=args.bucket, prefix=args.prefix,
            endpoint_url=args.endpoint_url, access_key=args.access_key,
            secret_key=args.secret_key, region=args.region,
        )  # fmt: skip
        print(f"put them into s3://{args.bucket}/{args.prefix}")


if __name__ == "__main__":
    main()
