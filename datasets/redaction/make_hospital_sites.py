#!/usr/bin/env python3
"""Writes hospital_sites.jsonl: French and English notes and posts that name a hospital by
its own name alone, the way staff who work there write it: after one of its care units
("le service d'hématologie de Necker", "les urgences pédiatriques de Trousseau", "the ICU
at Mercy") or as the place where care happened ("changement de sonde à Tenon", "seen at
Guy's"). No "Hôpital" or "CHU" announces the name, so rules keyed on those words miss it,
and a tagger reads it as a person or a town.

Hospital names: real sites in France, Belgium, Québec, francophone Africa, the UK and
Ireland (none of them a name in the shared evaluation rows) and surrogate names of the kind
de-identified corpora substitute (Vernault, Castelbrac). Rows also hold other identifiers
(a person after a title, a date) and hard negatives: specialties written with a capital
("Service de Cardiologie"), the service of a doctor ("du Dr Diallo"), a town after a kind of
hospital ("CHU d'Angers" is a LOCATION), eponyms ("maladie de Crohn"), weekdays and months.

Labels: HOSPITAL, LOCATION, PERSON, DATE. Offsets are code points, end exclusive, as in
../shared/datasets. Field `family`: `after_unit`, `care_at`, `negative`. Seeded: re-running
reproduces the file byte for byte.

    python3 datasets/redaction/make_hospital_sites.py > datasets/redaction/hospital_sites.jsonl
"""
import json
import random
import re
import sys

RNG = random.Random(20261207)

SITES_FR = ["Necker", "Trousseau", "Tenon", "Lariboisière", "Cochin", "Beaujon", "Bicêtre",
            "Saint-Antoine", "Kremlin-Bicêtre", "Port-Royal", "Rothschild", "Henri-Mondor",
            "Jean-Verdier", "Louis-Mourier", "Robert-Debré", "Erasme", "Brugmann",
            "Sainte-Justine", "Maisonneuve-Rosemont", "Fann", "Le Dantec", "Treichville",
            "Yopougon", "Gabriel-Touré", "Principal", "Pellegrin", "Purpan", "Rangueil",
            "Édouard-Herriot", "la Timone", "Vernault", "Castelbrac", "Morvillard"]
SITES_EN = ["Mercy", "Guy's", "Addenbrooke's", "St Thomas'", "Korle Bu", "Kenyatta",
            "St Vincent's", "Beaumont", "Tallaght", "Ninewells", "Aintree", "Frimley Park",
            "Morriston", "Harborview", "Groote Schuur", "Baragwanath", "Hallworth"]
UNITS_FR = ["le service d'hématologie de", "le service de cardiologie de", "la réa de",
            "les urgences pédiatriques de", "le service de médecine interne de",
            "Service Pneumologie de", "les Urgences Oncologiques de", "la maternité de",
            "l'unité de soins palliatifs de", "le bloc de", "la consultation d'anesthésie de",
            "le pôle gériatrique de", "l'hôpital de jour de", "les soins intensifs de",
            "Service de Néphrologie de", "la réanimation chirurgicale de", "le service des maladies infectieuses de"]
UNITS_EN = ["the ICU at", "the maternity ward at", "the cardiology department at",
            "the ER at", "A&E at", "the oncology unit at", "outpatients at",
            "the dialysis unit at", "the renal ward at", "theatres at"]
PEOPLE = ["Dr Kouassi", "Dr Mbaye", "Mme Leroux", "Dr Okafor", "Dr Haddad", "Dr Tremblay"]
MONTHS_FR = ["janvier", "mars", "mai", "juin", "septembre", "novembre"]
MONTHS_EN = ["January", "March", "May", "July", "October", "December"]

# {site} is HOSPITAL; {unit} is a unit phrase ending before the name; {person} after its
# title is PERSON; {date} is DATE.
AFTER_UNIT_FR = [
    "Patiente adressée par {unit} {site} pour bilan.",
    "suivi dans {unit} {site} depuis {date}",
    "Hospitalisation courte dans {unit} {site}, sortie prévue lundi.",
    "il est passé par {unit} {site} hier soir, rien de grave",
    "Compte rendu de {unit} {site} reçu ce matin.",
    "vu en consultation, {unit} {site}, avec {person}",
    "on l'a transférée vers {unit} {site} cette nuit",
    "tu peux appeler {unit} {site} pour les résultats ?",
    "RDV le {date} : {unit} {site}",
    "ma collègue ({unit} {site}) confirme la rupture de stock",
]
AFTER_UNIT_EN = [
    "Mr K was seen in {unit} {site} overnight.",
    "she has been followed by {unit} {site} since {date}",
    "called {unit} {site} for the bloods, no answer",
    "transfer to {unit} {site} arranged with {person}",
    "my friend in {unit} {site} says they ran out of syringes",
    "discharged from {unit} {site} on {date}",
    "anyone know who is on call in {unit} {site} tonight?",
]
CARE_AT_FR = [
    "Changement de sonde à {site} le {date}.",
    "visite de contrôle à {site} pour réévaluer le traitement",
    "elle a accouché à {site} la semaine dernière",
    "Dialyse trois fois par semaine à {site}.",
    "opéré à {site} en {month}, suites simples",
    "IRM faite à {site}, compte rendu en attente",
    "chimio à {site} tous les 21 jours",
]
CARE_AT_EN = [
    "Line change at {site} on {date}.",
    "she had her baby at {site} last week",
    "dialysis three times a week at {site}",
    "operated on at {site} in {month}, uneventful recovery",
    "MRI done at {site}, report pending",
    "chemo at {site} every three weeks",
]
# Texts whose only spans are those marked; a unit followed by what is not a hospital.
NEGATIVE_FR = [
    ("Le service de Cardiologie est complet ce week-end.", []),
    ("transfert dans le service du {person} demain", ["person"]),
    ("Service de Pédiatrie : réunion à 14 h.", []),
    ("le service de garde du Dimanche est assuré", []),
    ("Service d'Hépatologie du CHU d'{town}, avis demandé", ["town"]),
    ("les urgences de Nuit sont saturées", []),
    ("Hôpital de Jour fermé en {month_cap}", []),
    ("la maladie de Crohn est stable, consultation en {month}", []),
    ("hospitalisation dans le service d'ORL pour amygdalectomie", []),
]
NEGATIVE_EN = [
    ("The ward at night is quiet.", []),
    ("Department of Medicine grand round moved to Thursday", []),
    ("the ICU at Christmas is always short-staffed", []),
    ("the renal unit of {person} is full", ["person"]),
]
TOWNS = ["Angers", "Rennes", "Liège", "Thiès", "Sherbrooke"]


def fill(template, values):
    """Fills `template` with `values` ({name: (text, label or None)}); returns text, spans."""
    text, spans, at = "", [], 0
    for m in re.finditer(r"\{(\w+)\}", template):
        text += template[at:m.start()]
        value, label = values[m.group(1)]
        if label:
            spans.append({"start": len(text), "end": len(text) + len(value), "label": label})
        text += value
        at = m.end()
    return text + template[at:], spans


def date_fr():
    return f"{RNG.randint(1, 28)} {RNG.choice(MONTHS_FR)} {RNG.randint(2019, 2026)}"


def date_en():
    return f"{RNG.randint(1, 28)} {RNG.choice(MONTHS_EN)} {RNG.randint(2019, 2026)}"


def shape(text, spans):
    """Real chat shapes: sometimes all lower case, sometimes without accents; spans keep
    their offsets (both changes keep the length)."""
    r = RNG.random()
    if r < 0.15:
        text = text.lower()
    elif r < 0.25:
        text = text.translate(str.maketrans("éèêàâîôûç", "eeeaaiouc"))
    return text, spans


def person(value):
    title, name = value.split(" ", 1)
    return title + " ", name


def rows():
    out = []
    for lang, units, sites, after, care, negatives, date in [
        ("fr", UNITS_FR, SITES_FR, AFTER_UNIT_FR, CARE_AT_FR, NEGATIVE_FR, date_fr),
        ("en", UNITS_EN, SITES_EN, AFTER_UNIT_EN, CARE_AT_EN, NEGATIVE_EN, date_en),
    ]:
        for i in range(60 if lang == "fr" else 40):
            template = after[i % len(after)]
            title, name = person(RNG.choice(PEOPLE))
            template = template.replace("{person}", title + "{person}")
            values = {
                "unit": (RNG.choice(units), None),
                "site": (RNG.choice(sites), "HOSPITAL"),
                "person": (name, "PERSON"),
                "date": (date(), "DATE"),
            }
            out.append((lang, "after_unit", *shape(*fill(template, values))))
        for i in range(28 if lang == "fr" else 24):
            template = care[i % len(care)]
            values = {
                "site": (RNG.choice(sites), "HOSPITAL"),
                "date": (date(), "DATE"),
                "month": (RNG.choice(MONTHS_FR if lang == "fr" else MONTHS_EN), "DATE"),
            }
            out.append((lang, "care_at", *shape(*fill(template, values))))
        for template, labelled in negatives:
            title, name = person(RNG.choice(PEOPLE))
            template = template.replace("{person}", title + "{person}")
            values = {
                "person": (name, "PERSON" if "person" in labelled else None),
                "town": (RNG.choice(TOWNS), "LOCATION" if "town" in labelled else None),
                "month": (RNG.choice(MONTHS_FR), "DATE"),
                "month_cap": (RNG.choice(MONTHS_FR).capitalize(), "DATE"),
            }
            out.append((lang, "negative", *fill(template, values)))
    return out


def main():
    counts = {}
    for n, (lang, family, text, spans) in enumerate(rows(), 1):
        row = {"id": f"hosp-{lang}-{n:04d}", "text": text, "lang": lang, "spans": spans,
               "family": family, "source": "vigie-synthetic"}
        print(json.dumps(row, ensure_ascii=False))
        for s in spans:
            counts[s["label"]] = counts.get(s["label"], 0) + 1
    print(counts, file=sys.stderr)


if __name__ == "__main__":
    main()
