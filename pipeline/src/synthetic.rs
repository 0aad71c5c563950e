//! Synthetic health-worker posts and notes for the token tagger: the project's sentence
//! frames (`datasets/redaction/tagger_frames.jsonl`) with their slots filled from the
//! shared gazetteers (names of many origins, communes, streets, hospitals) and with dates
//! written in every common form, then written the ways people write (lower case, no
//! accents, names in capitals).

use std::path::Path;

use vigie_models::rng::XorShift;

/// One frame: a sentence with slots such as `{FIRST}` or `{CITY}`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Frame {
    /// fr or en.
    pub lang: String,
    /// post, chat, note, or none (a frame with no slot, full of words that are no one's
    /// identifier).
    pub kind: String,
    /// The sentence.
    pub frame: String,
}

/// Reads the frames file.
pub fn read_frames(path: &Path) -> anyhow::Result<Vec<Frame>> {
    Ok(vigie_eval::datasets::jsonl_rows(path)?)
}

/// What slots are filled with.
pub struct Fills {
    first: Vec<Vec<String>>,
    last: Vec<Vec<String>>,
    cities: Vec<String>,
    streets_fr: Vec<String>,
    hospitals: Vec<String>,
}

/// Tagger label index of each slot (see `tagger_training::LABELS`).
fn slot_label(slot: &str) -> Option<usize> {
    match slot {
        "FIRST" | "LAST" | "FULL" => Some(0),
        "CITY" | "STREET" => Some(1),
        "HOSPITAL" => Some(2),
        "DATE" => Some(3),
        _ => None,
    }
}

/// "CENTRE HOSPITALIER DE BELLEY" -> "Centre Hospitalier de Belley".
fn title_case(text: &str) -> String {
    const SMALL: &[&str] = &[
        "de", "du", "des", "la", "le", "les", "et", "sur", "en", "of", "the", "and",
    ];
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            let lower = w.to_lowercase();
            if i > 0 && SMALL.contains(&lower.as_str()) {
                return lower;
            }
            let mut out = String::new();
            let mut start = true;
            for c in lower.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = matches!(c, '-' | '\'' | '’');
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rows of a TSV file (header skipped), split on tabs.
fn tsv(path: &Path) -> anyhow::Result<Vec<Vec<String>>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

impl Fills {
    /// Reads the name, place and hospital lists of a gazetteers directory.
    pub fn load(dir: &Path) -> anyhow::Result<Fills> {
        let seed = tsv(&dir.join("seed_names_by_locale.tsv"))?;
        let seed_of = |kind: &str| -> Vec<String> {
            seed.iter()
                .filter(|r| r.len() >= 4 && r[1] == kind)
                .map(|r| r[3].clone())
                .collect()
        };
        let top = |file: &str, col: usize, n: usize| -> anyhow::Result<Vec<String>> {
            Ok(tsv(&dir.join(file))?
                .into_iter()
                .filter(|r| r.len() > col && !r[col].starts_with("AUTRES"))
                .take(n)
                .map(|r| title_case(&r[col]))
                .collect())
        };
        let first = vec![
            seed_of("first"),
            top("fr_first_names_insee.tsv", 0, 3000)?,
            top("us_first_names_ssa.tsv", 0, 3000)?,
            top("uk_first_names_ons.tsv", 0, 1500)?,
        ];
        let last = vec![
            seed_of("last"),
            top("fr_surnames_insee.tsv", 0, 6000)?,
            top("us_surnames_census2010.tsv", 0, 6000)?,
        ];
        let communes = tsv(&dir.join("fr_communes.tsv"))?;
        let mut cities: Vec<String> = communes
            .iter()
            .filter(|r| r.len() > 2)
            .map(|r| r[2].clone())
            .collect();
        let hospitals_rows = tsv(&dir.join("hospitals_eu.tsv"))?;
        cities.extend(
            hospitals_rows
                .iter()
                .filter(|r| r.len() > 6 && r[0] != "FR" && !r[6].is_empty())
                .map(|r| title_case(&r[6])),
        );
        let streets_fr = hospitals_rows
            .iter()
            .filter(|r| r.len() > 4 && r[0] == "FR" && r[4].split(' ').count() >= 2)
            .map(|r| lower_first_word(&title_case(&r[4])))
            .collect();
        let hospitals = hospitals_rows
            .iter()
            .filter(|r| r.len() > 2 && !r[2].is_empty())
            .map(|r| title_case(&r[2]))
            .collect();
        Ok(Fills {
            first,
            last,
            cities,
            streets_fr,
            hospitals,
        })
    }

    fn pick<'a>(&self, list: &'a [String], rng: &mut XorShift) -> &'a str {
        if list.is_empty() {
            return "Awa";
        }
        &list[rng.below(list.len() as u64) as usize]
    }

    fn pick_of<'a>(&self, lists: &'a [Vec<String>], rng: &mut XorShift) -> &'a str {
        let list = &lists[rng.below(lists.len() as u64) as usize];
        self.pick(list, rng)
    }

    fn slot(&self, slot: &str, lang: &str, rng: &mut XorShift) -> String {
        match slot {
            "FIRST" => self.pick_of(&self.first, rng).to_string(),
            "LAST" => self.pick_of(&self.last, rng).to_string(),
            "FULL" => format!(
                "{} {}",
                self.pick_of(&self.first, rng),
                self.pick_of(&self.last, rng)
            ),
            "CITY" => self.pick(&self.cities, rng).to_string(),
            "STREET" => {
                let n = 1 + rng.below(180);
                if lang == "fr" && !self.streets_fr.is_empty() {
                    format!("{n} {}", self.pick(&self.streets_fr, rng))
                } else {
                    const KINDS: &[&str] =
                        &["Street", "Road", "Avenue", "Lane", "Drive", "Close", "Way"];
                    let kind = KINDS[rng.below(KINDS.len() as u64) as usize];
                    format!("{n} {} {kind}", self.pick_of(&self.last, rng))
                }
            }
            "HOSPITAL" => self.pick(&self.hospitals, rng).to_string(),
            "DATE" => date(lang, rng),
            other => other.to_string(),
        }
    }

    /// A frame filled: the text and its spans (code points; label index).
    pub fn fill(&self, frame: &Frame, rng: &mut XorShift) -> (String, Vec<(usize, usize, usize)>) {
        let mut text = String::new();
        let mut len = 0usize;
        let mut spans = Vec::new();
        let mut rest = frame.frame.as_str();
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            let before = &rest[..open];
            text.push_str(before);
            len += before.chars().count();
            let slot = &rest[open + 1..close];
            match slot_label(slot) {
                Some(label) => {
                    let value = self.slot(slot, &frame.lang, rng);
                    let n = value.chars().count();
                    spans.push((len, len + n, label));
                    text.push_str(&value);
                    len += n;
                }
                None => {
                    let raw = &rest[open..=close];
                    text.push_str(raw);
                    len += raw.chars().count();
                }
            }
            rest = &rest[close + 1..];
        }
        text.push_str(rest);
        // Written as people write: some posts all lower case, some without accents, some
        // with names in capitals (notes). Each change keeps every character in place.
        let roll = rng.below(100);
        let mut chars: Vec<char> = text.chars().collect();
        if roll < 15 {
            chars
                .iter_mut()
                .for_each(|c| *c = one_char(c.to_lowercase(), *c));
        } else if roll < 27 {
            chars.iter_mut().for_each(|c| *c = strip_accent(*c));
        } else if roll < 35 {
            for &(s, e, l) in &spans {
                if l == 0 {
                    chars[s..e]
                        .iter_mut()
                        .for_each(|c| *c = one_char(c.to_uppercase(), *c));
                }
            }
        }
        (chars.into_iter().collect(), spans)
    }
}

fn lower_first_word(s: &str) -> String {
    let mut words = s.splitn(2, ' ');
    let first = words.next().unwrap_or("").to_lowercase();
    match words.next() {
        Some(rest) => format!("{first} {rest}"),
        None => first,
    }
}

/// The case-changed character when it is one character (so offsets hold), else `c`.
fn one_char(mut changed: impl Iterator<Item = char>, c: char) -> char {
    match (changed.next(), changed.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

fn strip_accent(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' | 'á' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' | 'í' => 'i',
        'ô' | 'ö' | 'ó' => 'o',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'ç' => 'c',
        'É' | 'È' | 'Ê' => 'E',
        'À' | 'Â' => 'A',
        'Ç' => 'C',
        'Ô' => 'O',
        'Î' => 'I',
        other => other,
    }
}

/// A date written in one of the forms people use in `lang`.
fn date(lang: &str, rng: &mut XorShift) -> String {
    const MOIS: &[&str] = &[
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const MONTHS: &[&str] = &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const ORDINALS: &[&str] = &[
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth",
    ];
    let day = 1 + rng.below(28) as usize;
    let month = rng.below(12) as usize;
    let year = 1935 + rng.below(90);
    let suffix = match day {
        1 | 21 => "st",
        2 | 22 => "nd",
        3 | 23 => "rd",
        _ => "th",
    };
    let form = rng.below(8);
    if lang == "fr" {
        match form {
            0 => format!("{day} {}", MOIS[month]),
            1 => format!("{day} {} {year}", MOIS[month]),
            2 => format!("{day:02}/{:02}/{year}", month + 1),
            3 => format!("{day:02}/{:02}", month + 1),
            4 => format!("{year}-{:02}-{day:02}", month + 1),
            5 => format!("{}er {}", 1, MOIS[month]),
            6 => format!("{day}/{}/{}", month + 1, year % 100),
            _ => format!(
                "{day} {}. {year}",
                MOIS[month].chars().take(4).collect::<String>()
            ),
        }
    } else {
        match form {
            0 => format!("{} {day}{suffix}", MONTHS[month]),
            1 => format!("{day} {} {year}", MONTHS[month]),
            2 => format!("{:02}/{day:02}/{year}", month + 1),
            3 => format!("{}/{day}", month + 1),
            4 => format!("{year}-{:02}-{day:02}", month + 1),
            5 => format!("the {} of {}", ORDINALS[(day - 1) % 12], MONTHS[month]),
            6 => format!("{} {day}, {year}", MONTHS[month]),
            _ => format!("{} {day}", &MONTHS[month][..3]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_title_cased_with_small_words_kept_low() {
        assert_eq!(
            title_case("CENTRE HOSPITALIER DE BELLEY"),
            "Centre Hospitalier de Belley"
        );
        assert_eq!(title_case("JEAN-PIERRE"), "Jean-Pierre");
    }

    #[test]
    fn filled_frames_keep_their_spans_on_the_values() {
        let fills = Fills {
            first: vec![vec!["Aminata".into()]],
            last: vec![vec!["Okonkwo".into()]],
            cities: vec!["Thiès".into()],
            streets_fr: vec!["rue des Lilas".into()],
            hospitals: vec!["Hôpital Principal".into()],
        };
        let frame = Frame {
            lang: "fr".into(),
            kind: "post".into(),
            frame: "{FIRST} {LAST} est rentrée à {CITY} ({HOSPITAL}) le {DATE} {x}".into(),
        };
        let mut rng = XorShift::new(3);
        for _ in 0..50 {
            let (text, spans) = fills.fill(&frame, &mut rng);
            let chars: Vec<char> = text.chars().collect();
            let values: Vec<String> = spans
                .iter()
                .map(|&(s, e, _)| chars[s..e].iter().collect::<String>().to_lowercase())
                .collect();
            assert_eq!(values[0], "aminata", "{text}");
            assert_eq!(values[1], "okonkwo", "{text}");
            assert!(values[2] == "thiès" || values[2] == "thies", "{text}");
            assert_eq!(spans.len(), 5);
            assert!(text.ends_with("{x}"), "{text}");
        }
    }
}
