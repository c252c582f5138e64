#!/usr/bin/python3
"""Prepare the training corpus of the embedded default model (models/default).

Reads the King James Bible shipped by Debian's bible-kjv-text package through
the `bible` program of bible-kjv (the data file /usr/lib/bible.data is in that
program's own compressed format), and writes, into the output folder:

  train.txt.gz        plain text, one verse per line as "Book C:V text", chapters
                      separated by a blank line (training split)
  heldout.txt         the same for the held-out chapters (every 40th chapter)
  heldout_sample.txt  the first 40 lines of heldout.txt: the perplexity text
  train_chat.jsonl.gz conversations (ChatML roles) derived from training verses
  heldout_chat.jsonl.gz the same, derived from held-out verses
  stats.json          counts

Conversations: the user asks for a verse by its reference and the assistant
quotes it; or the user gives the start of a verse and the assistant completes
it and names the reference. Only the Bible is used: the GCIDE dictionary
(dict-gcide) is GPL-licensed and a model trained on it could be argued to be a
derived work, so it is left out (docs/DEFAULT_MODEL.md).

Deterministic: a fixed seed drives every random choice. Runs on Debian's
/usr/bin/python3 with the standard library only.

Usage: prepare_corpus.py OUT_DIR [--bible PATH_TO_bible_PROGRAM]
"""
import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys

SEED = 20261125
HELDOUT_EVERY = 40      # chapter index % HELDOUT_EVERY == HELDOUT_OFFSET is held out
HELDOUT_OFFSET = 17
SAMPLE_LINES = 40

HEADING = re.compile(r"^((?:[1-3] )?[A-Z][A-Za-z ]*?) (\d+)$")
VERSE = re.compile(r"^\s*(\d+) (.+)$")

QUOTE_ASKS = [
    "What does {ref} say?",
    "Quote {ref}.",
    "Recite {ref}.",
    "Please give me {ref}.",
    "What is written in {ref}?",
    "{ref}",
]
QUOTE_ANSWERS = [
    "{ref} says: {text}",
    "{text} ({ref})",
]
COMPLETE_ASKS = [
    "Complete this verse: {start}",
    "Finish the verse: {start}",
    "How does this verse go on? {start}",
    "{start}",
]
COMPLETE_ANSWER = "{text} ({ref})"
SYSTEM_PROMPTS = [
    "You are a helpful assistant who knows the King James Bible.",
    "You are a helpful assistant.",
]


def read_bible(program):
    """Returns [(book, chapter, verse, text)] in canonical order."""
    out = subprocess.run([program, "-l100000", "Gen1:1-Rev22:21"], check=True,
                         capture_output=True, text=True).stdout
    verses, book, chapter = [], None, None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = HEADING.match(line)
        if m and not line.startswith(" "):
            book, chapter = m.group(1), int(m.group(2))
            continue
        m = VERSE.match(line)
        if m is None or book is None:
            raise SystemExit(f"prepare_corpus: unexpected line from {program}: {line[:80]!r}")
        verses.append((book, chapter, int(m.group(1)), " ".join(m.group(2).split())))
    return verses


def chapters_of(verses):
    """Groups verses by (book, chapter) in order."""
    groups, key = [], None
    for v in verses:
        if (v[0], v[1]) != key:
            key = (v[0], v[1])
            groups.append([])
        groups[-1].append(v)
    return groups


def ref_of(v):
    return f"{v[0]} {v[1]}:{v[2]}"


def plain_lines(chapter):
    return [f"{ref_of(v)} {v[3]}" for v in chapter]


def conversations(chapter, rng):
    """Two conversations per verse: quote by reference, and complete."""
    convs = []
    for v in chapter:
        ref, text = ref_of(v), v[3]
        msgs = []
        if rng.random() < 0.15:
            msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        msgs.append({"role": "user", "content": rng.choice(QUOTE_ASKS).format(ref=ref)})
        msgs.append({"role": "assistant",
                     "content": rng.choice(QUOTE_ANSWERS).format(ref=ref, text=text)})
        convs.append({"messages": msgs})

        words = text.split()
        if len(words) >= 6:
            cut = rng.randint(3, max(3, min(8, len(words) // 2)))
            start = " ".join(words[:cut])
            msgs = []
            if rng.random() < 0.15:
                msgs.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
            msgs.append({"role": "user", "content": rng.choice(COMPLETE_ASKS).format(start=start)})
            msgs.append({"role": "assistant", "content": COMPLETE_ANSWER.format(ref=ref, text=text)})
            convs.append({"messages": msgs})
    return convs


def render_chatml(messages):
    """The ChatML text of a conversation, as the model's chat template renders it."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def write_gz(path, text):
    # mtime=0 keeps the compressed bytes reproducible.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(text.encode("utf-8"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--bible", default="/usr/bin/bible")
    args = ap.parse_args()
    if not os.path.exists(args.bible):
        raise SystemExit(f"prepare_corpus: {args.bible} not found: apt-get install bible-kjv bible-kjv-text")
    os.makedirs(args.out_dir, exist_ok=True)

    verses = read_bible(args.bible)
    chapters = chapters_of(verses)
    rng = random.Random(SEED)
    train_text, heldout_text, train_convs, heldout_convs = [], [], [], []
    for index, chapter in enumerate(chapters):
        held = index % HELDOUT_EVERY == HELDOUT_OFFSET
        (heldout_text if held else train_text).append("\n".join(plain_lines(chapter)) + "\n")
        (heldout_convs if held else train_convs).extend(conversations(chapter, rng))

    write_gz(os.path.join(args.out_dir, "train.txt.gz"), "\n".join(train_text))
    heldout = "\n".join(heldout_text)
    with open(os.path.join(args.out_dir, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(heldout)
    with open(os.path.join(args.out_dir, "heldout_sample.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(heldout.split("\n")[:SAMPLE_LINES]) + "\n")
    for name, convs in (("train_chat.jsonl.gz", train_convs), ("heldout_chat.jsonl.gz", heldout_convs)):
        write_gz(os.path.join(args.out_dir, name),
                 "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in convs))
    stats = {
        "verses": len(verses), "chapters": len(chapters),
        "heldout_chapters": len(heldout_text), "train_chapters": len(train_text),
        "train_text_chars": sum(map(len, train_text)), "heldout_text_chars": len(heldout),
        "train_conversations": len(train_convs), "heldout_conversations": len(heldout_convs),
        "seed": SEED, "heldout_rule": f"chapter index % {HELDOUT_EVERY} == {HELDOUT_OFFSET}",
    }
    with open(os.path.join(args.out_dir, "stats.json"), "w") as f:
        json.dump(stats, f, indent=1)
    print(json.dumps(stats))
    if len(verses) != 31102:
        print(f"prepare_corpus: warning: {len(verses)} verses (the KJV has 31102)", file=sys.stderr)


if __name__ == "__main__":
    main()
