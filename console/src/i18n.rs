//! The console in French and English. Pages are written with their English text as the
//! key (`tr("Review queue")`); the French catalogue below maps each to its translation.
//!
//! The language of a request is the person's own choice (the `vigie_lang` cookie, set by
//! the FR / EN links in the header), else the browser's `Accept-Language`, else English.
//! A middleware runs each request inside [`scope`], so the pages and messages rendered
//! for it find the language with [`current`] without passing it everywhere.
//! A key asked for in French that the catalogue lacks is recorded ([`missing`]): the
//! console's test renders every page in French and requires none.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Mutex, OnceLock};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English.
    En,
    /// French.
    Fr,
}

/// The cookie holding a person's language choice.
pub const LANG_COOKIE: &str = "vigie_lang";

tokio::task_local! {
    static LOCALE: Locale;
}

/// The language of the request being handled (English outside a request).
pub fn current() -> Locale {
    LOCALE.try_with(|l| *l).unwrap_or(Locale::En)
}

/// Runs `f` with `locale` as the current language.
pub async fn scope<F: Future>(locale: Locale, f: F) -> F::Output {
    LOCALE.scope(locale, f).await
}

/// `en` in the current language.
pub fn tr(en: &'static str) -> &'static str {
    current().t(en)
}

/// A message built at run time (an error's text): translated when the catalogue has it,
/// as it is otherwise.
pub fn tr_dynamic(en: &str) -> String {
    match current() {
        Locale::En => en.to_string(),
        Locale::Fr => french()
            .get(en)
            .map_or_else(|| en.to_string(), |s| s.to_string()),
    }
}

/// A number with `decimals` decimals, with the current language's decimal separator.
pub fn number(value: f32, decimals: usize) -> String {
    let s = format!("{value:.decimals$}");
    match current() {
        Locale::En => s,
        Locale::Fr => s.replace('.', ","),
    }
}

fn missing_keys() -> &'static Mutex<BTreeSet<String>> {
    static MISSING: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    MISSING.get_or_init(Default::default)
}

/// Keys asked for in French that have no translation, since the process started.
pub fn missing() -> Vec<String> {
    missing_keys()
        .lock()
        .map(|m| m.iter().cloned().collect())
        .unwrap_or_default()
}

fn french() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| FRENCH.iter().copied().collect())
}

impl Locale {
    /// `en` or `fr`.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
        }
    }

    /// From `en`/`fr` (and regional forms: `fr-CA`, `en_GB`).
    pub fn parse(tag: &str) -> Option<Locale> {
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Locale::Fr),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// The preferred of French and English in an `Accept-Language` header (by `q`, then
    /// order); `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(f32, Locale)> = None;
        for part in header.split(',') {
            let mut fields = part.split(';');
            let Some(locale) = fields.next().and_then(Locale::parse) else {
                continue;
            };
            let q = fields
                .filter_map(|f| f.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, l)| l)
    }

    /// `en` in this language.
    pub fn t(self, en: &'static str) -> &'static str {
        match self {
            Locale::En => en,
            Locale::Fr => match french().get(en) {
                Some(fr) => fr,
                None => {
                    if let Ok(mut m) = missing_keys().lock() {
                        m.insert(en.to_string());
                    }
                    en
                }
            },
        }
    }
}

/// English → French. Kept in the order the pages use them.
pub const FRENCH: &[(&str, &str)] = &[
    // Layout and sign-in.
    ("Review queue", "File de revue"),
    ("Rumour tracker", "Suivi des rumeurs"),
    ("Audit log", "Journal d'audit"),
    ("Sign out", "Se déconnecter"),
    ("Sign in", "Connexion"),
    ("User name", "Nom d'utilisateur"),
    ("Password", "Mot de passe"),
    ("Back", "Retour"),
    ("Language", "Langue"),
    ("Français", "Français"),
    ("English", "English"),
    ("Sign in from the console's own page.", "Connectez-vous depuis la page de la console."),
    ("Too many sign-ins at once; try again in a moment.", "Trop de connexions en même temps ; réessayez dans un instant."),
    ("Unknown user or wrong password.", "Utilisateur inconnu ou mot de passe erroné."),
    ("Too many failed sign-ins. Try again in {} seconds.", "Trop d'échecs de connexion. Réessayez dans {} secondes."),
    ("This account is locked after repeated failed sign-ins. An administrator can unlock it (vigie console unlock-user).", "Ce compte est verrouillé après des échecs de connexion répétés. Un administrateur peut le déverrouiller (vigie console unlock-user)."),
    // Errors.
    ("Error", "Erreur"),
    ("Something went wrong; the error is in the server log.", "Une erreur s'est produite ; elle est consignée dans le journal du serveur."),
    ("Cannot do that", "Action impossible"),
    ("Not allowed", "Non autorisé"),
    ("{what} is not open to the {role} role", "{what} : non ouvert au rôle {role}"),
    ("Form expired", "Formulaire expiré"),
    ("This form is stale (CSRF check failed); reload the page and try again.", "Ce formulaire a expiré (contrôle CSRF) ; rechargez la page et réessayez."),
    ("No item matches these filters.", "Aucun élément ne correspond à ces filtres."),
    ("a reason is required", "un motif est obligatoire"),
    ("a rumour needs a known claim or the text of a new one", "une rumeur demande une allégation connue ou le texte d'une nouvelle"),
    ("not found", "introuvable"),
    ("someone else is reviewing this item", "quelqu'un d'autre examine cet élément"),
    ("claim the item before deciding", "prenez l'élément avant de décider"),
    ("this item is already decided", "cet élément est déjà décidé"),
    // Queue.
    ("all", "toutes"),
    ("Queue", "File"),
    ("Filter", "Filtrer"),
    ("Shortcut: n", "Raccourci : n"),
    ("Claim next item (n)", "Prendre l'élément suivant (n)"),
    ("Export CSV", "Exporter en CSV"),
    ("Nothing to review.", "Rien à examiner."),
    ("Priority", "Priorité"),
    ("Age", "Âge"),
    ("Lang", "Langue"),
    ("Risk", "Risque"),
    ("Post (redacted)", "Message (caviardé)"),
    ("Action", "Action"),
    ("with", "chez"),
    ("Claim", "Prendre"),
    ("high", "haute"),
    ("medium", "moyenne"),
    ("low", "basse"),
    ("none", "aucune"),
    ("min", "min"),
    ("h", "h"),
    ("d", "j"),
    // Item.
    ("Item", "Élément"),
    ("confidence", "confiance"),
    ("Channel", "Canal"),
    ("Country", "Pays"),
    ("priority", "priorité"),
    ("Posted", "Publié"),
    ("Why it is here", "Pourquoi il est ici"),
    ("misinformation", "désinformation"),
    ("privacy", "vie privée"),
    ("Risk score", "Score de risque"),
    ("calibrated probability", "probabilité calibrée"),
    ("classifier output", "sortie du classifieur"),
    ("model", "modèle"),
    ("Decision", "Décision"),
    ("on", "sur"),
    ("health claim", "allégation de santé"),
    ("stance", "position"),
    ("Restates known false claims:", "Reprend des allégations fausses connues :"),
    ("Not scored for risk.", "Risque non évalué."),
    ("No identifiers were redacted.", "Aucun identifiant caviardé."),
    ("Redacted:", "Caviardé :"),
    ("Rules:", "Règles :"),
    ("Part of rumour", "Fait partie de la rumeur"),
    ("posts", "messages"),
    ("Decided:", "Décidé :"),
    ("by", "par"),
    ("Decision (keys: a r e m f; Ctrl+Enter submits)", "Décision (touches : a r e m f ; Ctrl+Entrée valide)"),
    ("Approve", "Approuver"),
    ("Remove", "Retirer"),
    ("Escalate", "Transmettre"),
    ("Mark as rumour", "Marquer comme rumeur"),
    ("False positive", "Faux positif"),
    ("Reason (required)", "Motif (obligatoire)"),
    ("Why? Other moderators and the audit log will read this.", "Pourquoi ? Les autres modérateurs et le journal d'audit le liront."),
    ("For a rumour: the known claim it repeats", "Pour une rumeur : l'allégation connue qu'elle reprend"),
    ("Known claim", "Allégation connue"),
    ("— new claim —", "— nouvelle allégation —"),
    ("New claim", "Nouvelle allégation"),
    ("…or state the new claim in a sentence", "…ou énoncez la nouvelle allégation en une phrase"),
    ("Record decision", "Enregistrer la décision"),
    ("Give back to the queue", "Remettre dans la file"),
    ("Being reviewed by", "En cours d'examen par"),
    ("Claim this item", "Prendre cet élément"),
    // Tracker.
    ("Flagged posts per day", "Messages signalés par jour"),
    ("privacy only", "vie privée seulement"),
    ("Rumours", "Rumeurs"),
    ("No posts flagged for misinformation yet.", "Aucun message signalé pour désinformation pour l'instant."),
    ("Rumour", "Rumeur"),
    ("Posts", "Messages"),
    ("Confirmed", "Confirmés"),
    ("Languages", "Langues"),
    ("Countries", "Pays"),
    ("Channels", "Canaux"),
    ("Last 30 days", "30 derniers jours"),
    ("First / last seen", "Vue en premier / en dernier"),
    ("Status", "Statut"),
    ("known claim", "allégation connue"),
    ("Status of rumour", "Statut de la rumeur"),
    ("Set", "Appliquer"),
    ("new", "nouvelle"),
    ("monitoring", "sous surveillance"),
    ("debunked", "démentie"),
    ("responded", "réponse publiée"),
    ("posts per day:", "messages par jour :"),
    ("No data yet.", "Pas encore de données."),
    ("flagged posts per day", "messages signalés par jour"),
    ("per day", "par jour"),
    // Alerts.
    ("Alerts", "Alertes"),
    ("Rules", "Règles"),
    ("window", "fenêtre"),
    ("No alerts in the last 7 days.", "Aucune alerte ces 7 derniers jours."),
    ("Rule", "Règle"),
    ("Recent posts", "Messages récents"),
    ("Velocity", "Vélocité"),
    ("Questions", "Questions"),
    ("Delivery", "Envoi"),
    ("sent", "envoyée"),
    ("shown here only", "affichée ici seulement"),
    ("retrying", "nouvel essai"),
    ("pending", "en attente"),
    // Weekly report.
    ("Weekly rumour report", "Rapport hebdomadaire des rumeurs"),
    ("Previous week", "Semaine précédente"),
    ("No rumour had posts this week.", "Aucune rumeur n'a eu de messages cette semaine."),
    ("Posts this week", "Messages cette semaine"),
    ("previous week", "semaine précédente"),
    ("Rumour signals", "Signaux de rumeur"),
    ("Fact-check", "Vérification des faits"),
    ("Trend", "Tendance"),
    ("Suggested response", "Réponse suggérée"),
    ("misleading", "trompeur"),
    ("false", "faux"),
    ("Messages about a health rumour are circulating. We are checking it with the health authorities. Until then, please share only information from official sources.", "Des messages font circuler une rumeur sur la santé. Nous la vérifions auprès des autorités sanitaires. D'ici là, merci de ne partager que des informations de sources officielles."),
    ("Some messages say: “{claim}”. This is {verdict}.", "Certains messages affirment : « {claim} ». C'est {verdict}."),
    ("Check with official sources before sharing.", "Vérifiez auprès des sources officielles avant de partager."),
    ("Read the fact-check: {url}", "Lire la vérification : {url}"),
    ("end must be a date (YYYY-MM-DD)", "end doit être une date (AAAA-MM-JJ)"),
    // Roles.
    ("moderator", "modérateur"),
    ("staff", "équipe programme"),
    ("admin", "administrateur"),
    // Audit.
    ("Append-only: every sign-in, claim, decision and status change.", "En ajout seul : chaque connexion, prise d'élément, décision et changement de statut."),
    ("When (UTC)", "Quand (UTC)"),
    ("Who", "Qui"),
    ("What", "Quoi"),
    ("Target", "Cible"),
    ("Why", "Pourquoi"),
    ("Detail", "Détail"),
    // CSV headers (column names stay one word).
    ("id", "id"),
    ("queue", "file"),
    ("lang", "langue"),
    ("risk_score", "score_risque"),
    ("channel", "canal"),
    ("country", "pays"),
    ("seen_at", "vu_le"),
    ("locked_by", "pris_par"),
    ("redacted_text", "texte_caviardé"),
    ("title", "titre"),
    ("status", "statut"),
    ("claim_id", "allégation"),
    ("confirmed", "confirmés"),
    ("languages", "langues"),
    ("countries", "pays_liste"),
    ("channels", "canaux"),
    ("first_seen", "vu_en_premier"),
    ("last_seen", "vu_en_dernier"),
    ("day", "jour"),
    ("privacy_only", "vie_privée_seulement"),
    ("at", "quand"),
    ("actor", "acteur"),
    ("action", "action"),
    ("target", "cible"),
    ("reason", "motif"),
    ("detail", "détail"),
    ("verdict", "verdict"),
    ("fact_check_url", "lien_vérification"),
    ("posts_this_week", "messages_semaine"),
    ("posts_previous_week", "messages_semaine_précédente"),
    ("questions", "questions"),
    ("rumour_signals", "signaux_rumeur"),
    ("posts_per_day", "messages_par_jour"),
    ("suggested_response", "réponse_suggérée"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(
            Locale::from_accept_language("fr-CA,fr;q=0.9,en;q=0.8"),
            Some(Locale::Fr)
        );
        assert_eq!(
            Locale::from_accept_language("de-DE,de;q=0.9,en;q=0.5,fr;q=0.4"),
            Some(Locale::En)
        );
        assert_eq!(
            Locale::from_accept_language("en;q=0.3, fr_BE;q=0.7"),
            Some(Locale::Fr)
        );
        assert_eq!(Locale::from_accept_language("de, es"), None);
        assert_eq!(Locale::from_accept_language("fr;q=0"), None);
    }

    #[test]
    fn the_catalogue_has_no_duplicate_keys() {
        let mut seen = BTreeSet::new();
        for (en, fr) in FRENCH {
            assert!(seen.insert(en), "{en:?} twice");
            assert_eq!(en.matches("{}").count(), fr.matches("{}").count(), "{en:?}");
        }
    }

    #[tokio::test]
    async fn the_scope_sets_the_language_and_numbers_follow_it() {
        assert_eq!(tr("Review queue"), "Review queue");
        let (t, n) = scope(Locale::Fr, async { (tr("Review queue"), number(0.875, 2)) }).await;
        assert_eq!((t, n.as_str()), ("File de revue", "0,88"));
        assert_eq!(number(0.875, 2), "0.88");
    }
}
