//! LRU caches consulted before a read permit is taken.
//!
//! Entries are keyed by block number, so a truncate can evict everything
//! above its block. Only values the backend returned while their read held a
//! permit are inserted, and truncates evict while holding the drain, so an
//! insert can never land after the eviction that should have removed it.

use alloy::primitives::BlockNumber;
use lru::LruCache;
use signet_cold::{ColdReceipt, Confirmed};
use signet_storage_types::{RecoveredTx, SealedHeader};
use std::{num::NonZeroUsize, sync::Mutex};

struct Maps {
    headers: LruCache<BlockNumber, SealedHeader>,
    transactions: LruCache<(BlockNumber, u64), Confirmed<RecoveredTx>>,
    receipts: LruCache<(BlockNumber, u64), ColdReceipt>,
}

/// Headers by number, transactions and receipts by (block, index).
pub(crate) struct ColdCache {
    maps: Mutex<Maps>,
}

fn evict_from<K: Copy + Eq + std::hash::Hash, V>(
    map: &mut LruCache<K, V>,
    first: BlockNumber,
    number: impl Fn(&K) -> BlockNumber,
) {
    let doomed: Vec<K> = map.iter().map(|(k, _)| *k).filter(|k| number(k) >= first).collect();
    for key in doomed {
        map.pop(&key);
    }
}

impl ColdCache {
    /// A cache holding up to `entries` values in each map.
    ///
    /// # Panics
    ///
    /// Panics if `entries` is 0 (the config rejects that earlier).
    pub(crate) fn new(entries: usize) -> Self {
        let cap = NonZeroUsize::new(entries).expect("cache entries must be non-zero");
        Self {
            maps: Mutex::new(Maps {
                headers: LruCache::new(cap),
                transactions: LruCache::new(cap),
                receipts: LruCache::new(cap),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding this lock cannot leave a map half-updated in a
        // way that matters: every operation is a single LRU call.
        self.maps.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn header(&self, block: BlockNumber) -> Option<SealedHeader> {
        self.lock().headers.get(&block).cloned()
    }

    pub(crate) fn put_header(&self, header: &SealedHeader) {
        self.lock().headers.put(header.number, header.clone());
    }

    pub(crate) fn transaction(
        &self,
        block: BlockNumber,
        index: u64,
    ) -> Option<Confirmed<RecoveredTx>> {
        self.lock().transactions.get(&(block, index)).cloned()
    }

    pub(crate) fn put_transaction(&self, tx: &Confirmed<RecoveredTx>) {
        let meta = tx.meta();
        self.lock().transactions.put((meta.block_number(), meta.transaction_index()), tx.clone());
    }

    pub(crate) fn receipt(&self, block: BlockNumber, index: u64) -> Option<ColdReceipt> {
        self.lock().receipts.get(&(block, index)).cloned()
    }

    pub(crate) fn put_receipt(&self, receipt: &ColdReceipt) {
        self.lock()
            .receipts
            .put((receipt.block_number, receipt.transaction_index), receipt.clone());
    }

    /// Evicts every entry of block `first` and above.
    pub(crate) fn invalidate_from(&self, first: BlockNumber) {
        let mut maps = self.lock();
        evict_from(&mut maps.headers, first, |n| *n);
        evict_from(&mut maps.transactions, first, |(n, _)| *n);
        evict_from(&mut maps.receipts, first, |(n, _)| *n);
    }
}
