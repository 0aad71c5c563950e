#!/usr/bin/env python3
"""Turns the WNUT-17 emerging-entities data (https://github.com/leondz/emerging_entities_17,
CC BY 4.0) into the redaction rows `vigie eval redaction` reads, so that the comment
genres of issue #20's target can be measured: YouTube comments (its dev file), Reddit
comments and StackExchange posts (the first 703 documents of its test file, which does not
mark one from the other; at commit e52a2d2 the tweets start at document 704, with the first
"RT @"), and its test tweets. Nothing of it is committed: point the script at a clone and
write the rows outside the repository.

    git clone https://github.com/leondz/emerging_entities_17 /tmp/wnut17
    python3 datasets/redaction/convert_wnut17_comments.py /tmp/wnut17 > /tmp/wnut17_comments.jsonl
    vigie eval redaction --side all --by-source --data /tmp/wnut17_comments.jsonl

The test file's tokenizer split mentions and hashtags where its train file did not
("RT @ md _ addam 73 :" for "RT @md_addam73:", "# MissUniverse"): tweets are written
without those spaces, and `../shared`'s WNUT-17 rows keep "@paulwalk" whole, so the tokens
of a mention or hashtag are joined back (an "@" or "#" and the word after it, then every
"_", the word after a "_", and digits) before the rows are written.

Only PERSON and LOCATION spans are kept (its groups, corporations, products and creative
works are not identifiers here). Tokens are joined by single spaces; offsets are code
points, end exclusive. Row ids start with the genre (`ytcomments-`, `comments-`
for Reddit and StackExchange, `tweets-`), which `--by-source` splits on. WNUT-17 labels only entities
that its annotators saw in the documents it selected for rare entities: its PERSON spans
are people, but not every person is labelled (see the README's note on precision).
"""
import json
import os
import sys

LABELS = {"person": "PERSON", "location": "LOCATION"}


def documents(path):
    doc = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if doc:
                    yield doc
                doc = []
                continue
            token, _, label = line.partition("\t")
            doc.append((token, label.strip() or "O"))
    if doc:
        yield doc


def is_word(token):
    return token.replace("_", "").isalnum()


def glued(doc):
    """For each token, whether it joins the one before it with no space: the tokens of a
    mention or hashtag that the test file's tokenizer split apart."""
    glue, in_tag = [], False
    for i, (token, _) in enumerate(doc):
        prev = doc[i - 1][0] if i else ""
        join = False
        if prev in ("@", "#") and (is_word(token) or token == "_"):
            join, in_tag = True, True
        elif in_tag and (token == "_" or (prev == "_" and is_word(token)) or token.isdigit()):
            join = True
        else:
            in_tag = False
        glue.append(join)
    return glue


def row(doc):
    text, spans, open_span = "", [], None
    glue = glued(doc)
    for i, (token, label) in enumerate(doc):
        if i and not glue[i]:
            text += " "
        start = len(text)
        text += token
        kind = LABELS.get(label[2:]) if label[:2] in ("B-", "I-") else None
        if kind and label.startswith("I-") and open_span and open_span["label"] == kind:
            open_span["end"] = len(text)
            continue
        open_span = None
        if kind:
            open_span = {"start": start, "end": len(text), "label": kind}
            spans.append(open_span)
    return text, spans


# Documents of the test file before its tweets (Reddit and StackExchange), at e52a2d2.
TEST_COMMENTS = 703


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: convert_wnut17_comments.py WNUT17_CLONE > rows.jsonl")
    root = sys.argv[1]
    counts = {}
    files = [("emerging.dev.conll", None), ("emerging.test.annotated", "test")]
    for name, kind in files:
        for n, doc in enumerate(documents(os.path.join(root, name))):
            text, spans = row(doc)
            if kind is None:
                genre = "ytcomments"
            elif n < TEST_COMMENTS:
                genre = "comments"
            else:
                genre = "tweets"
            counts[genre] = counts.get(genre, 0) + 1
            print(json.dumps({"id": f"{genre}-{counts[genre]:04d}", "text": text, "lang": "en",
                              "spans": spans, "source": f"wnut17-{genre}"}, ensure_ascii=False))
    print(counts, file=sys.stderr)


if __name__ == "__main__":
    main()
