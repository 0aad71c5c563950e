//! Checksums that separate real identifiers from look-alike digit runs.
//!
//! Each validator receives the matched text as written (spaces, dots and dashes
//! included) and judges only its digits and letters.

use serde::Deserialize;

/// A named check a rule can ask for in its TOML entry (`validator = "nir"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// French social-security number (NIR): 13 characters + 2-digit key, key = 97 - (n mod 97).
    /// Corsican départements 2A and 2B count as 19 and 18 for the key.
    Nir,
    /// UK NHS number: 10 digits, weights 10..2, check digit = 11 - (sum mod 11); 10 is invalid.
    Nhs,
    /// Luhn mod-10 (payment cards, Canadian SIN, Ontario health numbers).
    Luhn,
    /// A payment card: Luhn, and a first digits as the networks issue them (3: Amex, Diners,
    /// JCB; 4: Visa; 5: Mastercard, Maestro; 6: Discover, UnionPay; 2221-2720: Mastercard).
    /// A spaced French NIR starts with 1 or 2 and is no card.
    PaymentCard,
    /// IBAN: move the first four characters to the end, letters to numbers, mod 97 == 1.
    Iban,
    /// A month/day pair not written as a clinical rating: N/10 with N up to 10 is a pain
    /// score, N/5 with N up to 5 a muscle strength or a ventilator setting (PS/PEEP 5/5).
    NotARating,
    /// A capitalised word that is no weekday or month (English or French): places and names
    /// found after a preposition are not *Thursday* or *Janvier*.
    NotATimeWord,
    /// A place that is no care unit, department or generic setting (ICU, ED, CT, floor,
    /// rehab, home, réa, urgences…), nor a person or team by role (PT, RESIDENT, Nsurg,
    /// STROKE TEAM, DERM SERVICE, SKIN CARE NURSE): a patient sent to or seen by one of
    /// those is not located by it.
    NotACareUnit,
    /// An @handle shaped as people make them (a digit or an underscore, mixed case, or six
    /// lower-case letters and more: @aminata_k, @DrMensah, @milkshake11s, @mashable), not
    /// the "@" that clinical notes write for "at" (IVF @KVO, tf @goal, stool @nd).
    HandleShape,
    /// Initials that name a hospital (GH, MGH, BWH), not a condition, a hormone, a drug
    /// or a part of the history that clinical notes also write with a final H (SAH, ICH,
    /// LVH, TSH, NPH, LMWH, PMH…), nor a generic setting (NH, nursing home; MH, mental
    /// health) or pH.
    HospitalInitials,
    /// The town an institution is named after, not a word that names the institution's
    /// own kind or chamber (*Court of Appeal*, *Cour de Cassation*, *Council of
    /// Ministers*, *University of Technology*), nor a determiner (*The university
    /// hospital*), nor a weekday or a month.
    NotAnInstitutionPart,
    /// A hospital's own name after the care unit it runs (*service d'hématologie de
    /// Necker*, *the ICU at Mercy*): not a title (the service *du Dr Diallo* is a person's),
    /// not a specialty or setting written with a capital (*Service de Cardiologie*,
    /// *Hôpital de Jour*), nor a weekday, a month or an institution's own kind.
    HospitalSiteName,
}

impl Validator {
    /// Does `matched` (the text as written) pass the check?
    pub fn check(self, matched: &str) -> bool {
        match self {
            Validator::Nir => nir_is_valid(matched),
            Validator::Nhs => nhs_is_valid(matched),
            Validator::Luhn => luhn_is_valid(matched),
            Validator::PaymentCard => payment_card_is_valid(matched),
            Validator::Iban => iban_is_valid(matched),
            Validator::NotARating => !is_rating(matched),
            Validator::NotATimeWord => !is_time_word(matched),
            Validator::NotACareUnit => !is_care_unit(matched),
            Validator::HandleShape => is_handle_shaped(matched),
            Validator::NotAnInstitutionPart => {
                let first = first_word_folded(matched);
                !TIME_WORDS.contains(&first.as_str())
                    && !INSTITUTION_PARTS.contains(&first.as_str())
            }
            Validator::HospitalSiteName => is_site_name(matched),
            Validator::HospitalInitials => {
                !CLINICAL_H_ACRONYMS.contains(&matched.trim()) && !is_care_unit(matched)
            }
        }
    }
}

fn alnum_upper(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn digits(s: &str) -> Vec<u32> {
    s.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Remainder of a long decimal number given digit by digit, without overflow.
fn mod_97(digits: impl IntoIterator<Item = u32>) -> u32 {
    digits.into_iter().fold(0, |acc, d| (acc * 10 + d) % 97)
}

/// A French NIR whose key is right: see [`Validator::Nir`].
pub fn nir_is_valid(s: &str) -> bool {
    let chars = alnum_upper(s);
    if chars.len() != 15 {
        return false;
    }
    let (body, key) = chars.split_at(13);
    // Corsica: "2A" and "2B" replace the département digits; the key is computed on the
    // number with 2A -> 19 and 2B -> 18 (INSEE's rule).
    let mut body_digits = Vec::with_capacity(13);
    for (i, c) in body.iter().enumerate() {
        match (i, c) {
            (6, 'A') if body[5] == '2' => {
                body_digits.pop();
                body_digits.extend([1, 9]);
            }
            (6, 'B') if body[5] == '2' => {
                body_digits.pop();
                body_digits.extend([1, 8]);
            }
            _ => match c.to_digit(10) {
                Some(d) => body_digits.push(d),
                None => return false,
            },
        }
    }
    let Some(key) = key
        .iter()
        .map(|c| c.to_digit(10))
        .collect::<Option<Vec<_>>>()
    else {
        return false;
    };
    let key = key[0] * 10 + key[1];
    key == 97 - mod_97(body_digits)
}

/// A UK NHS number whose check digit is right: see [`Validator::Nhs`].
pub fn nhs_is_valid(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 10 || s.chars().filter(|c| c.is_ascii_alphabetic()).count() > 0 {
        return false;
    }
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    let check = 11 - (sum % 11);
    match check {
        11 => d[9] == 0,
        10 => false,
        c => d[9] == c,
    }
}

/// Two digits or more passing the Luhn check: see [`Validator::Luhn`].
pub fn luhn_is_valid(s: &str) -> bool {
    let d = digits(s);
    if d.len() < 2 {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// "3/10", "5 / 5": a score out of 10 or out of 5.
pub fn is_rating(s: &str) -> bool {
    let Some((a, b)) = s.split_once('/') else {
        return false;
    };
    match (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
        (Ok(a), Ok(10)) => a <= 10,
        (Ok(a), Ok(5)) => a <= 5,
        _ => false,
    }
}

/// 13 to 19 digits that could be a payment card's: see [`Validator::PaymentCard`].
pub fn payment_card_is_valid(s: &str) -> bool {
    let d = digits(s);
    let prefix = d.iter().take(4).fold(0, |n, &x| n * 10 + x);
    let network = match d.first() {
        Some(3..=6) => true,
        Some(2) => d.len() >= 4 && (2221..=2720).contains(&prefix),
        _ => false,
    };
    network && (13..=19).contains(&d.len()) && luhn_is_valid(s)
}

/// An IBAN whose check digits are right: see [`Validator::Iban`].
pub fn iban_is_valid(s: &str) -> bool {
    let chars = alnum_upper(s);
    if !(15..=34).contains(&chars.len()) || !chars[..2].iter().all(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    let rearranged = chars[4..].iter().chain(&chars[..4]);
    let mut expanded = Vec::with_capacity(chars.len() * 2);
    for c in rearranged {
        match c.to_digit(36) {
            Some(v) if v >= 10 => expanded.extend([v / 10, v % 10]),
            Some(v) => expanded.push(v),
            None => return false,
        }
    }
    mod_97(expanded) == 1
}

/// Words that follow an institution's noun as part of its own name, English and French,
/// lower case without accents.
const INSTITUTION_PARTS: &[&str] = &[
    "appeal",
    "appeals",
    "appel",
    "cassation",
    "justice",
    "assizes",
    "assises",
    "instance",
    "first",
    "state",
    "etat",
    "surete",
    "securite",
    "security",
    "ministers",
    "ministres",
    "ministre",
    "directors",
    "administration",
    "governors",
    "trustees",
    "elders",
    "technology",
    "medicine",
    "medecine",
    "law",
    "droit",
    "arts",
    "sciences",
    "science",
    "human",
    "the",
    "la",
    "le",
    "les",
];

/// Weekdays and months, English and French, lower case without accents.
const TIME_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "samedi",
    "dimanche",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
    "today",
    "tomorrow",
    "tonight",
    "noon",
    "midnight",
    "christmas",
    "easter",
    "noel",
    "paques",
];

/// Whether the first word of `matched` is a weekday, a month or a day word.
/// Care units, departments and settings that locate no one (lower case, no accents).
/// Clinical abbreviations ending in H, written in capitals like hospitals' initials.
const CLINICAL_H_ACRONYMS: &[&str] = &[
    "SAH", "ICH", "IVH", "SDH", "EDH", "IPH", "LVH", "RVH", "BPH", "PPH", "PAH", "IIH", "NPH",
    "LMWH", "UFH", "ADH", "TSH", "FSH", "LH", "PTH", "ACTH", "HGH", "PH", "DH", "SH", "FH", "PMH",
    "PSH", "HH", "NH", "MH", "AH", "VH", "BH", "CH", "RH", "HTH", "DOH", "ETOH", "OH", "OSH",
];

const CARE_UNITS: &[&str] = &[
    "icu",
    "micu",
    "sicu",
    "ccu",
    "cvicu",
    "csru",
    "nicu",
    "picu",
    "pacu",
    "tsicu",
    "ctic",
    "ed",
    "er",
    "ew",
    "or",
    "ct",
    "mri",
    "ir",
    "ekg",
    "ecg",
    "echo",
    "cath",
    "lab",
    "labs",
    "floor",
    "floors",
    "unit",
    "units",
    "ward",
    "wards",
    "room",
    "bed",
    "beds",
    "home",
    "rehab",
    "snf",
    "ltac",
    "osh",
    // "OH", outside hospital, as OSH.
    "oh",
    "hospice",
    "nursing",
    "radiology",
    "pharmacy",
    "dialysis",
    "endoscopy",
    "surgery",
    "oncology",
    "cardiology",
    "neurology",
    "psych",
    "psychiatry",
    "service",
    "services",
    "team",
    "clinic",
    "hospital",
    "hosp",
    "the",
    "a",
    "an",
    "his",
    "her",
    "their",
    "our",
    "this",
    "that",
    "bed",
    "level",
    "levels",
    "stage",
    "grade",
    "pod",
    "bay",
    "station",
    "day",
    "days",
    "cycle",
    "sleep",
    "work",
    "school",
    "church",
    "step",
    "stepdown",
    "tele",
    "telemetry",
    "medicine",
    "med",
    "meds",
    "gi",
    "us",
    "rea",
    "reanimation",
    "urgences",
    "sau",
    "usi",
    "usic",
    "bloc",
    "ssr",
    "ehpad",
    "domicile",
    "maison",
    "chambre",
    "service",
    "soins",
    "scanner",
    "irm",
    "labo",
    "laboratoire",
    "pharmacie",
    "consultation",
    "bb",
    "cardiac",
    "surgical",
    "medical",
    "trauma",
    "burn",
    "neuro",
    "cvu",
];

/// The first word of a match, lower-cased, without the accents French puts on e, u and a.
fn first_word_folded(matched: &str) -> String {
    matched
        .split(|c: char| !c.is_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'é' | 'è' | 'ê' => 'e',
            'û' | 'ù' => 'u',
            'â' | 'à' => 'a',
            other => other,
        })
        .collect()
}

/// People and teams who see a patient, by role or specialty, as notes write them after
/// *seen by* (*seen by PT*, *SEEN BY RESIDENT*, *seen by Nsurg*, *seen by Dr.*): no place.
const CARE_ROLES: &[&str] = &[
    "pt",
    "ot",
    "slp",
    "rt",
    "dr",
    "drs",
    "md",
    "rn",
    "np",
    "pa",
    "resident",
    "residents",
    "attending",
    "fellow",
    "intern",
    "interns",
    "caseworker",
    "social",
    "sw",
    "chaplain",
    "nutrition",
    "nutritionist",
    "dietitian",
    "speech",
    "physical",
    "occupational",
    "derm",
    "dermatology",
    "nsurg",
    "neurosurg",
    "neurosurgery",
    "renal",
    "nephrology",
    "vascular",
    "anesthesia",
    "ortho",
    "orthopedics",
    "heme",
    "onc",
    "hemeonc",
    "id",
    "pulm",
    "pulmonary",
    "ent",
    "uro",
    "urology",
    "gyn",
    "ob",
    "obgyn",
    "skin",
    "wound",
    "stroke",
    "support",
    "palliative",
    "pain",
    "respiratory",
    "infectious",
    "consult",
    "consults",
];

/// Words that make a phrase a team or a person by role (*stroke team*, *derm service*,
/// *skin care nurse*).
const CARE_ROLE_ENDINGS: &[&str] = &[
    "team",
    "teams",
    "service",
    "services",
    "nurse",
    "nurses",
    "consult",
    "consults",
    "department",
    "dept",
    "staff",
    "resident",
    "attending",
    "fellow",
    "manager",
    "worker",
];

fn is_care_unit(matched: &str) -> bool {
    let first = first_word_folded(matched);
    // A capture may run on into the next capitalised words (CASE MANAGER TODAY).
    let role_word = matched
        .split(|c: char| !c.is_alphabetic())
        .any(|w| CARE_ROLE_ENDINGS.contains(&w.to_lowercase().as_str()));
    if CARE_ROLES.contains(&first.as_str()) || role_word {
        return true;
    }
    // Intensive and coronary care units go by many letters (NISICU, TSICU, CCU).
    let unit_acronym = (3..=6).contains(&first.len()) && first.ends_with("cu");
    CARE_UNITS.contains(&first.as_str()) || unit_acronym
}

/// Titles before a person's name, lower case without accents.
const TITLES: &[&str] = &[
    "dr",
    "docteur",
    "doctor",
    "pr",
    "prof",
    "professeur",
    "professor",
    "m",
    "mm",
    "mme",
    "mmes",
    "mlle",
    "madame",
    "monsieur",
    "mademoiselle",
    "mr",
    "mrs",
    "ms",
    "miss",
    "sir",
];

/// Words of care that French writes with a capital in a unit's name (*Service de
/// Réanimation*, *Urgences de Nuit*), and the settings a unit is *of* rather than *at*.
const CARE_WORDS: &[&str] = &[
    "chirurgie",
    "medecine",
    "maladies",
    "soins",
    "urgences",
    "urgence",
    "reanimation",
    "anesthesie",
    "obstetrique",
    "orthopedie",
    "traumatologie",
    "imagerie",
    "reeducation",
    "readaptation",
    "hospitalisation",
    "consultation",
    "consultations",
    "garde",
    "jour",
    "nuit",
    "semaine",
    "suite",
    "suites",
    "sejour",
    "accueil",
    "maternite",
    "pharmacie",
    "dialyse",
    "sante",
    "famille",
    "surgery",
    "medicine",
    "health",
    "care",
    "emergency",
    "intensive",
    "day",
    "night",
    "adultes",
    "adulte",
    "enfants",
    "enfant",
    "pediatrie",
    "psychiatrie",
    "geriatrie",
    "addictologie",
    "orthogenie",
    "neonatalogie",
    "neonatologie",
    // Kinds of hospital: after them comes the town (*CHU d'Angers*), which is a place.
    "chu",
    "chr",
    "chru",
    "ch",
    "gh",
    "ghu",
    "aphp",
    "ap",
    "hopital",
    "hôpital",
    "clinique",
    "centre",
    "hospital",
    "hospitals",
    "institut",
    "institute",
];

/// Whether `matched` can be a hospital's own name (see [`Validator::HospitalSiteName`]).
fn is_site_name(matched: &str) -> bool {
    let first = first_word_folded(matched);
    // Units and specialties go by short capitals (ORL, HGE, SSR, USI); hospitals by
    // longer ones (HEGP).
    let word = matched
        .split(|c: char| !c.is_alphabetic())
        .find(|w| !w.is_empty());
    let short_capitals =
        word.is_some_and(|w| w.chars().count() <= 3 && w.chars().all(char::is_uppercase));
    // Specialties: cardiologie, oncologiques, pédiatrie, gériatrique, radiothérapie.
    let specialty = [
        "logie", "logique", "logiques", "iatrie", "iatrique", "therapie",
    ]
    .iter()
    .any(|end| first.ends_with(end));
    !first.is_empty()
        && !short_capitals
        && !specialty
        && !TITLES.contains(&first.as_str())
        && !CARE_WORDS.contains(&first.as_str())
        && !TIME_WORDS.contains(&first.as_str())
        && !INSTITUTION_PARTS.contains(&first.as_str())
        && !is_care_unit(matched)
}

fn is_handle_shaped(matched: &str) -> bool {
    let name = matched.trim_start_matches('@');
    let marked = name.chars().any(|c| c.is_ascii_digit() || c == '_');
    let upper = name.chars().any(|c| c.is_ascii_uppercase());
    let lower = name.chars().any(|c| c.is_ascii_lowercase());
    marked || (lower && (upper || name.chars().count() >= 6))
}

fn is_time_word(matched: &str) -> bool {
    let first = first_word_folded(matched);
    TIME_WORDS.contains(&first.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a NIR with its correct key, so tests exercise the arithmetic, not a copied value.
    fn with_nir_key(body: &str) -> String {
        let n: Vec<u32> = body
            .replace("2A", "19")
            .replace("2B", "18")
            .chars()
            .filter_map(|c| c.to_digit(10))
            .collect();
        format!("{body}{:02}", 97 - mod_97(n))
    }

    #[test]
    fn ratings_are_scores_out_of_ten_or_five() {
        for rating in ["3/10", "10/10", "0/10", "5/5", "4 / 5", "05/05"] {
            assert!(is_rating(rating), "{rating}");
            assert!(!Validator::NotARating.check(rating), "{rating}");
        }
        for date in ["11/10", "6/5", "8/25", "3/11", "12/05", "5/1", "abc"] {
            assert!(!is_rating(date), "{date}");
        }
    }

    #[test]
    fn nir_key_is_checked() {
        let good = with_nir_key("1850775123456");
        assert!(nir_is_valid(&good));
        let mut bad = good.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(!nir_is_valid(&bad));
        assert!(!nir_is_valid("18507751234"));
    }

    #[test]
    fn nir_accepts_spaces_and_corsica() {
        let good = with_nir_key("2850575123456");
        let spaced = format!(
            "{} {} {} {} {} {} {}",
            &good[0..1],
            &good[1..3],
            &good[3..5],
            &good[5..7],
            &good[7..10],
            &good[10..13],
            &good[13..]
        );
        assert!(nir_is_valid(&spaced));
        let corsica = with_nir_key("18505"); // body too short on purpose
        assert!(!nir_is_valid(&corsica));
        let a = with_nir_key("185052A123456");
        assert!(nir_is_valid(&a), "{a}");
        let b = with_nir_key("185052B123456");
        assert!(nir_is_valid(&b), "{b}");
        // The same digits with the other Corsican letter fail: the key depends on it.
        assert!(!nir_is_valid(&a.replace("2A", "2B")));
    }

    #[test]
    fn nhs_mod_11() {
        assert!(nhs_is_valid("943 476 5919"));
        assert!(nhs_is_valid("9434765919"));
        assert!(!nhs_is_valid("943 476 5918"));
        assert!(!nhs_is_valid("943 476 591"));
    }

    #[test]
    fn payment_cards_open_as_the_networks_issue_them() {
        assert!(payment_card_is_valid("4539 1488 0343 6467"));
        assert!(payment_card_is_valid("2223 0000 4841 0010"));
        // Luhn-valid, but a spaced NIR or a number no network issues.
        assert!(luhn_is_valid("1 8 5 7 4 6 9 1 3 0 8 3 3 7 9"));
        assert!(!payment_card_is_valid("1 8 5 7 4 6 9 1 3 0 8 3 3 7 9"));
        assert!(luhn_is_valid("2 8 0 0 0 0 0 0 0 0 0 0 1 6"));
        assert!(!payment_card_is_valid("2 8 0 0 0 0 0 0 0 0 0 0 1 6"));
    }

    #[test]
    fn care_units_are_no_places_and_hospitals_are() {
        for unit in [
            "ICU", "NISICU", "ED", "Floor", "rehab", "Réa", "urgences", "CT scan",
        ] {
            assert!(!Validator::NotACareUnit.check(unit), "{unit}");
        }
        for place in [
            "GH",
            "Sacred Heart Memorial",
            "St. Agnes",
            "Saint-Joseph",
            "California",
        ] {
            assert!(Validator::NotACareUnit.check(place), "{place}");
        }
    }

    #[test]
    fn hospital_initials_are_not_clinical_abbreviations() {
        for initials in ["GH", "MGH", "BWH", "UCLH"] {
            assert!(Validator::HospitalInitials.check(initials), "{initials}");
        }
        for clinical in [
            "SAH", "ICH", "LVH", "TSH", "NPH", "LMWH", "PMH", "PH", "OSH", "ETOH",
        ] {
            assert!(!Validator::HospitalInitials.check(clinical), "{clinical}");
        }
    }

    #[test]
    fn luhn_and_iban() {
        assert!(luhn_is_valid("4539 1488 0343 6467"));
        assert!(!luhn_is_valid("4539 1488 0343 6468"));
        assert!(luhn_is_valid("046 454 286")); // Canadian SIN example
        assert!(iban_is_valid("FR14 2004 1010 0505 0001 3M02 606"));
        assert!(iban_is_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban_is_valid("GB82 WEST 1234 5698 7654 33"));
    }
}
