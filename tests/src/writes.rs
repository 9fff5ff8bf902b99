//! The data check every failover test makes: the ids a node's table holds against what the
//! writers were told (acknowledged, or outcome unknown).

use std::collections::HashSet;

use crate::Node;

impl Node {
    /// Check the ids `select` returns (one integer column, e.g. `SELECT id FROM app.t`)
    /// against the writers' acknowledged ids and those whose outcome they were not told.
    /// Panics naming the first few when an acknowledged write is missing, when an id is
    /// there that was neither acknowledged nor unknown, or when an id was acknowledged twice.
    /// Returns how many rows the table holds. Blocks on one query.
    pub fn assert_writes(&self, select: &str, acked: &[u64], unknown: &[u64]) -> usize {
        let rows = self
            .sql(select)
            .unwrap_or_else(|e| panic!("{select} on {}: {e}", self.name()));
        let present: HashSet<u64> = (0..rows.num_rows())
            .map(|r| {
                let id = rows.text(r, 0).unwrap_or_default();
                id.parse()
                    .unwrap_or_else(|_| panic!("{select}: {id:?} is not an id"))
            })
            .collect();
        let first = |ids: Vec<u64>| ids.into_iter().take(5).collect::<Vec<_>>();
        let lost: Vec<u64> = acked
            .iter()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged writes lost on {}, e.g. {:?}",
            lost.len(),
            self.name(),
            first(lost.clone())
        );
        let known: HashSet<u64> = acked.iter().chain(unknown).copied().collect();
        let unexplained: Vec<u64> = present
            .iter()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        assert!(
            unexplained.is_empty(),
            "{} rows on {} nobody was told about, e.g. {:?}",
            unexplained.len(),
            self.name(),
            first(unexplained.clone())
        );
        assert_eq!(
            acked.len(),
            acked.iter().collect::<HashSet<_>>().len(),
            "an id was acknowledged twice"
        );
        rows.num_rows()
    }
}
