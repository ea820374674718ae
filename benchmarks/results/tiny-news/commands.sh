#!/bin/sh
# Commands run by benchmarks/run_all.py, in order.
/work/main/.venv/bin/python /work/main/train.py --method prompt --model tiny-news --data sample --out runs/tiny/prompt --no-progress
/work/main/.venv/bin/python /work/main/evaluate.py runs/tiny/prompt --data runs/tiny/test.jsonl
/work/main/.venv/bin/python /work/main/train.py --method prefix --model tiny-news --data sample --out runs/tiny/prefix --no-progress
/work/main/.venv/bin/python /work/main/evaluate.py runs/tiny/prefix --data runs/tiny/test.jsonl
/work/main/.venv/bin/python /work/main/train.py --method lora --model tiny-news --data sample --out runs/tiny/lora --no-progress
/work/main/.venv/bin/python /work/main/evaluate.py runs/tiny/lora --data runs/tiny/test.jsonl
/work/main/.venv/bin/python /work/main/train.py --method last-layers --model tiny-news --data sample --out runs/tiny/last-layers --no-progress
/work/main/.venv/bin/python /work/main/evaluate.py runs/tiny/last-layers --data runs/tiny/test.jsonl
/work/main/.venv/bin/python /work/main/train.py --method full --model tiny-news --data sample --out runs/tiny/full --no-progress
/work/main/.venv/bin/python /work/main/evaluate.py runs/tiny/full --data runs/tiny/test.jsonl
/work/main/.venv/bin/python /work/main/evaluate.py --baseline lead3 --data runs/tiny/test.jsonl --out runs/tiny/baseline-lead3/eval
/work/main/.venv/bin/python /work/main/evaluate.py --baseline zero-shot --model tiny-news --data runs/tiny/test.jsonl --out runs/tiny/baseline-zero-shot/eval
