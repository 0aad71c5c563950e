//! The moderator console and rumour tracker (`vigie console`).
//!
//! Its own crate: it reads the pipeline's message contract, configuration and redaction
//! stage (`vigie-pipeline`), and the pipeline knows nothing of it.
//!
//! An axum web app over an embedded SQLite database, fed by moderation records (the
//! `moderation.jsonl` that `vigie screen` writes, or the moderation topic). Moderators
//! claim items from their queues and decide; programme staff follow rumour clusters.
//! Like the rest of Vigie it only ever holds redacted text: records carry nothing else,
//! and the free text people type (reasons, new claims) is redacted before it is stored.
//!
//! - [`store`]: the database (migrations, items, locks, decisions, audit log, clusters);
//! - [`auth`]: accounts, password hashing, sessions and CSRF tokens;
//! - [`throttle`]: the back-off and lockout of failed sign-ins; [`serve`]: the server's
//!   connection limits and timeouts;
//! - [`tracker`]: text embeddings and the online grouping of posts into rumours;
//! - [`alerts`]: rumour figures (volume, velocity, questions), the config's alert rules,
//!   and the signed webhook; [`alerting`]: the task that checks rumours and delivers
//!   alerts; [`report`]: the weekly rumour report;
//! - `web` and `pages`: the HTTP routes and the HTML they render; [`i18n`]: their French
//!   and English text.

pub mod alerting;
pub mod alerts;
pub mod auth;
mod csv_export;
pub mod feed;
pub mod i18n;
mod pages;
pub mod report;
pub mod serve;
pub mod store;
pub mod throttle;
pub mod tracker;
mod web;

pub use alerting::Alerting;
pub use auth::Role;
pub use feed::DecisionPublisher;
pub use serve::{serve, ServeLimits};
pub use store::{Decision, DecisionInput, LoginOutcome, Store, StoreError};
pub use throttle::{SignInThrottle, ThrottlePolicy};
pub use tracker::{Embedder, LexicalEmbedder, ModelEmbedder};
pub use web::{router, AppState, ConsoleSettings};
