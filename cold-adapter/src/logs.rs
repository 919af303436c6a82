//! `eth_getLogs` filters, made to mean the same on every backend.
//!
//! signet-cold 0.10's backends read a filter's block range each their own
//! way, and some wrongly: a missing `toBlock` becomes `u64::MAX`, which the
//! SQL backends bind as `-1` (no logs); a `blockHash` filter is ignored (the
//! in-memory backend scans every block, the SQL ones match nothing); `from`
//! above `to` panics the in-memory backend. So the handle resolves every
//! filter to an explicit, non-empty range of stored blocks before a backend
//! sees it, under the same read permit as the query (no write commits in
//! between). The rules, as geth applies them to `eth_getLogs`, are on
//! [`ColdStorageReadHandle::get_logs`](crate::ColdStorageReadHandle::get_logs).

use alloy::{
    primitives::BlockNumber,
    rpc::types::{BlockNumberOrTag, FilterBlockOption},
};
use signet_cold::{ColdResult, ColdStorageError, DynColdStorageBackend, Filter, HeaderSpecifier};

/// A log filter whose explicit `fromBlock` is above its explicit `toBlock`.
///
/// geth answers such an `eth_getLogs` with the error "invalid block range
/// params" (JSON-RPC code -32602 in recent versions) rather than an empty
/// list, and so does the handle: returned inside
/// [`ColdStorageError::Backend`], recoverable with `downcast_ref`, before
/// any permit is taken or the backend is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid block range params: fromBlock {from} is above toBlock {to}")]
pub struct InvalidBlockRange {
    /// The filter's `fromBlock`.
    pub from: BlockNumber,
    /// The filter's `toBlock`.
    pub to: BlockNumber,
}

/// The highest block number a resolved range may name: the SQL backends bind
/// block numbers as `i64`.
const MAX_BLOCK: BlockNumber = i64::MAX as BlockNumber;

/// What can be checked without the store: explicit numbers out of order.
pub(crate) fn check(filter: &Filter) -> ColdResult<()> {
    if let FilterBlockOption::Range {
        from_block: Some(BlockNumberOrTag::Number(from)),
        to_block: Some(BlockNumberOrTag::Number(to)),
    } = filter.block_option
        && from > to
    {
        return Err(ColdStorageError::backend(InvalidBlockRange { from, to }));
    }
    Ok(())
}

/// Whether resolving `filter` needs the store's tip (or a header).
pub(crate) fn needs_store(filter: &Filter) -> bool {
    !matches!(
        filter.block_option,
        FilterBlockOption::Range {
            from_block: Some(BlockNumberOrTag::Number(_) | BlockNumberOrTag::Earliest),
            to_block: Some(BlockNumberOrTag::Number(_) | BlockNumberOrTag::Earliest),
        }
    )
}

/// The range `filter` covers given the store's `tip` (`None`: empty store),
/// ends included; `None` if it covers no stored block. A `blockHash` filter
/// must be resolved with [`resolve`] instead.
fn range_at(filter: &Filter, tip: Option<BlockNumber>) -> Option<(BlockNumber, BlockNumber)> {
    let FilterBlockOption::Range { from_block, to_block } = filter.block_option else {
        unreachable!("a blockHash filter is resolved by its header")
    };
    let tip = tip?;
    let at = |bound: Option<BlockNumberOrTag>| match bound {
        Some(BlockNumberOrTag::Number(n)) => n,
        Some(BlockNumberOrTag::Earliest) => 0,
        // geth: a missing bound is "latest"; cold storage has no pending,
        // safe or finalized block of its own: its tip is all of them.
        None
        | Some(
            BlockNumberOrTag::Latest
            | BlockNumberOrTag::Safe
            | BlockNumberOrTag::Finalized
            | BlockNumberOrTag::Pending,
        ) => tip,
    };
    let (from, to) = (at(from_block), at(to_block).min(tip));
    (from <= to).then_some((from, to))
}

/// Resolves `filter` against the store: its range of stored blocks, ends
/// included, or `None` when it covers none (empty store, `fromBlock` above
/// the tip, tags that resolve out of order).
///
/// # Errors
///
/// [`ColdStorageError::NotFound`] for a `blockHash` no stored block has
/// (geth: "unknown block"); the backend's error if the lookup fails.
///
/// `cut_at_tip`: look the tip up even for explicit numbers, to cut `toBlock`
/// at it. A query needs no cut (blocks above the tip match nothing), a
/// stream does (it anchors on its last block, which must exist).
pub(crate) async fn resolve(
    backend: &dyn DynColdStorageBackend,
    filter: &Filter,
    cut_at_tip: bool,
) -> ColdResult<Option<(BlockNumber, BlockNumber)>> {
    if let FilterBlockOption::AtBlockHash(hash) = filter.block_option {
        return match backend.dyn_get_header(HeaderSpecifier::Hash(hash)).await? {
            Some(header) => Ok(Some((header.number, header.number))),
            None => Err(ColdStorageError::NotFound(format!("unknown block {hash}"))),
        };
    }
    if !cut_at_tip && !needs_store(filter) {
        // Explicit numbers: no tip needed, blocks above it match nothing.
        return Ok(range_at(filter, Some(MAX_BLOCK)));
    }
    let tip = backend.dyn_get_latest_block().await?;
    Ok(range_at(filter, tip))
}

/// `filter` with its block range replaced by `from..=to`.
pub(crate) fn with_range(filter: &Filter, (from, to): (BlockNumber, BlockNumber)) -> Filter {
    let mut filter = filter.clone();
    filter.block_option =
        FilterBlockOption::Range { from_block: Some(from.into()), to_block: Some(to.into()) };
    filter
}

/// Blocks `filter` will read, ends included, as far as the task knows its
/// `tip` (a hint from its own writes): what a `get_logs` is charged by. A
/// `blockHash` is one block; the range is cut at the tip when it is known;
/// `None` if the range needs the tip and it is not known; an empty range
/// counts one.
pub(crate) fn span(filter: &Filter, tip: Option<BlockNumber>) -> Option<u64> {
    if let FilterBlockOption::AtBlockHash(_) = filter.block_option {
        return Some(1);
    }
    let tip = if needs_store(filter) { tip? } else { tip.unwrap_or(MAX_BLOCK) };
    Some(range_at(filter, Some(tip)).map_or(1, |(from, to)| to - from + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::B256;

    #[test]
    fn ranges_resolve_as_geth_reads_them() {
        let tip = Some(5);
        let range = |f: Filter| range_at(&f, tip);
        // L01: an open end is the tip.
        assert_eq!(range(Filter::new().from_block(0u64)), Some((0, 5)));
        // A missing fromBlock is "latest" (geth), not block 0.
        assert_eq!(range(Filter::new()), Some((5, 5)));
        // L04: tags.
        assert_eq!(range(Filter::new().from_block(BlockNumberOrTag::Earliest)), Some((0, 5)));
        for tag in [
            BlockNumberOrTag::Latest,
            BlockNumberOrTag::Safe,
            BlockNumberOrTag::Finalized,
            BlockNumberOrTag::Pending,
        ] {
            assert_eq!(range(Filter::new().from_block(2u64).to_block(tag)), Some((2, 5)));
        }
        assert_eq!(range(Filter::new().from_block(2u64).to_block(9u64)), Some((2, 5)));
        // Empty: above the tip, tags out of order, an empty store.
        assert_eq!(range(Filter::new().from_block(7u64)), None);
        assert_eq!(range(Filter::new().from_block(BlockNumberOrTag::Latest).to_block(3u64)), None);
        assert_eq!(range_at(&Filter::new().from_block(0u64), None), None);
    }

    #[test]
    fn explicit_numbers_out_of_order_are_refused_up_front() {
        let err = check(&Filter::new().from_block(4u64).to_block(2u64)).unwrap_err();
        let ColdStorageError::Backend(inner) = err else { panic!("{err:?}") };
        assert_eq!(inner.downcast_ref(), Some(&InvalidBlockRange { from: 4, to: 2 }));
        assert!(check(&Filter::new().from_block(2u64).to_block(2u64)).is_ok());
        // Out of order only once tags resolve: empty, not an error (geth).
        assert!(check(&Filter::new().from_block(BlockNumberOrTag::Latest).to_block(2u64)).is_ok());
    }

    #[test]
    fn span_is_the_resolved_range() {
        assert_eq!(span(&Filter::new().at_block_hash(B256::ZERO), None), Some(1));
        assert_eq!(span(&Filter::new().from_block(0u64).to_block(999u64), None), Some(1_000));
        assert_eq!(span(&Filter::new().from_block(0u64).to_block(999u64), Some(3)), Some(4));
        assert_eq!(span(&Filter::new().from_block(0u64), Some(3)), Some(4));
        assert_eq!(span(&Filter::new().from_block(0u64), None), None);
        assert_eq!(span(&Filter::new(), Some(3)), Some(1));
        assert_eq!(span(&Filter::new().from_block(9u64), Some(3)), Some(1));
        assert_eq!(span(&Filter::new().from_block(0u64).to_block(u64::MAX), None), Some(1 << 63));
    }
}
