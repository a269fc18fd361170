//! How a batch of records is cut into multi-row INSERT statements.
//!
//! Every distinct statement text is prepared once and kept in the connection's statement
//! cache. Chunking a batch of arbitrary length naively (`chunks(500)`) produces a new text
//! for every remainder length: up to 500 large prepared statements per table and
//! connection, tens of MiB of cache that never shrinks, and a parse per batch. Chunks are
//! instead whole `MAX_ROWS` statements followed by the remainder in power-of-two sizes,
//! so each table has at most `log2(MAX_ROWS) + 1` statement texts, each reused.

/// Most rows in one INSERT statement (26 columns x 64 rows stays far below both
/// backends' bind-parameter limits).
pub const MAX_ROWS: usize = 64;

/// Splits `rows` into consecutive slices whose lengths are `MAX_ROWS` or a smaller
/// power of two.
pub fn statement_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= MAX_ROWS {
            MAX_ROWS
        } else {
            1 << rows.len().ilog2()
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_in_order_with_few_distinct_sizes() {
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..=3 * MAX_ROWS + 7 {
            let rows: Vec<usize> = (0..n).collect();
            let joined: Vec<usize> = statement_chunks(&rows).flatten().copied().collect();
            assert_eq!(joined, rows, "{n} rows");
            for chunk in statement_chunks(&rows) {
                assert!(chunk.len() == MAX_ROWS || chunk.len().is_power_of_two());
                sizes.insert(chunk.len());
            }
        }
        assert_eq!(sizes.len(), MAX_ROWS.ilog2() as usize + 1);
    }

    #[test]
    fn a_remainder_is_cut_in_descending_powers_of_two() {
        let rows = [0u8; MAX_ROWS + 13];
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[u8]>::len).collect();
        assert_eq!(sizes, vec![MAX_ROWS, 8, 4, 1]);
    }
}
