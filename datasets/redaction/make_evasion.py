#!/usr/bin/env python3
"""Writes evasion.jsonl: identifiers disguised the ways people disguise them to slip past
pattern matching, inside French and English post frames.

Families (field `family`):
  zero-width     zero-width space / non-joiner / joiner, word joiner, BOM inside the identifier
  soft-hyphen    U+00AD between digit groups
  bidi           LRM/RLM, embedding and isolate controls inside
  fullwidth      full-width digits and @ (U+FF10.., U+FF20)
  other-digits   Arabic-Indic, Eastern Arabic-Indic, Devanagari, Bengali, N'Ko, mathematical digits
  odd-spaces     no-break, narrow no-break, figure, ideographic and thin spaces as separators
  line-break     \\n, \\r\\n or U+2028 inside the identifier (between groups or inside a group)
  mixed          two of the above at once

Every identifier is valid where it has a check (NIR key, NHS mod 11, Luhn, IBAN mod 97), so
the rules' validators must read the disguised digits too. Offsets are code points, end
exclusive, as in ../shared/datasets. Seeded: the file is reproduced byte for byte.

    python3 datasets/redaction/make_evasion.py > datasets/redaction/evasion.jsonl
"""
import json
import random

RNG = random.Random(20261205)

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
BIDI = ["\u200e", "\u200f", "\u202a", "\u202c", "\u2066", "\u2069", "\u061c"]
DIGIT_ZEROS = {
    "arabic-indic": 0x0660,
    "eastern-arabic-indic": 0x06F0,
    "devanagari": 0x0966,
    "bengali": 0x09E6,
    "nko": 0x07C0,
    "math-bold": 0x1D7CE,
    "math-monospace": 0x1D7F6,
    "thai": 0x0E50,
}
ODD_SPACES = ["\u00a0", "\u202f", "\u2007", "\u3000", "\u2009"]
BREAKS = ["\n", "\r\n", "\u2028"]


def nir():
    sex = RNG.choice("12")
    body = sex + f"{RNG.randint(40, 99):02d}{RNG.randint(1, 12):02d}{RNG.randint(1, 95):02d}" \
        + f"{RNG.randint(1, 999):03d}{RNG.randint(1, 999):03d}"
    key = 97 - int(body) % 97
    d = body + f"{key:02d}"
    return f"{d[0]} {d[1:3]} {d[3:5]} {d[5:7]} {d[7:10]} {d[10:13]} {d[13:]}"


def nhs():
    while True:
        d = [RNG.randint(0, 9) for _ in range(9)]
        check = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, d + [check]))
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def luhn_complete(prefix, length):
    digits = [int(c) for c in prefix] + [RNG.randint(0, 9) for _ in range(length - len(prefix) - 1)]
    total = 0
    for i, x in enumerate(reversed(digits)):
        x = x * 2 if i % 2 == 0 else x
        total += x - 9 if x > 9 else x
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def card():
    s = luhn_complete(RNG.choice(["4", "51", "37"]), 16)
    return " ".join(s[i:i + 4] for i in range(0, 16, 4))


def iban_fr():
    bban = "".join(str(RNG.randint(0, 9)) for _ in range(23))
    check = 98 - int(bban + "152700") % 97
    s = f"FR{check:02d}{bban}"
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def phone_fr():
    return "0" + str(RNG.choice([6, 7, 1, 4])) + "".join(f" {RNG.randint(0, 99):02d}" for _ in range(4))


def phone_uk():
    return f"07{RNG.randint(100, 999)} {RNG.randint(100000, 999999)}"


def phone_us():
    return f"({RNG.randint(201, 989)}) {RNG.randint(201, 989)}-{RNG.randint(1000, 9999)}"


def phone_sn():
    return f"+221 77 {RNG.randint(100, 999)} {RNG.randint(10, 99)} {RNG.randint(10, 99)}"


FIRST = ["awa", "jean", "marie", "kofi", "sarah", "li", "oumar", "chloe", "fatou", "tom"]
LAST = ["diop", "martin", "tremblay", "mensah", "smith", "nguyen", "traore", "roy", "ba", "king"]
DOMAINS = ["example.sn", "exemple.fr", "mail.example.org", "example.co.uk", "example.ca"]


def email():
    return f"{RNG.choice(FIRST)}.{RNG.choice(LAST)}@{RNG.choice(DOMAINS)}"


IDENTIFIERS = [
    ("NATIONAL_ID", "NIR", nir),
    ("NATIONAL_ID", "NHS", nhs),
    ("FINANCIAL_ID", "card", card),
    ("FINANCIAL_ID", "IBAN", iban_fr),
    ("PHONE", "phone", phone_fr),
    ("PHONE", "phone", phone_uk),
    ("PHONE", "phone", phone_us),
    ("PHONE", "phone", phone_sn),
    ("EMAIL", "e-mail", email),
]

FRAMES = {
    "fr": [
        "Pouvez-vous rappeler la patiente au {x} ?",
        "son {what} : {x}",
        "{x} c'est le {what} de la maman, merci de la contacter",
        "Je vous transmets le {what} {x} pour le dossier",
        "urgent!! {what} {x} svp",
        "- {what}: {x}\n- rdv jeudi",
    ],
    "en": [
        "Can someone call the patient back on {x}?",
        "his {what} is {x}",
        "{x} is the mother's {what}, please follow up",
        "Forwarding the {what} {x} for the file",
        "urgent {what} {x} pls",
        "- {what}: {x}\n- appointment thursday",
    ],
}


def in_digits(s, zero):
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in s)


def insert_between_chars(s, choices, count):
    """Puts `count` invisible characters at random places strictly inside s."""
    chars = list(s)
    for _ in range(count):
        pos = RNG.randint(1, len(chars) - 1)
        chars.insert(pos, RNG.choice(choices))
    return "".join(chars)


def disguise(family, s):
    if family == "zero-width":
        return insert_between_chars(s, ZERO_WIDTH, RNG.randint(1, 3))
    if family == "soft-hyphen":
        return s.replace(" ", "\u00ad") if " " in s else insert_between_chars(s, ["\u00ad"], 2)
    if family == "bidi":
        return insert_between_chars(s, BIDI, RNG.randint(1, 3))
    if family == "fullwidth":
        return "".join(chr(0xFF10 + int(c)) if c.isdigit() else ("\uff20" if c == "@" else c) for c in s)
    if family == "other-digits":
        if not any(c.isdigit() for c in s):
            return None
        return in_digits(s, DIGIT_ZEROS[RNG.choice(sorted(DIGIT_ZEROS))])
    if family == "odd-spaces":
        if " " not in s:
            return None
        space = RNG.choice(ODD_SPACES)
        return s.replace(" ", space)
    if family == "line-break":
        brk = RNG.choice(BREAKS)
        if " " in s and RNG.random() < 0.5:
            parts = s.split(" ")
            k = RNG.randint(1, len(parts) - 1)
            return " ".join(parts[:k]) + brk + " ".join(parts[k:])
        return insert_between_chars(s, [brk], 1)
    if family == "mixed":
        a, b = RNG.sample(["zero-width", "other-digits", "fullwidth", "bidi", "line-break"], 2)
        first = disguise(a, s)
        return disguise(b, first) if first else None
    raise ValueError(family)


FAMILIES = ["zero-width", "soft-hyphen", "bidi", "fullwidth", "other-digits", "odd-spaces",
            "line-break", "mixed"]


def main():
    n = 0
    for family in FAMILIES:
        for lang in ["fr", "en"]:
            for label, what, make in IDENTIFIERS:
                for _ in range(2):
                    plain = make()
                    shaped = disguise(family, plain)
                    if shaped is None or shaped == plain:
                        continue
                    frame = RNG.choice(FRAMES[lang])
                    before, after = frame.split("{x}")
                    before = before.replace("{what}", what)
                    after = after.replace("{what}", what)
                    text = before + shaped + after
                    n += 1
                    print(json.dumps({
                        "id": f"evasion-{n:04d}",
                        "text": text,
                        "lang": lang,
                        "spans": [{"start": len(before), "end": len(before) + len(shaped),
                                   "label": label}],
                        "family": family,
                        "source": "vigie-synthetic",
                    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
