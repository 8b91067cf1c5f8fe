//! The consumer's SQLite store, read back.

use std::collections::BTreeSet;
use std::path::Path;

/// The post ids in the SQLite store at `db`.
pub fn stored_ids(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).expect("store");
    let mut statement = conn.prepare("SELECT id FROM posts").expect("query");
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("rows");
    ids.collect::<Result<_, _>>().expect("ids")
}
