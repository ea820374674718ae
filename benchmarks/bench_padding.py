"""How much padding length grouping saves, on the real length distribution of CNN/DailyMail examples.

A batch is padded to its longest example, and padded positions cost the same compute as real ones.
`minisumm.batching.batch_order` can group examples of similar length (shuffle, sort inside mega-batches of
50 batches, shuffle the batches: the idea of Hugging Face's LengthGroupedSampler). This measures the share
of padded positions (`batching.padding_fraction`) with and without grouping:
- on the 20 real CNN/DM test rows in ../shared/data (tokenised with GPT-2's tokenizer in ../shared/gpt2,
  laid out exactly as training lays them out: `batching.encode_examples`, articles cut to fit 1,024);
- on 2,000 lengths resampled (seeded, with replacement) from those 20, to emulate an epoch, where a
  mega-batch has enough examples to sort. With only 20 distinct lengths, ties are more common than in
  real data, so the grouped figure is a little optimistic; the ungrouped one is unbiased.
Each figure is the mean over `--epochs` shuffles (epochs 0…n-1 of `batch_order`).

    python benchmarks/bench_padding.py            # prints a table, writes benchmarks/results/padding.json
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (a sibling file, not a package)

from minisumm.batching import batch_order, encode_examples, padding_fraction  # noqa: E402
from minisumm.tools.atomic import write_json  # noqa: E402
from minisumm.config import DataConfig  # noqa: E402
from minisumm.data import load_file  # noqa: E402

DEFAULT_DATA = _common.SHARED / "data" / "cnndm-test-sample20.jsonl"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="A .jsonl of CNN/DM rows (article, highlights).")
    parser.add_argument("--tokenizer", default=str(_common.SHARED_GPT2), help="Folder with GPT-2's tokenizer.")
    parser.add_argument("--batch-sizes", default="4,8,16")
    parser.add_argument("--resample", type=int, default=2000, help="Lengths drawn with replacement (an epoch).")
    parser.add_argument("--epochs", type=int, default=5, help="Shuffles averaged per figure.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "padding.json"))
    return parser.parse_args(argv)


def real_lengths(data: str, tokenizer_folder: str) -> list[int]:
    from transformers import AutoTokenizer

    data_cfg = DataConfig(data=data)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    encoded = encode_examples(tokenizer, load_file(data, data_cfg), data_cfg, prefix_tokens=0)
    return [len(example["input_ids"]) for example in encoded]


def padding(lengths: list[int], batch_size: int, group: bool, epochs: int, seed: int) -> float:
    return statistics.mean(
        padding_fraction(batch_order(lengths, batch_size, seed=seed, epoch=epoch, group_by_length=group), lengths)
        for epoch in range(epochs))


def main(argv=None) -> int:
    args = parse_args(argv)
    if not Path(args.data).is_file() or not Path(args.tokenizer).is_dir():
        print(f"skipped: needs {args.data} and GPT-2's tokenizer in {args.tokenizer} (the shared folder beside "
              f"the repository); pass --data and --tokenizer to use others.")
        return 0
    real = real_lengths(args.data, args.tokenizer)
    rng = random.Random(args.seed)
    sources = {f"real ({len(real)})": real, f"resampled ({args.resample})": rng.choices(real, k=args.resample)}
    rows = []
    for source, lengths in sources.items():
        for batch_size in (int(b) for b in args.batch_sizes.split(",")):
            plain = padding(lengths, batch_size, False, args.epochs, args.seed)
            grouped = padding(lengths, batch_size, True, args.epochs, args.seed)
            # positions computed per real token is 1 / (1 - padding): grouping saves this share of the compute
            saved = 1 - (1 - plain) / (1 - grouped)
            rows.append({"source": source, "batch_size": batch_size, "padding_ungrouped": plain,
                         "padding_grouped": grouped, "positions_saved": saved})
    print(f"tokens per example (GPT-2 tokenizer, max_length 1024): mean {statistics.mean(real):.0f}, "
          f"min {min(real)}, max {max(real)}, {sum(n == max(real) for n in real)} of {len(real)} at the maximum")
    print(f"{'source':18} {'batch':>5} {'padding, ungrouped':>19} {'padding, grouped':>17} {'positions saved':>16}")
    for row in rows:
        print(f"{row['source']:18} {row['batch_size']:5d} {row['padding_ungrouped']:19.1%} "
              f"{row['padding_grouped']:17.1%} {row['positions_saved']:16.1%}")
    result = {"data": args.data, "tokenizer": args.tokenizer, "lengths": sorted(real), "epochs": args.epochs,
              "seed": args.seed, "rows": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_json(Path(args.json), result)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
