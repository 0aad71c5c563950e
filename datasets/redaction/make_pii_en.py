#!/usr/bin/env python3
"""Writes pii_en.jsonl: 600 English sentences in the manner of a synthetic PII benchmark
(template sentences whose slots are filled with generated, Faker-like values), written for
Vigie: 540 rows carry identifiers, 60 carry none.

The 167 templates with slots and the 36 without are this file's own. Many are health
workers' messages, handovers and patient calls; the others are customer service, forms,
letters, chat and server logs. Slots often come several to a sentence, names come first in
the sentence, as possessives, lower-cased or alone, titles (Mr., Dr.) stay outside the span.
The rows without identifiers are full of numbers that identify no one (doses, times,
counts, vital signs, versions, percentages).

Labels: PERSON, PHONE, EMAIL, DATE, LOCATION, ADDRESS, ZIP, NATIONAL_ID (SSN, NHS number,
Canadian SIN), FINANCIAL_ID (Visa, MasterCard, Amex, Discover cards, GB/FR/DE/NL IBANs),
IP_ADDRESS, URL_ID, PATIENT_ID, AGE, HOSPITAL. A whole postal address filled in one slot is
one ADDRESS span; a template that spells street, city, state and ZIP as separate slots gets
ADDRESS, LOCATION, LOCATION and ZIP spans. An age span is the number alone ("67" in
"67-year-old"), a record number span the number after its keyword.

Every identifier with a check is valid (Luhn for cards and SIN, mod 11 for NHS, mod 97 for
IBANs and the French RIB key); SSNs avoid the 000, 666 and 9xx areas; US phone numbers have
area code and exchange in 2xx-9xx. Field `family` is the template's main slot kind
(`mixed` when several kinds weigh the same, `none` when there is no identifier). Offsets
are code points, end exclusive, as in ../shared/datasets. Seeded: the file is reproduced
byte for byte. Counts per label and ten sample rows go to stderr.

    python3 datasets/redaction/make_pii_en.py > datasets/redaction/pii_en.jsonl
"""
import datetime
import json
import random
import re
import sys
import unicodedata

RNG = random.Random(20261206)

N_ROWS = 600
N_NONE = 60

# ---------------------------------------------------------------------------------------
# Names

FIRST = {  # origin: (male, female)
    "anglo": (
        ["James", "Robert", "Michael", "William", "David", "Thomas", "Daniel", "Matthew",
         "Christopher", "Andrew", "Ryan", "Oliver", "George", "Harry", "Jack", "Kevin",
         "Brandon", "Tyler", "Scott", "Gareth"],
        ["Mary", "Jennifer", "Linda", "Elizabeth", "Susan", "Emily", "Sarah", "Jessica",
         "Karen", "Ashley", "Megan", "Hannah", "Charlotte", "Amelia", "Sophie", "Chloe",
         "Danielle", "Kimberly", "Bethany", "Rebecca"]),
    "hispanic": (
        ["José", "Juan", "Carlos", "Miguel", "Alejandro", "Diego", "Javier", "Luis",
         "Santiago", "Mateo", "Andrés", "Jorge"],
        ["María", "Guadalupe", "Lucía", "Sofía", "Valentina", "Camila", "Ximena", "Carmen",
         "Daniela", "Isabella", "Marisol", "Paola"]),
    "african": (
        ["Kwame", "Chinedu", "Oluwaseun", "Tendai", "Kofi", "Themba", "Babajide", "Moussa",
         "Emeka", "Kwabena", "Tunde", "Jabari"],
        ["Ama", "Ngozi", "Amara", "Wanjiru", "Abena", "Zanele", "Folake", "Aissatou",
         "Chiamaka", "Nia", "Adaeze", "Thandiwe"]),
    "south_asian": (
        ["Rahul", "Arjun", "Vikram", "Sanjay", "Aditya", "Imran", "Farhan", "Rohan",
         "Harpreet", "Suresh", "Anil", "Kabir"],
        ["Priya", "Ananya", "Deepika", "Lakshmi", "Kavya", "Nusrat", "Sunita", "Meera",
         "Pooja", "Shreya", "Ayesha", "Divya"]),
    "east_asian": (
        ["Wei", "Hiroshi", "Min-jun", "Haruto", "Jun", "Minh", "Kenji", "Jian", "Sung-ho",
         "Takeshi", "Hao", "Duc"],
        ["Mei", "Yuki", "Ji-woo", "Seo-yeon", "Xiaoling", "Linh", "Thanh", "Aiko", "Hana",
         "Yan", "Eun-ji", "Sakura"]),
    "arabic": (
        ["Ahmed", "Omar", "Youssef", "Khalid", "Hassan", "Karim", "Tariq", "Mohammed",
         "Bilal", "Samir", "Rami", "Faisal"],
        ["Fatima", "Layla", "Aisha", "Mariam", "Nour", "Zainab", "Salma", "Yasmin", "Rania",
         "Huda", "Leila", "Amira"]),
    "french": (
        ["Mathieu", "Benoît", "François", "Théo", "Jérôme", "Julien", "Antoine", "Étienne",
         "Jean-Luc", "Olivier", "Rémi", "Hugo"],
        ["Élodie", "Camille", "Léa", "Chloé", "Margaux", "Hélène", "Océane", "Manon",
         "Aurélie", "Sandrine", "Inès", "Maëlle"]),
}

LAST = {
    "anglo": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
              "Anderson", "Taylor", "Moore", "Clarke", "Wright", "Walker", "Hughes",
              "Thompson", "Robinson", "O'Brien", "McAllister", "Fitzgerald", "Harris",
              "Bennett", "Cooper", "Smith-Jones"],
    "hispanic": ["García", "Rodríguez", "Martínez", "Hernández", "López", "González",
                 "Pérez", "Sánchez", "Ramírez", "Torres", "Flores", "Rivera", "Gómez",
                 "Díaz", "de la Cruz", "Castillo"],
    "african": ["Okafor", "Mensah", "Adeyemi", "Okonkwo", "Mwangi", "Nkosi", "Diallo",
                "Boateng", "Asante", "Ndlovu", "Kamara", "Traoré", "Owusu", "Eze",
                "Otieno", "Balogun"],
    "south_asian": ["Patel", "Sharma", "Singh", "Kumar", "Gupta", "Reddy", "Iyer",
                    "Chowdhury", "Khan", "Rahman", "Banerjee", "Nair", "Desai", "Mehta",
                    "Siddiqui", "Bhattacharya"],
    "east_asian": ["Wang", "Li", "Zhang", "Chen", "Liu", "Nguyen", "Tran", "Kim", "Park",
                   "Lee", "Choi", "Tanaka", "Suzuki", "Sato", "Yamamoto", "Huang"],
    "arabic": ["Al-Farsi", "Haddad", "Nasser", "El-Amin", "Mansour", "Khalil", "Saleh",
               "Abdullah", "Al-Sayed", "Hamdan", "Aziz", "Bakr", "Darwish", "Qureshi"],
    "french": ["Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Rousseau", "Fournier",
               "Mercier", "Bonnet", "Lambert", "Fontaine", "Chevalier", "Gauthier",
               "Tremblay"],
}
ORIGINS = list(FIRST)
TITLES = {
    "m": ["Mr. ", "Mr ", "Dr. ", "Dr ", "Mr. ", "Prof. "],
    "f": ["Mrs. ", "Ms. ", "Ms ", "Miss ", "Dr. ", "Mrs "],
}


class Persona:
    def __init__(self):
        self.origin = RNG.choice(ORIGINS)
        self.sex = RNG.choice("mf")
        names = FIRST[self.origin][0 if self.sex == "m" else 1]
        self.first = RNG.choice(names)
        self.middle = RNG.choice([n for n in names if n != self.first])
        last_origin = self.origin if RNG.random() < 0.85 else RNG.choice(ORIGINS)
        self.last = RNG.choice(LAST[last_origin])
        self.initial = RNG.choice("ABCDEFGHJKLMNPRSTW")
        self.year = RNG.randint(1940, 2005)


def ascii_fold(s):
    s = unicodedata.normalize("NFKD", s)
    return "".join(c for c in s if c.isascii() and c.isalnum()).lower()


def recase(s, p_lower=0.08, p_upper=0.02):
    r = RNG.random()
    if r < p_lower:
        return s.lower()
    if r < p_lower + p_upper:
        return s.upper()
    return s


def person(p, possessive):
    """(prefix outside the span, name): full names, middle initials, titles, first or last
    name alone."""
    r = RNG.random()
    prefix = ""
    if r < 0.46:
        name = f"{p.first} {p.last}"
    elif r < 0.56:
        name = f"{p.first} {p.initial}. {p.last}"
    elif r < 0.67:
        name = p.first
    elif r < 0.75:
        prefix, name = RNG.choice(TITLES[p.sex]), p.last
    elif r < 0.85:
        prefix, name = RNG.choice(TITLES[p.sex]), f"{p.first} {p.last}"
    elif r < 0.89:
        name = f"{p.first[0]}. {p.last}"
    elif r < 0.93:
        name = f"{p.first} {p.middle} {p.last}"
    elif r < 0.96 and not possessive:
        name = f"{p.first} {p.initial} {p.last}"
    else:
        name = p.last
    cased = recase(name)
    if cased == name.lower() != name:
        prefix = prefix.lower()
    return prefix, cased


def name_field(p):
    """A name as typed into a form."""
    return RNG.choice([
        f"{p.last.upper()}, {p.first}",
        f"{p.last}, {p.first}",
        f"{p.last}, {p.first} {p.initial}.",
        f"{p.first} {p.last}",
        f"{p.first.upper()} {p.last.upper()}",
        f"{p.first} {p.initial}. {p.last}",
    ])


# ---------------------------------------------------------------------------------------
# Places

# city, state abbreviation, state, first three ZIP digits
US_PLACES = [
    ("Springfield", "IL", "Illinois", "627"), ("Austin", "TX", "Texas", "787"),
    ("Denver", "CO", "Colorado", "802"), ("Seattle", "WA", "Washington", "981"),
    ("Boston", "MA", "Massachusetts", "021"), ("Atlanta", "GA", "Georgia", "303"),
    ("Phoenix", "AZ", "Arizona", "850"), ("Portland", "OR", "Oregon", "972"),
    ("Columbus", "OH", "Ohio", "432"), ("Nashville", "TN", "Tennessee", "372"),
    ("Madison", "WI", "Wisconsin", "537"), ("Albuquerque", "NM", "New Mexico", "871"),
    ("Raleigh", "NC", "North Carolina", "276"), ("Omaha", "NE", "Nebraska", "681"),
    ("Sacramento", "CA", "California", "958"), ("Tampa", "FL", "Florida", "336"),
    ("Minneapolis", "MN", "Minnesota", "554"), ("Baltimore", "MD", "Maryland", "212"),
    ("Pittsburgh", "PA", "Pennsylvania", "152"), ("Des Moines", "IA", "Iowa", "503"),
    ("El Paso", "TX", "Texas", "799"), ("Louisville", "KY", "Kentucky", "402"),
    ("Boise", "ID", "Idaho", "837"), ("Anchorage", "AK", "Alaska", "995"),
    ("Honolulu", "HI", "Hawaii", "968"), ("Burlington", "VT", "Vermont", "054"),
    ("Fresno", "CA", "California", "937"), ("Little Rock", "AR", "Arkansas", "722"),
    ("Salt Lake City", "UT", "Utah", "841"), ("Newark", "NJ", "New Jersey", "071"),
    ("Brooklyn", "NY", "New York", "112"), ("Detroit", "MI", "Michigan", "482"),
    ("Kansas City", "MO", "Missouri", "641"), ("Charleston", "SC", "South Carolina", "294"),
    ("Richmond", "VA", "Virginia", "232"), ("Spokane", "WA", "Washington", "992"),
    ("Tulsa", "OK", "Oklahoma", "741"), ("Hartford", "CT", "Connecticut", "061"),
]
# Faker invents towns like these; they sit in addresses and city slots now and then.
FAKER_TOWNS = ["Port Danielle", "North Kimberly", "Lake Steven", "West Jessica",
               "New Amandaburgh", "Johnsonview", "Smithhaven", "East Marcusfort",
               "South Brittany", "Lake Jenniferside", "Millerstad", "Port Tylerberg"]
# city, postcode area
UK_PLACES = [
    ("Leeds", "LS"), ("Bristol", "BS"), ("Manchester", "M"), ("Birmingham", "B"),
    ("Glasgow", "G"), ("Edinburgh", "EH"), ("Cardiff", "CF"), ("Liverpool", "L"),
    ("Sheffield", "S"), ("Newcastle upon Tyne", "NE"), ("Nottingham", "NG"),
    ("Leicester", "LE"), ("Oxford", "OX"), ("Cambridge", "CB"), ("Brighton", "BN"),
    ("London", "SW"), ("London", "E"), ("London", "N"), ("London", "SE"), ("London", "NW"),
    ("Norwich", "NR"), ("Exeter", "EX"), ("Belfast", "BT"), ("York", "YO"),
]
# city, province, first letter of the postal code
CA_PLACES = [
    ("Toronto", "ON", "M"), ("Montréal", "QC", "H"), ("Vancouver", "BC", "V"),
    ("Calgary", "AB", "T"), ("Ottawa", "ON", "K"), ("Winnipeg", "MB", "R"),
    ("Halifax", "NS", "B"), ("Edmonton", "AB", "T"), ("Québec City", "QC", "G"),
    ("Saskatoon", "SK", "S"), ("Hamilton", "ON", "L"), ("Victoria", "BC", "V"),
]
WORLD_CITIES = ["Lagos", "Nairobi", "Mumbai", "Karachi", "Dhaka", "Manila", "Seoul", "Osaka",
                "Hanoi", "Cairo", "Casablanca", "Beirut", "Mexico City", "Bogotá", "Lima",
                "São Paulo", "Lyon", "Marseille", "Dakar", "Accra", "Kampala",
                "Addis Ababa", "Kingston", "Guadalajara", "Chennai", "Lahore", "Amman",
                "Ho Chi Minh City", "Kumasi", "Port Harcourt", "Dublin", "Auckland"]
COUNTRIES = ["Nigeria", "Ghana", "Kenya", "India", "Pakistan", "Bangladesh", "Mexico",
             "Guatemala", "Colombia", "Brazil", "Vietnam", "China", "Japan", "South Korea",
             "Egypt", "Morocco", "Lebanon", "Senegal", "Ethiopia", "Uganda", "Jamaica",
             "France", "Germany", "Ireland", "Canada", "Australia", "Somalia", "Haiti",
             "Peru", "Syria", "Poland", "Romania"]

US_STREET_NAMES = ["Maple", "Oak", "Cedar", "Pine", "Elm", "Washington", "Lincoln",
                   "Jefferson", "Park", "Lake", "Hill", "Sunset", "Highland", "Church",
                   "Mill", "River", "Spring", "Meadow", "Willow", "Chestnut", "Walnut",
                   "Franklin", "Madison", "Cherry", "Ridge", "Forest", "Valley", "Main",
                   "2nd", "3rd", "5th", "14th", "42nd", "Martin Luther King Jr",
                   "Evergreen", "Birch", "Magnolia", "Dogwood", "Peachtree", "Sycamore"]
US_SUFFIXES = ["Ave", "Ave.", "Avenue", "St", "St.", "Street", "Rd", "Road", "Blvd",
               "Boulevard", "Ln", "Lane", "Dr", "Drive", "Ct", "Court", "Way", "Pl", "Place",
               "Terrace", "Cir", "Circle", "Pkwy", "Trail"]
FAKER_SUFFIXES = ["Crossing", "Ports", "Village", "Courts", "Harbor", "Knoll", "Springs",
                  "Summit", "Vista", "Fields", "Mission", "Shoals"]
UK_STREETS = ["High Street", "Church Lane", "Station Road", "Victoria Road", "Mill Lane",
              "Park Avenue", "Queen's Road", "King Street", "The Crescent", "Manor Close",
              "Windsor Gardens", "Albert Terrace", "Kings Drive", "Green Lane",
              "Chapel Street", "Orchard Way", "Grange Road", "St John's Walk"]
UK_HOUSES = ["The Old Rectory", "Rose Cottage", "Ivy House", "Orchard View", "Willow Barn"]
CA_STREETS = ["King St W", "Queen St E", "Elm St", "Main St", "Maple Ave", "Victoria Ave",
              "Church St", "Park Rd", "Wellington St", "Lakeshore Blvd"]
QC_STREETS = ["Rue Sainte-Catherine", "Boulevard Saint-Laurent", "Rue du Parc",
              "Avenue des Pins", "Rue Saint-Jean", "Chemin Sainte-Foy"]


def pick_place(region):
    if region == "uk":
        return ("uk",) + RNG.choice(UK_PLACES)
    if region == "ca":
        return ("ca",) + RNG.choice(CA_PLACES)
    city, st, state, z = RNG.choice(US_PLACES)
    if RNG.random() < 0.15:
        city = RNG.choice(FAKER_TOWNS)
    return ("us", city, st, state, z)


def us_zip(place, plus4=None):
    z = f"{place[4]}{RNG.randint(1, 99):02d}"
    if plus4 is None:
        plus4 = RNG.random() < 0.15
    return f"{z}-{RNG.randint(1, 9999):04d}" if plus4 else z


LONDON_LETTER_DISTRICTS = {"SW": ["1A", "1E", "1H", "1P", "1V", "1W", "1X", "1Y"],
                          "E": ["1W"], "N": ["1C", "1P"]}


def uk_postcode(area):
    units = "ABDEFGHJLNPQRSTUWXYZ"
    district = str(RNG.randint(1, {"NW": 11, "N": 22}.get(area, 20 if len(area) == 1 else 15)))
    if area in LONDON_LETTER_DISTRICTS and RNG.random() < 0.2:
        district = RNG.choice(LONDON_LETTER_DISTRICTS[area])
    return f"{area}{district} {RNG.randint(1, 9)}{RNG.choice(units)}{RNG.choice(units)}"


def ca_postcode(first):
    letters = "ABCEGHJKLMNPRSTVWXYZ"
    return (f"{first}{RNG.randint(0, 9)}{RNG.choice(letters)} "
            f"{RNG.randint(0, 9)}{RNG.choice(letters)}{RNG.randint(0, 9)}")


def us_street(with_secondary=None):
    number = str(RNG.randint(1, 9999)) if RNG.random() < 0.9 else f"{RNG.randint(0, 99999):05d}"
    if RNG.random() < 0.15:
        name = f"{RNG.choice(LAST['anglo'] + LAST['hispanic'])} {RNG.choice(FAKER_SUFFIXES)}"
    else:
        name = f"{RNG.choice(US_STREET_NAMES)} {RNG.choice(US_SUFFIXES)}"
        if RNG.random() < 0.12:
            name = RNG.choice(["N ", "S ", "E ", "W ", "North ", "West "]) + name
    street = f"{number} {name}"
    if with_secondary is None:
        with_secondary = RNG.random() < 0.35
    if with_secondary:
        sec = RNG.choice([f"Apt. {RNG.randint(1, 40)}", f"Apt {RNG.randint(1, 20)}{RNG.choice('ABCD')}",
                          f"Suite {RNG.randint(100, 950)}", f"Ste {RNG.randint(100, 500)}",
                          f"Unit {RNG.randint(1, 30)}", f"#{RNG.randint(1, 99)}",
                          f"Fl {RNG.randint(2, 12)}"])
        street += RNG.choice([", ", " "]) + sec
    return street


def uk_street():
    r = RNG.random()
    line = f"{RNG.randint(1, 220)} {RNG.choice(UK_STREETS)}"
    if r < 0.2:
        return f"Flat {RNG.randint(1, 24)}, {line}"
    if r < 0.28:
        return f"{RNG.choice(UK_HOUSES)}, {RNG.choice(UK_STREETS)}"
    if r < 0.34:
        return f"{RNG.randint(1, 60)}{RNG.choice('ab')} {RNG.choice(UK_STREETS)}"
    return line


def ca_street(province=None):
    s = f"{RNG.randint(1, 4999)} {RNG.choice(QC_STREETS if province == 'QC' else CA_STREETS)}"
    if RNG.random() < 0.3:
        s = RNG.choice([f"Unit {RNG.randint(1, 40)}, ", f"{RNG.randint(101, 2508)}-"]) + s
    return s


def address(region=None, lines=False):
    """A whole postal address, one span."""
    region = region or RNG.choice(["us", "us", "us", "uk", "uk", "ca"])
    sep = "\n" if lines else ", "
    place = pick_place(region)
    if region == "us":
        if not lines and RNG.random() < 0.1:
            return us_street()  # street only, "742 Evergreen Terrace"
        street = us_street() if RNG.random() < 0.93 else f"PO Box {RNG.randint(10, 9999)}"
        state = place[2] if RNG.random() < 0.85 else place[3]
        tail = f"{place[1]}, {state} {us_zip(place)}"
        if not lines and RNG.random() < 0.15:
            tail = f"{place[1]} {state} {us_zip(place)}"
        return f"{street}{sep}{tail}"
    if region == "uk":
        street = uk_street()
        if lines:
            street = street.replace(", ", "\n")
        pc = uk_postcode(place[2])
        tail = RNG.choice([f"{place[1]} {pc}", f"{place[1]}{sep}{pc}"])
        return f"{street}{sep}{tail}"
    street = ca_street(place[2])
    return f"{street}{sep}{place[1]}, {place[2]} {ca_postcode(place[3])}"


def street_address(region):
    if region == "uk":
        return uk_street()
    if region == "ca":
        return ca_street(RNG.choice(["ON", "QC", "BC"]))
    return us_street()


def location():
    r = RNG.random()
    if r < 0.3:
        return RNG.choice(WORLD_CITIES)
    if r < 0.5:
        return RNG.choice(COUNTRIES)
    if r < 0.65:
        return RNG.choice(US_PLACES)[2]
    if r < 0.8:
        return RNG.choice(US_PLACES)[0]
    if r < 0.93:
        return RNG.choice(UK_PLACES)[0]
    return RNG.choice(CA_PLACES)[0]


def city():
    r = RNG.random()
    if r < 0.35:
        return RNG.choice(US_PLACES)[0]
    if r < 0.55:
        return RNG.choice(UK_PLACES)[0]
    if r < 0.65:
        return RNG.choice(CA_PLACES)[0]
    if r < 0.72:
        return RNG.choice(FAKER_TOWNS)
    return RNG.choice(WORLD_CITIES)


# ---------------------------------------------------------------------------------------
# Phones, e-mails, web

def nanp_parts():
    while True:
        area = f"{RNG.randint(2, 9)}{RNG.randint(0, 8)}{RNG.randint(0, 9)}"
        exch = f"{RNG.randint(2, 9)}{RNG.randint(0, 9)}{RNG.randint(0, 9)}"
        if area[1:] != "11" and exch[1:] != "11":
            return area, exch, f"{RNG.randint(0, 9999):04d}"


def phone_us():
    a, e, n = nanp_parts()
    ext = str(RNG.randint(1, 9999))
    return RNG.choice([
        f"({a}) {e}-{n}", f"({a}) {e}-{n}", f"{a}-{e}-{n}", f"{a}-{e}-{n}", f"{a}.{e}.{n}",
        f"+1-{a}-{e}-{n}", f"{a} {e} {n} x{ext[:3]}", f"{a}-{e}-{n}x{ext}",
        f"001-{a}-{e}-{n}x{ext[:2]}", f"{a}{e}{n}", f"+1 ({a}) {e}-{n}", f"1-{a}-{e}-{n}",
        f"({a}) {e}-{n} ext. {ext[:3]}", f"+1 {a} {e} {n}", f"{a}.{e}.{n}x{ext[:3]}",
    ])


def phone_uk():
    mob = f"7{RNG.randint(300, 999)}"
    six = f"{RNG.randint(100000, 999999)}"
    lon = f"{RNG.choice(['7', '3', '8'])}{RNG.randint(100, 999)} {RNG.randint(1000, 9999)}"
    city_code = RNG.choice(["161", "113", "117", "121", "131", "141", "114", "115", "116"])
    local = f"{RNG.randint(200, 999)} {RNG.randint(1000, 9999)}"
    return RNG.choice([
        f"0{mob} {six}", f"0{mob} {six}", f"+44 {mob} {six}", f"+44 20 {lon}", f"020 {lon}",
        f"0{city_code} {local}", f"+44 (0){city_code} {local}", f"0{mob}{six}",
        f"+44 (0) 20 {lon}", f"0{mob} {six[:3]} {six[3:]}",
    ])


def phone_intl():
    return RNG.choice([
        f"+33 6 {RNG.randint(10, 99)} {RNG.randint(10, 99)} {RNG.randint(10, 99)} {RNG.randint(10, 99)}",
        f"+49 30 {RNG.randint(10000000, 99999999)}",
        f"+91 {RNG.randint(70000, 99999)} {RNG.randint(10000, 99999)}",
        f"+234 80{RNG.randint(1, 9)} {RNG.randint(100, 999)} {RNG.randint(1000, 9999)}",
        f"+254 7{RNG.randint(10, 99)} {RNG.randint(100, 999)} {RNG.randint(100, 999)}",
        f"+61 2 {RNG.randint(8000, 9999)} {RNG.randint(1000, 9999)}",
        f"+52 55 {RNG.randint(1000, 9999)} {RNG.randint(1000, 9999)}",
        f"+63 917 {RNG.randint(100, 999)} {RNG.randint(1000, 9999)}",
        f"+1 (416) {RNG.randint(200, 989)}-{RNG.randint(1000, 9999)}",
        f"+353 87 {RNG.randint(100, 999)} {RNG.randint(1000, 9999)}",
    ])


def phone(region=None):
    r = RNG.random()
    if region == "uk":
        return phone_uk() if r < 0.8 else phone_intl()
    if region == "ca":
        a, e, n = nanp_parts()
        return RNG.choice([f"({a}) {e}-{n}", f"{a}-{e}-{n}", f"+1 {a} {e} {n}"])
    if region == "us":
        return phone_us() if r < 0.9 else phone_intl()
    if r < 0.6:
        return phone_us()
    if r < 0.85:
        return phone_uk()
    return phone_intl()


FREE_MAIL = ["gmail.com", "gmail.com", "yahoo.com", "hotmail.com", "outlook.com",
             "icloud.com", "aol.com", "proton.me", "yahoo.co.uk", "btinternet.com",
             "live.ca", "gmx.de", "orange.fr", "hotmail.co.uk"]
ORG_MAIL = ["example.com", "example.org", "example.net", "mercyhealth.org",
            "stlukes-clinic.com", "riverside-health.org", "nhs.net", "northgate-gp.nhs.uk",
            "med.example.edu", "cityhospital.example", "lakeside-pharmacy.com",
            "healthcare.example.ca"]
NICK = ["sunnyday", "bluefox", "nightowl", "coffeequeen", "runner", "gamer", "mamabear",
        "drumline", "skywalker", "lilypad"]


def email(p=None):
    if p is None:
        p = Persona()
    f, l = ascii_fold(p.first), ascii_fold(p.last)
    yy, nn = str(p.year)[2:], str(RNG.randint(1, 999))
    user = RNG.choice([
        f"{f}.{l}", f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}{l[0]}{nn}",
        f"{l}.{f}", f"{f}.{l}{yy}", f"{f}{nn}", f"{f[0]}.{l}", f"{l}{f[0]}",
        f"{RNG.choice(NICK)}{yy}", f"{f}.{l}+{RNG.choice(['nhs', 'work', 'clinic', 'shop'])}",
    ])
    r = RNG.random()
    if r < 0.5:
        dom = RNG.choice(FREE_MAIL)
    elif r < 0.85:
        dom = RNG.choice(ORG_MAIL)
    else:
        a, b = ascii_fold(RNG.choice(LAST["anglo"])), ascii_fold(RNG.choice(LAST["hispanic"]))
        dom = RNG.choice([f"{a}.com", f"{a}-{b}.biz", f"{b}.info", f"{a}{b}.net"])
    out = f"{user}@{dom}"
    return out.upper() if RNG.random() < 0.03 else out


PORTALS = ["portal.mercyhealth.org", "records.example-clinic.com", "mychart.stlukes.example",
           "ehr.riverside-health.org", "patients.example.com", "intranet.northgate.nhs.uk",
           "app.telehealth.example", "example.com"]


def handle(p):
    f, l = ascii_fold(p.first), ascii_fold(p.last)
    return RNG.choice([f"{f[0]}{l}", f"{f}.{l}", f"{f}{l}{str(p.year)[2:]}", f"{l}_{f}",
                       f"{f}_{l}_rn", f"{f}{l[0]}"])


def url(p=None, kind="any"):
    """A URL that points at one person: a record in a patient portal, or a profile."""
    if p is None:
        p = Persona()
    if kind == "any":
        kind = RNG.choice(["portal", "social"])
    n = RNG.randint(10000, 999999)
    portal = RNG.choice(PORTALS)
    if kind == "portal":
        return RNG.choice([
            f"https://{portal}/patients/{n}",
            f"https://{portal}/patient?id={n}",
            f"https://{portal}/records/MRN-{RNG.randint(1000000, 9999999)}",
            f"https://{portal}/patients/{n}/results?view=full",
            f"https://{portal}/u/{n}",
            f"https://{portal}/chart/{ascii_fold(p.last)}-{ascii_fold(p.first)}-{n}",
        ])
    h = handle(p)
    slug = f"{ascii_fold(p.first)}-{ascii_fold(p.last)}"
    tag = f"{RNG.randint(16**4, 16**5 - 1):x}"
    return RNG.choice([
        f"https://www.facebook.com/{h}",
        f"https://twitter.com/{h}",
        f"https://x.com/{h}",
        f"https://www.linkedin.com/in/{slug}-{tag}",
        f"https://instagram.com/{h}",
        f"https://x.org/profile?id={h}",
        f"http://forum.example.net/users/{h}",
        f"https://www.gofundme.com/f/help-{slug}",
    ])


def ipv4():
    r = RNG.random()
    if r < 0.6:
        while True:
            a = RNG.randint(1, 223)
            if a not in (10, 127, 172, 192):
                break
        return f"{a}.{RNG.randint(0, 255)}.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"
    if r < 0.8:
        return f"192.168.{RNG.randint(0, 20)}.{RNG.randint(2, 254)}"
    if r < 0.9:
        return f"10.{RNG.randint(0, 255)}.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"
    return f"172.{RNG.randint(16, 31)}.{RNG.randint(0, 255)}.{RNG.randint(1, 254)}"


def ipv6():
    g = [f"{RNG.randint(0, 0xffff):x}" for _ in range(8)]
    r = RNG.random()
    if r < 0.35:
        s = ":".join(x.zfill(4) for x in g)
    elif r < 0.65:
        s = f"2001:db8:{g[2]}:{g[3]}::{g[7]}"
    elif r < 0.85:
        s = f"fe80::{g[4]}:{g[5]}:{g[6]}:{g[7]}"
    else:
        s = ":".join(g)
    return s.upper() if RNG.random() < 0.15 else s


def ip():
    return ipv6() if RNG.random() < 0.2 else ipv4()


# ---------------------------------------------------------------------------------------
# Dates and ages

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def ordinal(n):
    if 11 <= n % 100 <= 13:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def random_date(y0, y1):
    start = datetime.date(y0, 1, 1).toordinal()
    end = datetime.date(y1, 12, 31).toordinal()
    return datetime.date.fromordinal(RNG.randint(start, end))


def fmt_date(d, year_optional):
    m, mon = MONTHS[d.month - 1], MONTHS[d.month - 1][:3]
    forms = [
        f"{m} {d.day}, {d.year}", f"{m} {d.day}, {d.year}", f"{mon} {d.day}, {d.year}",
        f"{d.day} {m} {d.year}", f"{d.day} {mon} {d.year}", f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.month}/{d.day}/{d.year}", f"{d:%Y-%m-%d}", f"{d.day:02d}.{d.month:02d}.{d.year}",
        f"{d.day:02d}/{d.month:02d}/{d.year}", f"the {ordinal(d.day)} of {m} {d.year}",
        f"{m} {ordinal(d.day)}, {d.year}", f"{mon}. {d.day}, {d.year}",
        f"{d.month:02d}-{d.day:02d}-{d.year}", f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",
        f"{d:%A}, {m} {d.day}, {d.year}", f"{d.year}/{d.month:02d}/{d.day:02d}",
    ]
    if year_optional:
        forms += [f"{mon} {ordinal(d.day)}", f"{ordinal(d.day)} {m}", f"{m} {d.day}",
                  f"{d.day} {mon}"]
    return RNG.choice(forms)


def date():
    return fmt_date(random_date(2015, 2026), True)


def dob():
    return fmt_date(random_date(1932, 2022), False)


def month_year():
    d = random_date(2012, 2026)
    return RNG.choice([f"{MONTHS[d.month - 1]} {d.year}", f"{MONTHS[d.month - 1][:3]} {d.year}",
                       f"{MONTHS[d.month - 1]}, {d.year}", f"{d.month:02d}/{d.year}"])


def age():
    return str(RNG.choice([RNG.randint(18, 99), RNG.randint(40, 92)]))


def child_age():
    return str(RNG.randint(1, 15))


# ---------------------------------------------------------------------------------------
# Identifiers with checks

def luhn_digit(body):
    total = 0
    for i, c in enumerate(reversed(body)):
        x = int(c) * 2 if i % 2 == 0 else int(c)
        total += x - 9 if x > 9 else x
    return str((10 - total % 10) % 10)


def luhn_complete(prefix, length):
    body = prefix + "".join(str(RNG.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def ssn():
    while True:
        area = RNG.randint(1, 899)
        if area != 666:
            break
    s = f"{area:03d}{RNG.randint(1, 99):02d}{RNG.randint(1, 9999):04d}"
    r = RNG.random()
    if r < 0.7:
        return f"{s[:3]}-{s[3:5]}-{s[5:]}"
    if r < 0.85:
        return f"{s[:3]} {s[3:5]} {s[5:]}"
    return s


def nhs():
    while True:
        d = [RNG.randint(0, 9) for _ in range(9)]
        if d[0] == 0:
            continue
        check = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, d + [check]))
            r = RNG.random()
            if r < 0.7:
                return f"{s[:3]} {s[3:6]} {s[6:]}"
            if r < 0.85:
                return s
            return f"{s[:3]}-{s[3:6]}-{s[6:]}"


def sin():
    s = luhn_complete(str(RNG.randint(1, 7)), 9)
    r = RNG.random()
    if r < 0.55:
        return f"{s[:3]} {s[3:6]} {s[6:]}"
    if r < 0.8:
        return f"{s[:3]}-{s[3:6]}-{s[6:]}"
    return s


def group_card(s):
    sep = RNG.choice([" ", " ", "-", ""])
    if len(s) == 15:
        return sep.join([s[:4], s[4:10], s[10:]])
    return sep.join(s[i:i + 4] for i in range(0, 16, 4))


def visa():
    return group_card(luhn_complete("4", 16))


def mastercard():
    prefix = str(RNG.randint(51, 55)) if RNG.random() < 0.75 else str(RNG.randint(2221, 2720))
    return group_card(luhn_complete(prefix, 16))


def amex():
    return group_card(luhn_complete(RNG.choice(["34", "37"]), 15))


def discover():
    return group_card(luhn_complete("6011", 16))


def credit_card():
    return RNG.choice([visa, visa, mastercard, mastercard, amex, discover])()


def iban_digits(s):
    return "".join(str(int(c, 36)) for c in s)


def iban():
    country = RNG.choice(["GB", "FR", "DE", "NL"])
    digits = lambda n: "".join(str(RNG.randint(0, 9)) for _ in range(n))
    if country == "GB":
        bban = RNG.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]) + digits(6) + digits(8)
    elif country == "FR":
        bank, branch, account = digits(5), digits(5), digits(11)
        key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97
        bban = f"{bank}{branch}{account}{key:02d}"
    elif country == "DE":
        bban = digits(8) + digits(10)
    else:
        bban = RNG.choice(["ABNA", "INGB", "RABO", "TRIO", "SNSB", "ASNB"]) + digits(10)
    check = 98 - int(iban_digits(bban + country + "00")) % 97
    s = f"{country}{check:02d}{bban}"
    if RNG.random() < 0.65:
        return " ".join(s[i:i + 4] for i in range(0, len(s), 4))
    return s


def mrn():
    return RNG.choice([
        str(RNG.randint(1000000, 9999999)), str(RNG.randint(10000000, 99999999)),
        f"{RNG.randint(2015, 2025)}-{RNG.randint(1, 99999):05d}",
        f"{RNG.choice(['AB', 'MR', 'HN', 'K'])}-{RNG.randint(100000, 999999)}",
        f"H{RNG.randint(0, 9999999):08d}", f"{RNG.randint(0, 999999):09d}",
    ])


SAINTS = ["Mary", "Luke", "Joseph", "Vincent", "Thomas", "Anne", "Jude", "Michael", "Francis"]


def hospital():
    place = RNG.choice([p[0] for p in US_PLACES] + [p[0] for p in UK_PLACES if p[0] != "London"])
    return RNG.choice([
        f"{place} General Hospital", f"St. {RNG.choice(SAINTS)}'s Hospital",
        f"St {RNG.choice(SAINTS)}'s Medical Center", f"{RNG.choice(LAST['anglo'])} Memorial Hospital",
        f"{place} Children's Hospital", f"Royal {place} Infirmary",
        f"{place} Community Health Centre", "Mercy General Hospital",
        "Riverside Community Hospital", "Good Samaritan Hospital", "Lakeside Medical Center",
        f"University Hospital of {place}", "Northgate Health Centre", "Cedar Valley Clinic",
        f"{place} Regional Medical Center", "Sacred Heart Hospital",
    ])


# ---------------------------------------------------------------------------------------
# Templates. family -> list of sentences with {SLOT}s.

TEMPLATES = {
    "person": [
        "My name is {PERSON} and I'm calling about my mother's test results.",
        "{PERSON} was discharged this morning after three nights on the ward.",
        "Can someone check on {PERSON} in bed 4? The drip keeps alarming.",
        "{PERSON}'s wound dressing needs changing before the end of the shift.",
        "Dear {PERSON}, thank you for attending your appointment today.",
        "Patient {PERSON} refused the flu shot again this morning.",
        "Hi, this is {FIRST_NAME} from the front desk, your prescription is ready for pickup.",
        "Dr. {LAST_NAME} asked for a repeat blood count for {PERSON}.",
        "{FIRST_NAME} and {FIRST_NAME} are covering the night shift, ask them if anything comes up.",
        "Handover: {PERSON} stable overnight, pain controlled, family visiting later.",
        "I spoke with {PERSON}'s daughter, she will bring the medication list tomorrow.",
        "thanks {FIRST_NAME} for staying late yesterday, you saved us",
        "The account holder is {PERSON}.",
        "{PERSON} left a five-star review for our support team.",
        "Please forward this complaint to {PERSON} in billing.",
        "Signed, {PERSON}, Ward Manager",
        "Has anyone seen {PERSON} since the vaccination day? They missed the second dose.",
        "{LAST_NAME} in room 12 keeps asking for {FIRST_NAME}, the eldest grandchild.",
        "Referred by {PERSON} for a cardiology consult.",
        "Congrats to {PERSON} and {PERSON} on passing their nursing exams!",
        "Name: {NAME_FIELD}",
        "Caller gave the name {PERSON} and said they were the patient's sibling.",
    ],
    "phone": [
        "My name is {PERSON} and my number is {PHONE}",
        "Please call me back on {PHONE}.",
        "The patient's mother can be reached at {PHONE} after 5pm.",
        "{PERSON}: {PHONE}",
        "Call {PHONE} to reschedule your appointment with Dr. {LAST_NAME}.",
        "The on-call pharmacist is {FIRST_NAME}, mobile {PHONE}.",
        "Emergency contact: {PERSON} ({PHONE})",
        "cell is {PHONE} text me when the labs are back",
        "If you have questions about your bill, dial {PHONE} Monday through Friday.",
        "{PERSON}'s new number is {PHONE}, please update the chart.",
        "Tel: {PHONE} | Fax: {PHONE}",
        "I tried {PHONE} three times but it goes straight to voicemail.",
        "ring the ward on {PHONE_UK} and ask for {FIRST_NAME}",
        "Our customer service line {PHONE} is open 24/7.",
        "Home: {PHONE}\nWork: {PHONE}",
        "He gave {PHONE} as his number but it's disconnected.",
    ],
    "email": [
        "Please send the results to {EMAIL}.",
        "You can reach {PERSON} at {EMAIL}.",
        "My email is {EMAIL}, I never got the confirmation.",
        "Forward the discharge summary to {EMAIL} and cc {EMAIL}.",
        "{PERSON}'s email address bounced: {EMAIL}",
        "Email: {EMAIL}",
        "contact me on {EMAIL} for the rota swap",
        "The referral came from {EMAIL} yesterday, can someone triage it?",
        "Your account {EMAIL} has been locked after too many attempts.",
        "Send invoices to {EMAIL} (attn: {PERSON}).",
        "{FIRST_NAME} here, my work address is {EMAIL} if you need the scans.",
        "Please unsubscribe {EMAIL} from the newsletter.",
    ],
    "date": [
        "I was born on {DOB} in {LOCATION}.",
        "DOB: {DOB}",
        "Appointment confirmed for {DATE} at 10:30.",
        "{PERSON} was admitted on {DATE} with chest pain.",
        "Date of birth {DOB}, please verify before dispensing.",
        "Last seen in clinic on {DATE}, due for follow-up in six weeks.",
        "Your policy expires on {DATE}.",
        "The baby was delivered on {DATE} weighing 3.4 kg.",
        "{PERSON}, born {DOB}, presented with a persistent cough.",
        "we met {DATE} at the conference, remember?",
        "Vaccinated {DATE}, booster due {DATE}.",
        "Started treatment in {MONTH_YEAR} and finished last week.",
        "{PERSON} has been on dialysis since {MONTH_YEAR}.",
        "Employment start date: {MONTH_YEAR}",
        "Deceased {DATE}. Next of kin informed.",
    ],
    "location": [
        "{PERSON} just moved to {LOCATION} from {LOCATION}.",
        "The patient recently travelled to {COUNTRY} and developed a fever on return.",
        "I'm flying back to {CITY} tomorrow, can we move my appointment?",
        "She grew up in {LOCATION} and still has family there.",
        "Our team in {CITY} will handle your request.",
        "Outbreak cluster traced to a wedding in {CITY}, {STATE}.",
        "{FIRST_NAME} is originally from {COUNTRY} and speaks little English, "
        "please book an interpreter.",
        "Transferred from a clinic in {LOCATION} last night.",
        "where in {STATE} do you live? we might be neighbours",
        "Place of birth: {LOCATION}",
    ],
    "address": [
        "Ship it to {ADDRESS}.",
        "He lives at {STREET_ADDRESS}, {CITY}, {STATE} {ZIP}.",
        "Home visit scheduled at {ADDRESS} for the wound check.",
        "My new address is {ADDRESS}, please update my file.",
        "{PERSON} lives at {ADDRESS}.",
        "Address: {ADDRESS}",
        "The ambulance was sent to {STREET_ADDRESS} but nobody answered.",
        "Please post the forms to {STREET_ADDRESS}, {CITY} {POSTCODE}.",
        "Billing address: {ADDRESS}",
        "Flowers were delivered to {STREET_ADDRESS} by mistake, the recipient is {PERSON}.",
        "zip code is {ZIP}",
        "Postcode {POSTCODE}, can you check which practice covers it?",
        "The patient gave {ADDRESS} as a temporary address while staying with relatives.",
        "{PERSON}\n{ADDRESS_LINES}",
        "Return to sender: {STREET_ADDRESS}, {CITY}, {STATE} {ZIP}",
    ],
    "national_id": [
        "SSN: {SSN}",
        "My social security number is {SSN}.",
        "{PERSON}'s SSN {SSN} doesn't match our records.",
        "Please verify SSN {SSN} with the insurer before we release the file.",
        "ssn {SSN} dob {DOB}",
        "The form was rejected because the social security number {SSN} was typed in the wrong box.",
        "NHS number {NHS} for the patient in bay 3.",
        "{PERSON}, NHS no. {NHS}, referred for physiotherapy.",
        "Can you look up {NHS} on the spine? The GP surgery can't find them.",
        "nhs num is {NHS}",
        "My SIN is {SIN}.",
        "Social insurance number: {SIN}",
        "{PERSON} (SIN {SIN}) applied for the benefit on {DATE}.",
        "The payroll system rejected SIN {SIN} for {FIRST_NAME}.",
    ],
    "financial_id": [
        "{PERSON}'s card {CREDIT_CARD} was declined.",
        "Please charge the copay to {CREDIT_CARD}.",
        "Card number: {CREDIT_CARD}",
        "Refund issued to card {CREDIT_CARD} on {DATE}.",
        "my visa is {VISA} can u book it",
        "The Amex {AMEX} on file for {PERSON} has expired.",
        "Someone used my card {CREDIT_CARD} at a pharmacy I've never been to.",
        "Mastercard {MASTERCARD} was flagged for fraud.",
        "IBAN: {IBAN}",
        "Please transfer the reimbursement to {IBAN} (account holder {PERSON}).",
        "Our bank details changed, new IBAN {IBAN}.",
        "{PERSON} asked for the deposit to be returned to {IBAN}.",
    ],
    "ip_address": [
        "Contact {PERSON} at {IP}",
        "Login attempt from {IP} was blocked.",
        "The patient portal logged access from {IP} at 03:12 for {PERSON}'s record.",
        "My IP is {IP}, can you whitelist it for the telehealth app?",
        "Suspicious traffic from {IPV6} hitting the booking page.",
        "{FIRST_NAME}'s laptop ({IP}) keeps dropping off the clinic VPN.",
        "Last login: {DATE} from {IP}",
    ],
    "url_id": [
        "Patient record: {URL_PORTAL}",
        "Here is my profile {URL_SOCIAL}",
        "You can see {PERSON}'s chart at {URL_PORTAL} if you have access.",
        "The family posted an appeal for {PERSON} at {URL_SOCIAL}",
        "Link to the scan: {URL_PORTAL}",
        "Follow me at {URL_SOCIAL} for updates from the ward",
        "Please stop sharing {URL}, it shows the patient's full history.",
    ],
    "patient_id": [
        "MRN {MRN} admitted overnight with suspected sepsis.",
        "Please pull the chart for patient ID {MRN}.",
        "{PERSON}, hospital number {MRN}, is due for review.",
        "record # {MRN} has duplicate entries, can IT merge them?",
        "Lab results for MRN: {MRN} are back.",
    ],
    "age": [
        "{AGE}-year-old female with shortness of breath.",
        "{PERSON}, aged {AGE}, fell at home and was brought in.",
        "pt is {AGE} yo, no known allergies",
        "My son is {CHILD_AGE} and still hasn't had his MMR, is it too late?",
        "Age: {AGE}",
    ],
    "hospital": [
        "{PERSON} was transferred to {HOSPITAL} for surgery.",
        "I work nights at {HOSPITAL} and the car park is a nightmare.",
        "Discharged from {HOSPITAL} on {DATE}.",
        "Does anyone know a contact in radiology at {HOSPITAL}?",
    ],
    "mixed": [
        "My name is {PERSON}, I was born on {DOB}, and my SSN is {SSN}.",
        "Name: {NAME_FIELD}\nDOB: {DOB}\nPhone: {PHONE}\nEmail: {EMAIL}",
        "{PERSON} ({AGE}), {ADDRESS}, tel. {PHONE}",
        "Hi {FIRST_NAME}, your order will ship to {ADDRESS} on {DATE}.",
        "Patient: {PERSON}, MRN {MRN}, DOB {DOB}, admitted to {HOSPITAL}.",
        "Please update {PERSON}'s email to {EMAIL} and phone to {PHONE}.",
        "I am {PERSON} from {LOCATION}, my card {CREDIT_CARD} was charged twice.",
        "Contact: {PERSON} | {EMAIL} | {PHONE}",
        "{PERSON} moved from {CITY} to {ADDRESS} on {DATE}.",
        "Dear {PERSON}, we received your payment from {IBAN} on {DATE}.",
        "new patient {PERSON}, {AGE} yo, lives at {STREET_ADDRESS} with their daughter, phone {PHONE}",
        "Referral for {PERSON} (NHS {NHS}), living at {ADDRESS}.",
        "{PERSON} logged in from {IP} and changed the email to {EMAIL}.",
        "Sender: {EMAIL}, IP {IP}, date {DATE}",
        "The claim for {PERSON}, SSN {SSN}, was denied on {DATE}.",
        "{PERSON} was born on {DOB} in {LOCATION}; mother's name {PERSON}.",
        "Emergency contact for {PERSON}: {PERSON}, {PHONE}, {EMAIL}",
        "Prescription for {PERSON}, {DOB}, to be collected at {ADDRESS}.",
        "{PERSON} (patient portal {URL_PORTAL}) asked us to call {PHONE}.",
        "Hello, I'm {PERSON}, SIN {SIN}, and I live at {CA_ADDRESS}.",
        "Please pay into {IBAN} and email the receipt to {EMAIL}.",
        "Visa {VISA}, name on card {PERSON}, billing ZIP {ZIP}",
        "Patient {PERSON}, {AGE}F, from {LOCATION}, seen by Dr. {LAST_NAME} on {DATE}.",
    ],
}

# Rows without identifiers: {int:a:b}, {dec:a:b}, {money:a:b}, {pick:a:b..}, {time}, {ver},
# {bp}, {pct} are numbers that point at no one.
NONE_TEMPLATES = [
    "The clinic opens at {int:7:9} on Monday.",
    "Give {pick:250:500} mg amoxicillin every 8 hours for {pick:5:7:10} days.",
    "We vaccinated {int:40:400} children at the school today.",
    "Ward 4B has {int:10:30} beds, {int:2:6} of them free tonight.",
    "Please update the app to version {ver} before Friday's session.",
    "BP {bp}, pulse {int:55:110}, temp {dec:36:39}, sats {int:90:100}% on room air.",
    "Paracetamol 1 g four times daily, max 4 g in 24 hours.",
    "The meeting moved to room {int:100:450} at {time}.",
    "In an emergency always dial 911.",
    "Call 111 for non-urgent advice when the surgery is closed.",
    "ICD-10 code J45.909 is unspecified asthma.",
    "Order {int:1:9},{int:100:999} syringes and {int:100:900} boxes of gloves for next quarter.",
    "Batch size is {int:24:96} samples per run, turnaround {int:24:96} hours.",
    "Shift starts at 07:00 and handover is at {time}.",
    "Insulin {int:4:20} units before breakfast and {int:4:20} units before dinner.",
    "The fridge must stay between 2 and 8 degrees Celsius.",
    "Our ticket queue had {int:1:3},{int:100:999} open requests this week.",
    "Please complete modules 1 to {int:4:9} of the infection control course.",
    "The survey got {int:120:900} responses, {pct} from nurses.",
    "Press 1 for appointments, 2 for prescriptions, 3 for billing.",
    "Take 2 tablets 3 times a day after meals.",
    "Hand hygiene compliance went from {pct} to {pct} this quarter.",
    "Router firmware {ver} fixed the Wi-Fi drops on level {int:1:6}.",
    "The new ultrasound machine weighs {int:60:120} kg and needs two people to move.",
    "Queue number {int:10:99} please go to counter {int:1:8}.",
    "Refund of {money:10:99} processed, allow 5 to 7 working days.",
    "Adult dose is 0.5 mL intramuscular, repeat after {int:4:8} weeks.",
    "GCS 15, glucose {dec:4:12} mmol/L, no focal deficit.",
    "We need {int:2:9} more volunteers for the 10 km charity run.",
    "Your order contains {int:2:6} items and ships in 2 to 3 business days.",
    "Gauge 22 cannula, flush with 10 mL saline every {int:6:12} hours.",
    "The pharmacy closes at 6:30 pm on weekdays and 1 pm on Saturdays.",
    "Thank you for your patience, a nurse will be with you shortly.",
    "Temperature logs for fridges 1 through {int:3:8} are due by noon.",
    "Measles cases rose by {int:10:60} percent compared with last year.",
    "Chapter {int:3:20}, page {int:100:600} covers paediatric dosing.",
]


def fill_none(t):
    def one(m):
        kind, *args = m.group(1).split(":")
        if kind == "int":
            return str(RNG.randint(int(args[0]), int(args[1])))
        if kind == "dec":
            return f"{RNG.uniform(float(args[0]), float(args[1])):.1f}"
        if kind == "pick":
            return RNG.choice(args)
        if kind == "money":
            return f"{RNG.uniform(float(args[0]), float(args[1])):.2f}"
        if kind == "time":
            return f"{RNG.randint(8, 20)}:{RNG.choice(['00', '15', '30', '45'])}"
        if kind == "ver":
            return f"{RNG.randint(1, 9)}.{RNG.randint(0, 20)}.{RNG.randint(0, 30)}"
        if kind == "bp":
            return f"{RNG.randint(95, 170)}/{RNG.randint(55, 100)}"
        if kind == "pct":
            return f"{RNG.randint(20, 99)}%"
        raise ValueError(kind)
    return re.sub(r"\{([a-z][a-z0-9:.]*)\}", one, t)


# ---------------------------------------------------------------------------------------
# Filling

SLOT = re.compile(r"\{([A-Z][A-Z_0-9]*)\}")
PERSON_SLOTS = ("PERSON", "FIRST_NAME", "LAST_NAME", "NAME_FIELD")


class Row:
    """What the slots of one sentence share: the person the first name slot, the e-mail
    and the URL belong to; the country and town that city, state, ZIP and postcode agree
    on."""

    def __init__(self, slots):
        self.persona = None
        self.persona_claimed = False
        self.persona_derived = False
        s = set(slots)
        if s & {"POSTCODE", "NHS", "PHONE_UK"}:
            self.region = "uk"
        elif s & {"SIN", "CA_ADDRESS"}:
            self.region = "ca"
        elif s & {"ZIP", "STATE", "SSN"}:
            self.region = "us"
        else:
            self.region = None
        self.tied_city = bool(s & {"ZIP", "STATE", "POSTCODE"})
        self.place = pick_place(self.region or "us") if self.tied_city else None

    def claim_persona(self):
        if self.persona is None:
            self.persona = Persona()
        if self.persona_claimed:
            return Persona()
        self.persona_claimed = True
        return self.persona

    def derived_persona(self):
        """The sentence's first person for its first e-mail or URL, half the time."""
        if self.persona_derived or RNG.random() < 0.5:
            return None
        self.persona_derived = True
        if self.persona is None:
            self.persona = Persona()
        return self.persona


def fill_slot(slot, row, following):
    """(text outside the span before the value, value, label)."""
    possessive = following.startswith("'")
    if slot == "PERSON":
        pre, name = person(row.claim_persona(), possessive)
        return pre, name, "PERSON"
    if slot == "FIRST_NAME":
        return "", recase(row.claim_persona().first), "PERSON"
    if slot == "LAST_NAME":
        return "", recase(row.claim_persona().last, 0.04), "PERSON"
    if slot == "NAME_FIELD":
        return "", name_field(row.claim_persona()), "PERSON"
    if slot == "PHONE":
        return "", phone(row.region), "PHONE"
    if slot == "PHONE_UK":
        return "", phone_uk(), "PHONE"
    if slot == "EMAIL":
        return "", email(row.derived_persona()), "EMAIL"
    if slot in ("URL", "URL_PORTAL", "URL_SOCIAL"):
        kind = {"URL": "any", "URL_PORTAL": "portal", "URL_SOCIAL": "social"}[slot]
        return "", url(row.derived_persona(), kind), "URL_ID"
    if slot == "DATE":
        return "", date(), "DATE"
    if slot == "DOB":
        return "", dob(), "DATE"
    if slot == "MONTH_YEAR":
        return "", month_year(), "DATE"
    if slot == "LOCATION":
        return "", location(), "LOCATION"
    if slot == "COUNTRY":
        return "", RNG.choice(COUNTRIES), "LOCATION"
    if slot == "CITY":
        return "", (row.place[1] if row.tied_city else city()), "LOCATION"
    if slot == "STATE":
        p = row.place
        return "", (p[2] if following.startswith(" {") and RNG.random() < 0.8 else p[3]), "LOCATION"
    if slot == "ZIP":
        return "", us_zip(row.place), "ZIP"
    if slot == "POSTCODE":
        return "", uk_postcode(row.place[2]), "ZIP"
    if slot == "ADDRESS":
        return "", address(row.region), "ADDRESS"
    if slot == "ADDRESS_LINES":
        return "", address(row.region, lines=True), "ADDRESS"
    if slot == "CA_ADDRESS":
        return "", address("ca"), "ADDRESS"
    if slot == "STREET_ADDRESS":
        return "", street_address(row.place[0] if row.place else (row.region or "us")), "ADDRESS"
    if slot == "SSN":
        return "", ssn(), "NATIONAL_ID"
    if slot == "NHS":
        return "", nhs(), "NATIONAL_ID"
    if slot == "SIN":
        return "", sin(), "NATIONAL_ID"
    if slot == "CREDIT_CARD":
        return "", credit_card(), "FINANCIAL_ID"
    if slot == "VISA":
        return "", visa(), "FINANCIAL_ID"
    if slot == "MASTERCARD":
        return "", mastercard(), "FINANCIAL_ID"
    if slot == "AMEX":
        return "", amex(), "FINANCIAL_ID"
    if slot == "IBAN":
        return "", iban(), "FINANCIAL_ID"
    if slot == "IP":
        return "", ip(), "IP_ADDRESS"
    if slot == "IPV6":
        return "", ipv6(), "IP_ADDRESS"
    if slot == "MRN":
        return "", mrn(), "PATIENT_ID"
    if slot == "AGE":
        return "", age(), "AGE"
    if slot == "CHILD_AGE":
        return "", child_age(), "AGE"
    if slot == "HOSPITAL":
        return "", hospital(), "HOSPITAL"
    raise ValueError(slot)


def fill(template):
    slots = SLOT.findall(template)
    row = Row(slots)
    text, spans = "", []
    pos = 0
    for m in SLOT.finditer(template):
        text += template[pos:m.start()]
        following = template[m.end():]
        pre, value, label = fill_slot(m.group(1), row, following)
        text += pre
        spans.append({"start": len(text), "end": len(text) + len(value), "label": label,
                      "_value": value})
        text += value
        pos = m.end()
    text += template[pos:]
    return text, spans


# ---------------------------------------------------------------------------------------
# Checks on what was written

def luhn_ok(s):
    d = [c for c in s if c.isdigit()]
    return luhn_digit("".join(d[:-1])) == d[-1]


def nhs_ok(s):
    d = [int(c) for c in s if c.isdigit()]
    check = 11 - sum(x * (10 - i) for i, x in enumerate(d[:9])) % 11
    return len(d) == 10 and (0 if check == 11 else check) == d[9]


def iban_ok(s):
    s = s.replace(" ", "")
    ok = int(iban_digits(s[4:] + s[:4])) % 97 == 1
    if s.startswith("FR"):
        bank, branch, account, key = s[4:9], s[9:14], s[14:25], s[25:27]
        ok = ok and (89 * int(bank) + 15 * int(branch) + 3 * int(account) + int(key)) % 97 == 0
    return ok


def check_value(label, v):
    digits = "".join(c for c in v if c.isdigit())
    if label == "FINANCIAL_ID":
        assert iban_ok(v) if v[:2].isalpha() else luhn_ok(v), v
    if label == "NATIONAL_ID":
        assert len(digits) in (9, 10), v
        if len(digits) == 10:
            assert nhs_ok(v), v
        else:
            area = int(digits[:3])
            assert luhn_ok(v) or (0 < area < 900 and area != 666), v
    if label == "PHONE" and v.startswith("(") and digits[:1] != "1":
        assert digits[0] in "23456789" and digits[3] in "23456789", v


def main():
    families = list(TEMPLATES)
    pool = [(fam, t) for fam in families for t in TEMPLATES[fam]]
    n_pii = N_ROWS - N_NONE
    per, extra = divmod(n_pii, len(pool))
    plan = pool * per + RNG.sample(pool, extra)
    plan += [("none", t) for t in NONE_TEMPLATES] + \
        [("none", t) for t in RNG.sample(NONE_TEMPLATES, N_NONE - len(NONE_TEMPLATES))]
    RNG.shuffle(plan)

    rows = []
    for i, (family, template) in enumerate(plan, 1):
        if family == "none":
            text, spans = fill_none(template), []
        else:
            text, spans = fill(template)
        for s in spans:
            assert text[s["start"]:s["end"]] == s.pop("_value"), (text, s)
            check_value(s["label"], text[s["start"]:s["end"]])
        for a, b in zip(spans, spans[1:]):
            assert a["end"] <= b["start"], text
        assert "{" not in text and "}" not in text, text
        rows.append({
            "id": f"pii-en-{i:04d}",
            "text": text,
            "lang": "en",
            "spans": spans,
            "family": family,
            "source": "vigie-synthetic",
        })
    assert len(rows) == N_ROWS and sum(not r["spans"] for r in rows) == N_NONE
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))

    labels, fams = {}, {}
    for r in rows:
        fams[r["family"]] = fams.get(r["family"], 0) + 1
        for s in r["spans"]:
            labels[s["label"]] = labels.get(s["label"], 0) + 1
    print(f"{len(rows)} rows, {sum(labels.values())} spans, "
          f"{len(pool)} templates with slots, {len(NONE_TEMPLATES)} without", file=sys.stderr)
    for k in sorted(labels, key=lambda k: -labels[k]):
        print(f"  {k:13} {labels[k]}", file=sys.stderr)
    print("families: " + ", ".join(f"{k} {v}" for k, v in sorted(fams.items())), file=sys.stderr)
    for r in random.Random(1).sample(rows, 10):
        print(json.dumps({"text": r["text"], "spans": [(r["text"][s["start"]:s["end"]], s["label"])
                                                        for s in r["spans"]]},
                         ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
