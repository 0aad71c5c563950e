use vigie_pipeline::stages::language::{LanguageStage, Lexicon};
fn main() {
    let rows: Vec<serde_json::Value> = std::fs::read_to_string("../shared/datasets/langid/lingua_dev.jsonl").unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let s = LanguageStage::new(Some(Lexicon::load(std::path::Path::new("../shared/gazetteers")).unwrap()));
    let mut conf = std::collections::BTreeMap::new();
    for r in &rows {
        if r["kind"] != "sentences" { continue; }
        let t = r["text"].as_str().unwrap();
        let gold = r["lang"].as_str().unwrap();
        let l = s.detect(t);
        let p = l.code.as_str();
        if p != gold {
            *conf.entry(format!("{}({}) -> {}", gold, r["source_lang"].as_str().unwrap(), p)).or_insert(0) += 1;
            if std::env::args().nth(1).as_deref() == Some("-v") { println!("{gold}->{p} {:.2} {}", l.confidence, t.chars().take(90).collect::<String>()); }
        }
    }
    println!("{} errors {conf:?}", conf.values().sum::<i32>());
}
