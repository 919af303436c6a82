//! Caches consulted before a read permit is taken.
//!
//! Three concurrent caches ([`quick_cache`]: sharded, each shard behind its
//! own lock, S3-FIFO eviction), so cache hits from different threads rarely
//! touch the same lock and a hit takes only a shared one. A mutex around
//! `lru` maps, which every hit locks exclusively to move its entry to the
//! front, was what made our cached reads slower than signet-cold's.
//!
//! Entries are keyed by block number, so a truncate can evict everything
//! above its block. Only values the backend returned while their read held a
//! permit are inserted, and truncates evict while holding the drain, so an
//! insert can never land after the eviction that should have removed it.
//! For the same reason an entry already cached is the value any read under
//! a permit would find: an insert of a key already present is skipped
//! (reads by hash would otherwise clone and re-insert a header on every
//! call).

use alloy::primitives::BlockNumber;
use quick_cache::sync::Cache;
use signet_cold::{ColdReceipt, Confirmed};
use signet_storage_types::{RecoveredTx, SealedHeader};

/// Headers by number, transactions and receipts by (block, index).
pub(crate) struct ColdCache {
    headers: Cache<BlockNumber, SealedHeader>,
    transactions: Cache<(BlockNumber, u64), Confirmed<RecoveredTx>>,
    receipts: Cache<(BlockNumber, u64), ColdReceipt>,
}

impl ColdCache {
    /// A cache holding about `entries` values in each map (quick_cache
    /// rounds the capacity per shard).
    pub(crate) fn new(entries: usize) -> Self {
        Self {
            headers: Cache::new(entries),
            transactions: Cache::new(entries),
            receipts: Cache::new(entries),
        }
    }

    pub(crate) fn header(&self, block: BlockNumber) -> Option<SealedHeader> {
        self.headers.get(&block)
    }

    pub(crate) fn put_header(&self, header: &SealedHeader) {
        insert_new(&self.headers, header.number, header);
    }

    pub(crate) fn transaction(
        &self,
        block: BlockNumber,
        index: u64,
    ) -> Option<Confirmed<RecoveredTx>> {
        self.transactions.get(&(block, index))
    }

    pub(crate) fn put_transaction(&self, tx: &Confirmed<RecoveredTx>) {
        let meta = tx.meta();
        insert_new(&self.transactions, (meta.block_number(), meta.transaction_index()), tx);
    }

    pub(crate) fn receipt(&self, block: BlockNumber, index: u64) -> Option<ColdReceipt> {
        self.receipts.get(&(block, index))
    }

    pub(crate) fn put_receipt(&self, receipt: &ColdReceipt) {
        insert_new(&self.receipts, (receipt.block_number, receipt.transaction_index), receipt);
    }

    /// Evicts every entry of block `first` and above.
    pub(crate) fn invalidate_from(&self, first: BlockNumber) {
        self.headers.retain(|n, _| *n < first);
        self.transactions.retain(|(n, _), _| *n < first);
        self.receipts.retain(|(n, _), _| *n < first);
    }
}

/// Inserts a clone of `value` unless `key` is cached already (see the
/// [module](self) for why that entry is current).
fn insert_new<K, V>(cache: &Cache<K, V>, key: K, value: &V)
where
    K: Eq + std::hash::Hash + Clone,
    V: Clone,
{
    if !cache.contains_key(&key) {
        cache.insert(key, value.clone());
    }
}
