"""Write minisumm's sample dataset: 400 invented news stories (320 / 40 / 40), each with 2-4 highlights.

    python minisumm/sample_data/make_sample.py      # rewrites train.jsonl, validation.jsonl, test.jsonl here

The stories come from `minisumm.tiny_news.synthetic_news` with a fixed seed (see it for how they are made). The rows
look like CNN/DailyMail's (`id`, `article`, `highlights` with one sentence a line), so that every part of
minisumm runs on them offline. The output is deterministic: the same script always writes the same bytes.
tiny-news pretraining (`minisumm.tiny_news.pretrain`) draws its articles from another seed and leaves out every
article written here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from a checkout

from minisumm.tiny_news.synthetic_news import stories  # noqa: E402

SEED = 20240607
SHARES = {"train": 320, "validation": 40, "test": 40}


def main(out_dir: Path = Path(__file__).parent) -> None:
    """Write train.jsonl, validation.jsonl and test.jsonl into `out_dir`."""
    rows = [{"id": f"sample-{i:04d}", "article": story.article, "highlights": "\n".join(story.highlights),
             "facts": story.facts} for i, story in enumerate(stories(SEED, sum(SHARES.values())))]
    start = 0
    for split, count in SHARES.items():
        with open(out_dir / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as out:
            for row in rows[start:start + count]:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        start += count


if __name__ == "__main__":
    main()
