//! The offline subcommands: they read the store or the labelled data sets, not Kafka.
//! [`stats`] (posts per language and sentiment), [`report`] (SVG pictures of the store) and
//! [`eval`] (accuracy of the analysis on labelled sets).

pub mod eval;
pub mod report;
pub mod stats;
pub mod train;

use anyhow::Context as _;

use crate::store::{Store, StoreLocation};

/// Opens the store at `db` for reading; a SQLite file must exist already (opening would
/// create an empty one).
///
/// # Errors
/// When there is no SQLite file at `db`, or the store cannot be opened.
pub fn open_existing(db: &StoreLocation) -> anyhow::Result<Store> {
    if let StoreLocation::Sqlite(path) = db {
        if !path.exists() {
            anyhow::bail!(
                "no store at {}; run tweet-consumer --group analysis first (or pass --db)",
                path.display()
            );
        }
    }
    Store::open(db).with_context(|| format!("cannot open the store {db}"))
}
