//! Reading the graph's change log (`switchyard_graph_changes`, filled by triggers on the
//! five tables; see `policies/migrations/0002_change_log.sql`). A router listens on
//! [`CHANNEL`] for the seq of each new row, reads the rows after the last seq it has
//! applied, and drops the cached decisions whose nodes a row touches. After a lost
//! connection it reads from its last seq again, so no change is missed; a writer lock
//! in the trigger makes seqs follow commit order, so "after the last seq" is exact.

use super::{GraphError, GraphStore};

/// The NOTIFY channel; the payload is the new row's seq in decimal.
pub const CHANNEL: &str = "switchyard_graph";

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    /// The table changed: `principals`, `objects`, `grants`, `read_via` or `tokens`.
    pub table: String,
    /// Every node id the change may affect, sorted, without duplicates.
    pub touched: Vec<String>,
    /// Token hashes (`tokens.token_sha256`) the change affects.
    pub tokens: Vec<String>,
    /// A TRUNCATE: it may affect any answer, whatever `touched` says.
    pub everything: bool,
}

impl Change {
    /// Whether a decision depending on `nodes` may have changed.
    pub fn affects<'a>(&self, mut nodes: impl Iterator<Item = &'a str>) -> bool {
        self.everything || nodes.any(|n| self.touched.binary_search_by(|t| t.as_str().cmp(n)).is_ok())
    }
}

impl GraphStore {
    /// The seq of the newest change (0 if there was none). A router starting afresh
    /// reads this before its first decision and replays from it.
    pub async fn last_seq(&self) -> Result<i64, GraphError> {
        // After a prune that emptied the log, the newest seq is the pruned one.
        let seq = sqlx::query_scalar(
            "select greatest(coalesce((select max(seq) from switchyard_graph_changes), 0), \
                             (select upto from switchyard_graph_pruned))",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(seq)
    }

    /// Up to `limit` changes after `seq`, oldest first.
    pub async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, GraphError> {
        type Row = (i64, String, Vec<String>, Vec<String>, bool);
        let rows: Vec<Row> = sqlx::query_as(
            "select seq, tbl, touched, tokens, everything from switchyard_graph_changes \
             where seq > $1 order by seq limit $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, table, mut touched, tokens, everything)| {
                // Sorted by bytes whatever the database's collation, for `affects`.
                touched.sort_unstable();
                Change { seq, table, touched, tokens, everything }
            })
            .collect())
    }

    /// The highest seq the prune function has deleted (0 if none). A router whose last
    /// seq is below it has missed changes it can no longer read: it must drop every
    /// cached decision.
    pub async fn pruned_through(&self) -> Result<i64, GraphError> {
        Ok(sqlx::query_scalar("select upto from switchyard_graph_pruned").fetch_one(&self.pool).await?)
    }

    /// Deletes the changes older than `keep` (`switchyard_graph_prune_changes`) and
    /// returns how many it deleted.
    pub async fn prune_changes(&self, keep: std::time::Duration) -> Result<i64, GraphError> {
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        Ok(sqlx::query_scalar("select switchyard_graph_prune_changes($1 * interval '1 millisecond')")
            .bind(keep_ms)
            .fetch_one(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affects_meets_the_sorted_touched_ids() {
        let c = Change { seq: 1, table: "grants".into(), touched: vec!["a".into(), "c".into()], tokens: vec![], everything: false };
        assert!(c.affects(["x", "c"].into_iter()));
        assert!(!c.affects(["b", "d"].into_iter()));
        assert!(Change { everything: true, ..c }.affects(std::iter::empty()));
    }
}
