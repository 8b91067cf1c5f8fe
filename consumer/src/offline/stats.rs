//! `tweet-consumer stats`: posts per detected language and sentiment label, read from the
//! store ([`crate::summary::StatsSummary`] prints the table).

use crate::store::StoreLocation;
use crate::summary::StatsSummary;

/// The table of the store at `db`, its `top` most frequent languages listed.
///
/// # Errors
/// When the store does not exist, cannot be opened or fails.
pub fn run(db: &StoreLocation, top: usize) -> anyhow::Result<StatsSummary> {
    let mut store = super::open_existing(db)?;
    let table = store.language_sentiment_table()?;
    Ok(StatsSummary::new(&db.to_string(), &table, top))
}
